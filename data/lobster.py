"""LOBSTER reader: NASDAQ message + orderbook files -> tickguard events.

Why: LOBSTER (lobsterdata.com) is the academic standard for reconstructed NASDAQ order books. A
day is two CSV files, row for row: ``SYM_DATE_START_END_message_N.csv`` (what happened) and
``SYM_DATE_START_END_orderbook_N.csv`` (the N-level book after it). Original files have no header;
copies with a header row are accepted too (a first line without any number is a header).

Mapping — every message row yields exactly one primary event, timestamps and book from its row:

- types 1 new order, 2 partial cancel, 3 delete -> ``KIND_QUOTE``; side = Direction of the touched
  order, price/size = the order's (informational; the book is in ``bid_*``/``ask_*``).
- types 4 visible / 5 hidden execution -> ``KIND_TRADE | KIND_QUOTE``; side = aggressor =
  -Direction (an execution of a sell order is a buyer-initiated trade); price/size of the fill.
- type 6 cross trade -> ``KIND_TRADE | KIND_QUOTE``, side ``SIDE_NONE`` (an auction has no
  aggressor). NB: LOBSTER also reports the cross's underlying executions, so summing trade sizes
  counts a cross's volume twice.
- type 7 trading halt -> ``KIND_CONTROL`` only (no quote: LOBSTER repeats the previous book row);
  side = LOBSTER's code from the Price column: -1 halt begins, 0 quoting resumes, +1 trading
  resumes; price/size NaN.

``bid_*``/``ask_*`` on QUOTE rows: level 1 of the book row (prices / 10 000); an empty side
(9999999999 / -9999999999) gives NaN price and size 0.

``depth=True`` adds KIND_DEPTH rows right after each primary event (same timestamps): one per
visible price level whose size changed vs the previous book row — (side +1 bid / -1 ask, price,
new total size, level index). A price that left the visible N levels gets size 0: the events
describe the visible window only (with level-1 files that is the touch). Order: bid side then
ask side, each from best to worst price.

Timestamps: Time is seconds after midnight (exchange wall clock, ``tz``), up to 9 decimals, parsed
exactly from the decimal string (no float rounding); ``date`` + Time is localised with pandas (DST
aware) and converted to UTC ns. ``ts_local = ts_exch + feed_latency_ns``. The last row of each
run of equal ``ts_exch`` (depth rows included) carries KIND_LAST_IN_BATCH.

Bad input raises :class:`DataError` with a :class:`Finding` per problem (row numbers are 1-based
data rows). ``on_error="skip"`` drops bad message rows together with their book rows, but only
after recording each finding in :class:`LobsterStats` — never silently. Row-count mismatches and
wrong column counts always raise.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
from numba import njit

from .errors import DataError, Finding
from .schema import (
    EVENT_DTYPE,
    KIND_CONTROL,
    KIND_DEPTH,
    KIND_LAST_IN_BATCH,
    KIND_NAMES,
    KIND_QUOTE,
    KIND_TRADE,
    Instrument,
    InstrumentTable,
    empty_events,
)

__all__ = [
    "DEFAULT_LOBSTER_CHUNK_ROWS",
    "LOBSTER_EMPTY_ASK",
    "LOBSTER_EMPTY_BID",
    "LOBSTER_PRICE_SCALE",
    "LobsterStats",
    "iter_lobster",
    "lobster_depth_diff_nb",
    "lobster_depth_diff_py",
    "parse_lobster_name",
    "read_lobster",
]

LOBSTER_PRICE_SCALE = 10_000  # prices are dollars x 10 000
LOBSTER_EMPTY_ASK = 9_999_999_999
LOBSTER_EMPTY_BID = -9_999_999_999
DEFAULT_LOBSTER_CHUNK_ROWS = 1 << 18
MAX_FINDINGS = 20  # listed per DataError; the rest are counted in ``more``

_NAME_RE = re.compile(
    r"^(?P<symbol>[^_]+)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<start>\d+)_(?P<end>\d+)"
    r"_(?P<what>message|orderbook)_(?P<levels>\d+)\.csv$"
)
_MSG_FIELDS = ("Time", "Type", "OrderId", "Size", "Price", "Direction")
_TIME_RE = r"\d{1,6}(?:\.\d{0,9})?"
_Q, _T, _C = int(KIND_QUOTE), int(KIND_TRADE), int(KIND_CONTROL)
_KIND_BY_TYPE = np.array([0, _Q, _Q, _Q, _T | _Q, _T | _Q, _T | _Q, _C], dtype=np.uint16)


@dataclass
class LobsterStats:
    """What a LOBSTER read saw: messages by type, events by kind, bad rows and their findings.

    ``bad_*_rows`` count every row dropped with ``on_error="skip"``; ``findings`` lists them (at
    most 21 per check and chunk, so a wholly broken file cannot exhaust memory).
    """

    levels: int = 0
    message_rows: int = 0
    messages_by_type: dict[int, int] = field(default_factory=lambda: dict.fromkeys(range(1, 8), 0))
    events_by_kind: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("quote", "trade", "depth", "control", "last_in_batch"), 0))
    bad_message_rows: int = 0
    bad_orderbook_rows: int = 0
    findings: list[Finding] = field(default_factory=list)


def parse_lobster_name(path: str | os.PathLike[str]) -> dict[str, object] | None:
    """``AMZN_2012-06-21_34200000_57600000_message_1.csv`` -> symbol, date, start/end ms, levels."""
    m = _NAME_RE.match(Path(path).name)
    if not m:
        return None
    return {"symbol": m["symbol"], "date": _dt.date.fromisoformat(m["date"]), "start_ms": int(m["start"]),
            "end_ms": int(m["end"]), "what": m["what"], "levels": int(m["levels"])}


# --- depth kernel ---------------------------------------------------------------------------
def lobster_depth_diff_py(bpx, bsz, apx, asz, prev, starts, out_side, out_px, out_sz, out_lvl, fill):
    """Per book row, the price levels that changed vs the previous row; returns counts per row.

    ``bpx``/``bsz``/``apx``/``asz``: int64 [n, L] with empty levels as price -1 (trailing);
    ``prev``: int64 [4, L] — the row before row 0 (bpx, bsz, apx, asz). With ``fill`` the updates
    of row i are written to ``out_*[starts[i]:]`` (side, price, size, level). Both books are walked
    in price order (bids descending, asks ascending), so one row costs O(L).
    """
    n, nlev = bpx.shape
    counts = np.zeros(n, dtype=np.int64)
    for i in range(n):
        pos = starts[i] if fill else 0
        c = 0
        for side_k in range(2):
            if side_k == 0:
                cp, cs, sgn = bpx[i], bsz[i], -1
                pp, ps = (bpx[i - 1], bsz[i - 1]) if i > 0 else (prev[0], prev[1])
            else:
                cp, cs, sgn = apx[i], asz[i], 1
                pp, ps = (apx[i - 1], asz[i - 1]) if i > 0 else (prev[2], prev[3])
            nc = 0
            while nc < nlev and cp[nc] >= 0:
                nc += 1
            npv = 0
            while npv < nlev and pp[npv] >= 0:
                npv += 1
            a, b = 0, 0  # a walks the previous row, b the current one
            while a < npv or b < nc:
                if b >= nc or (a < npv and sgn * pp[a] < sgn * cp[b]):
                    px, sz, lv = pp[a], 0, a  # level vanished from the visible book
                    a += 1
                elif a >= npv or sgn * cp[b] < sgn * pp[a]:
                    px, sz, lv = cp[b], cs[b], b  # new level
                    b += 1
                else:
                    same = ps[a] == cs[b]
                    px, sz, lv = cp[b], cs[b], b
                    a += 1
                    b += 1
                    if same:
                        continue
                if fill:
                    out_side[pos + c] = 1 if side_k == 0 else -1
                    out_px[pos + c] = px
                    out_sz[pos + c] = sz
                    out_lvl[pos + c] = lv
                c += 1
        counts[i] = c
    return counts


lobster_depth_diff_nb = njit(cache=True)(lobster_depth_diff_py)


# --- parsing helpers ------------------------------------------------------------------------
class _Problems:
    """Collects bad rows (0-based within the chunk) and their findings for one chunk."""

    def __init__(self, n: int, row0: int) -> None:
        self.msg_bad = np.zeros(n, dtype=bool)
        self.book_bad = np.zeros(n, dtype=bool)
        self.findings: list[tuple[int, Finding]] = []
        self.row0 = row0

    def add(self, mask: np.ndarray, book: bool, code: str, file: str, field_: str,
            values: np.ndarray, message: str, fix: str) -> None:
        idx = np.flatnonzero(mask)
        (self.book_bad if book else self.msg_bad)[idx] = True
        for i in idx[: MAX_FINDINGS + 1]:
            self.findings.append((int(i), Finding(code, file, self.row0 + int(i) + 1, field_,
                                                  _plain(values[i]), message, fix)))


def _plain(v: object) -> object:
    return v.item() if isinstance(v, np.generic) else v


def _ints(col: pd.Series, probs: _Problems, book: bool, file: str, name: str) -> np.ndarray:
    raw = col.to_numpy(dtype=object)
    s = col.str.strip()
    ok = s.str.fullmatch(r"-?\d{1,18}").to_numpy(dtype=bool, na_value=False)
    probs.add(~ok, book, "non_numeric", file, name, raw, "not an integer",
              "LOBSTER fields other than Time are integers; check the file is not corrupted")
    out = np.zeros(len(col), dtype=np.int64)
    out[ok] = s[ok].astype(np.int64).to_numpy()
    return out


def _time_ns(col: pd.Series, probs: _Problems, file: str) -> np.ndarray:
    """Exact seconds-after-midnight -> ns: integer part and up to 9 decimals, no float math."""
    s = col.str.strip()
    ok = s.str.fullmatch(_TIME_RE).to_numpy(dtype=bool, na_value=False)
    probs.add(~ok, False, "bad_time", file, "Time", col.to_numpy(dtype=object),
              "Time must be seconds after midnight with at most 9 decimals",
              "check the Time column (e.g. 34200.017460000)")
    out = np.zeros(len(col), dtype=np.int64)
    if not ok.any():
        return out
    parts = s[ok].str.partition(".")
    frac = parts[2].str.ljust(9, "0").astype(np.int64).to_numpy()
    out[ok] = parts[0].astype(np.int64).to_numpy() * 1_000_000_000 + frac
    return out


def _has_header(path: Path) -> tuple[bool, int]:
    """(header row present?, number of columns) from the first line."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        first = fh.readline().strip()
    if not first:
        raise DataError(Finding("empty_file", str(path), None, None, "", "file is empty",
                                "re-download the LOBSTER file"))
    cells = first.split(",")
    # a header only if no cell is a number: a corrupt first data row must not vanish as a "header"
    return not any(_is_number(c) for c in cells), len(cells)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _chunks(path: Path, header: bool, ncols: int, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Row chunks as strings (validated by us, not coerced by pandas)."""
    try:
        yield from pd.read_csv(path, header=None, skiprows=int(header), names=list(range(ncols)), dtype=str,
                               keep_default_na=False, chunksize=chunk_rows, encoding="utf-8-sig")
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+), saw (\d+)", str(exc))
        row = int(m[1]) - int(header) if m else None
        raise DataError(Finding("wrong_column_count", str(path), row, None, int(m[2]) if m else None,
                                f"expected {ncols} fields per row: {exc}",
                                "every row of a LOBSTER file has the same number of fields")) from None


def _count_rows(path: Path, header: bool) -> int:
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip()) - int(header)


def _localise(naive_ns: np.ndarray, tz: str, file: str) -> np.ndarray:
    idx = pd.DatetimeIndex(naive_ns.view("datetime64[ns]"))
    try:
        return idx.tz_localize(tz, ambiguous="raise", nonexistent="raise").as_unit("ns").asi8.copy()
    except Exception as exc:  # ambiguous / non-existent wall-clock times around a DST switch
        raise DataError(Finding("bad_local_time", file, None, "Time", str(exc),
                                f"wall-clock time does not exist or is ambiguous in {tz}",
                                "check date= and tz= (LOBSTER times are exchange local)")) from None


# --- reader ---------------------------------------------------------------------------------
def iter_lobster(
    message_path: str | os.PathLike[str],
    orderbook_path: str | os.PathLike[str] | None = None,
    *,
    date: str | _dt.date | None = None,
    tz: str = "America/New_York",
    instrument_id: int = 0,
    feed_latency_ns: int = 0,
    depth: bool = False,
    chunk_rows: int = DEFAULT_LOBSTER_CHUNK_ROWS,
    on_error: str = "raise",
    stats: LobsterStats | None = None,
) -> Iterator[np.ndarray]:
    """Stream events from a LOBSTER file pair (both files read in lockstep, ``chunk_rows`` at a time).

    Pass a :class:`LobsterStats` as ``stats`` to collect counts while streaming. Yielded chunks
    may differ slightly from ``chunk_rows`` (depth rows; a batch of equal timestamps is held back
    until its end is known so KIND_LAST_IN_BATCH is exact).
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if chunk_rows <= 0:
        raise ValueError(f"chunk_rows must be > 0, got {chunk_rows!r}")
    mpath = Path(message_path)
    name = parse_lobster_name(mpath)
    if orderbook_path is None:
        if name is None or name["what"] != "message":
            raise DataError(Finding("bad_file_name", str(mpath), None, None, mpath.name,
                                    "cannot derive the orderbook file name from this message file name",
                                    "pass orderbook_path=..., or keep LOBSTER's naming "
                                    "SYM_DATE_START_END_message_N.csv"))
        orderbook_path = mpath.with_name(mpath.name.replace("_message_", "_orderbook_"))
    opath = Path(orderbook_path)
    if date is None:
        if name is None:
            raise DataError(Finding("bad_file_name", str(mpath), None, None, mpath.name,
                                    "no date in the file name", "pass date='YYYY-MM-DD'"))
        date = name["date"]  # type: ignore[assignment]
    day_ns = pd.Timestamp(date).as_unit("ns").normalize().value  # naive midnight as epoch ns
    st = stats if stats is not None else LobsterStats()
    for p in (mpath, opath):
        if not p.exists():
            raise DataError(Finding("missing_file", str(p), None, None, str(p), "file does not exist",
                                    "check the path; message and orderbook files belong together"))
    m_hdr, m_cols = _has_header(mpath)
    b_hdr, b_cols = _has_header(opath)
    if m_cols != 6:
        raise DataError(Finding("wrong_column_count", str(mpath), 1, None, m_cols,
                                "a LOBSTER message file has 6 columns", "check this is the message file"))
    oname = parse_lobster_name(opath)
    want = None if oname is None else 4 * int(oname["levels"])  # type: ignore[call-overload]
    if b_cols % 4 or b_cols == 0 or (want is not None and b_cols != want):
        raise DataError(Finding("wrong_column_count", str(opath), 1, None, b_cols,
                                "an orderbook file has 4 columns per level (ask px, ask size, "
                                "bid px, bid size), as many levels as its name says",
                                "check this is the orderbook file belonging to the message file"))
    nlev = b_cols // 4
    st.levels = nlev
    book_fields = [f"{w}{lv}" for lv in range(1, nlev + 1)
                   for w in ("AskPrice", "AskSize", "BidPrice", "BidSize")]
    prev = np.full((4, nlev), -1, dtype=np.int64)
    prev[[1, 3]] = 0
    last_t = -1
    row0 = 0
    pending = np.empty(0, dtype=EVENT_DTYPE)
    pairs = zip_longest(_chunks(mpath, m_hdr, 6, chunk_rows), _chunks(opath, b_hdr, b_cols, chunk_rows))
    for mdf, bdf in pairs:
        if mdf is None or bdf is None or len(mdf) != len(bdf):
            nm, nb = _count_rows(mpath, m_hdr), _count_rows(opath, b_hdr)
            raise DataError(Finding("row_count_mismatch", str(mpath), min(nm, nb) + 1, None,
                                    {"message_rows": nm, "orderbook_rows": nb},
                                    "message and orderbook files must have the same number of rows",
                                    "use the orderbook file of the same LOBSTER request; re-download "
                                    "if one file is truncated"))
        n = len(mdf)
        probs = _Problems(n, row0)
        msg = {f: mdf[i] for i, f in enumerate(_MSG_FIELDS)}
        t = _time_ns(msg["Time"], probs, str(mpath))
        typ, oid, size, price, dirn = (_ints(msg[f], probs, False, str(mpath), f) for f in _MSG_FIELDS[1:])
        del oid  # order ids are parsed only to validate them
        book = np.stack([_ints(bdf[j], probs, True, str(opath), book_fields[j]) for j in range(b_cols)], 1)
        _validate(probs, str(mpath), str(opath), typ, size, price, dirn, book, nlev)
        bad = probs.msg_bad | probs.book_bad
        # time order among the remaining rows (vs the running maximum, so one outlier is one finding)
        good_idx = np.flatnonzero(~bad)
        tg = t[good_idx]
        runmax = np.maximum.accumulate(np.concatenate([[last_t], tg]))[:-1]
        back = np.zeros(n, dtype=bool)
        back[good_idx[tg < runmax]] = True
        probs.add(back, False, "time_not_sorted", str(mpath),
                  "Time", msg["Time"].to_numpy(dtype=object), "Time goes backwards",
                  "LOBSTER message files are in time order; check the file is not concatenated "
                  "out of order")
        bad = probs.msg_bad | probs.book_bad
        if probs.findings:
            found = [f for _, f in sorted(probs.findings, key=lambda x: x[0])]
            if on_error == "raise":
                raise DataError(found[:MAX_FINDINGS], more=max(0, len(found) - MAX_FINDINGS))
            st.findings.extend(found)
            st.bad_message_rows += int(probs.msg_bad.sum())
            st.bad_orderbook_rows += int(probs.book_bad.sum())
        keep = ~bad
        st.message_rows += n
        ev, prev = _build(t[keep], typ[keep], size[keep], price[keep], dirn[keep], book[keep], prev,
                          day_ns, tz, str(mpath), instrument_id, feed_latency_ns, depth)
        for k in range(1, 8):
            st.messages_by_type[k] += int((typ[keep] == k).sum())
        if keep.any():
            last_t = int(t[keep][-1])
        row0 += n
        out = np.concatenate([pending, ev]) if len(pending) else ev
        if not len(out):
            continue
        ts = out["ts_exch"]
        out["kind"][:-1][ts[1:] != ts[:-1]] |= KIND_LAST_IN_BATCH
        hold = int(np.searchsorted(ts, ts[-1], "left"))  # the last batch may continue
        pending = out[hold:]
        if hold:
            _count_kinds(st, out[:hold])
            yield out[:hold]
    if len(pending):
        pending["kind"][-1] |= KIND_LAST_IN_BATCH
        _count_kinds(st, pending)
        yield pending


def _validate(probs: _Problems, mfile: str, bfile: str, typ, size, price, dirn, book, nlev) -> None:
    okv = ~probs.msg_bad  # only judge values that parsed
    probs.add(okv & ((typ < 1) | (typ > 7)), False, "unknown_type", mfile, "Type", typ,
              "unknown LOBSTER event type", "types are 1-7 (see the LOBSTER README)")
    probs.add(okv & (typ != 7) & (dirn != 1) & (dirn != -1), False, "bad_direction", mfile, "Direction",
              dirn, "Direction must be 1 (buy order) or -1 (sell order)", "check the Direction column")
    probs.add(okv & (typ == 7) & (np.abs(price) > 1), False, "bad_halt_code", mfile, "Price", price,
              "a type-7 (halt) message carries -1 halt, 0 quoting, 1 resume in Price",
              "check the halt message")
    probs.add(okv & (typ != 7) & (size < 0), False, "negative_value", mfile, "Size", size,
              "size is negative", "sizes are share counts >= 0")
    okb = ~probs.book_bad
    apx, asz, bpx, bsz = (book[:, k::4] for k in range(4))
    a_empty, b_empty = apx == LOBSTER_EMPTY_ASK, bpx == LOBSTER_EMPTY_BID
    for j in range(nlev):
        probs.add(okb & ((asz[:, j] < 0) | (bsz[:, j] < 0)), True, "negative_value", bfile,
                  f"AskSize{j + 1}/BidSize{j + 1}", np.minimum(asz[:, j], bsz[:, j]), "size is negative",
                  "book sizes are share counts >= 0")
    crossed = okb & ~a_empty[:, 0] & ~b_empty[:, 0] & (apx[:, 0] < bpx[:, 0])
    probs.add(crossed, True, "crossed_book", bfile, "AskPrice1", apx[:, 0] / LOBSTER_PRICE_SCALE,
              "best ask below best bid", "check the orderbook row (is the file row-aligned with "
              "the message file?)")
    if nlev > 1:  # levels strictly ordered, empty levels only at the end
        a_ok = np.where(a_empty[:, 1:], True, ~a_empty[:, :-1] & (apx[:, 1:] > apx[:, :-1])).all(1)
        b_ok = np.where(b_empty[:, 1:], True, ~b_empty[:, :-1] & (bpx[:, 1:] < bpx[:, :-1])).all(1)
        probs.add(okb & ~(a_ok & b_ok), True, "unordered_levels", bfile, "AskPrice1", apx[:, 0],
                  "book levels are not in price order (or an empty level precedes a filled one)",
                  "asks must rise and bids fall with level")


def _build(t, typ, size, price, dirn, book, prev, day_ns, tz, file, inst, lat, depth):
    """Events of the kept rows of one chunk; returns (events, last book row as the next ``prev``)."""
    n = len(t)
    ts = _localise(day_ns + t, tz, file) if n else np.empty(0, dtype=np.int64)
    apx, asz, bpx, bsz = (np.ascontiguousarray(book[:, k::4]) for k in range(4))
    a_empty, b_empty = apx == LOBSTER_EMPTY_ASK, bpx == LOBSTER_EMPTY_BID
    apx[a_empty], asz[a_empty], bpx[b_empty], bsz[b_empty] = -1, 0, -1, 0
    if depth and n:
        zero = np.zeros(n, dtype=np.int64)
        counts = lobster_depth_diff_nb(bpx, bsz, apx, asz, prev, zero, zero, zero, zero, zero, False)
    else:
        counts = np.zeros(n, dtype=np.int64)
    before = np.concatenate([[0], np.cumsum(counts)[:-1]]) if n else np.zeros(0, dtype=np.int64)
    ppos = np.arange(n) + before
    ev = empty_events(n + int(counts.sum()))
    p = ev[ppos]
    p["ts_exch"] = ts
    p["ts_local"] = ts + lat
    p["instrument"] = inst
    p["kind"] = _KIND_BY_TYPE[typ]
    p["side"] = np.where(typ <= 3, dirn, np.where(typ <= 5, -dirn, np.where(typ == 6, 0, price)))
    ctrl = typ == 7
    p["price"] = np.where(ctrl, np.nan, price / LOBSTER_PRICE_SCALE)
    p["size"] = np.where(ctrl, np.nan, size.astype(np.float64))
    quote = ~ctrl
    p["bid_px"] = np.where(quote & ~b_empty[:, 0], bpx[:, 0] / LOBSTER_PRICE_SCALE, np.nan)
    p["ask_px"] = np.where(quote & ~a_empty[:, 0], apx[:, 0] / LOBSTER_PRICE_SCALE, np.nan)
    p["bid_sz"] = np.where(quote, bsz[:, 0], np.nan)
    p["ask_sz"] = np.where(quote, asz[:, 0], np.nan)
    p["level"] = 0
    ev[ppos] = p
    nd = int(counts.sum())
    if nd:
        side, dpx, dsz, lvl = (np.zeros(nd, dtype=np.int64) for _ in range(4))
        lobster_depth_diff_nb(bpx, bsz, apx, asz, prev, before, side, dpx, dsz, lvl, True)
        owner = np.repeat(np.arange(n), counts)
        d = ev[np.arange(nd) + owner + 1]
        d["ts_exch"] = ts[owner]
        d["ts_local"] = ts[owner] + lat
        d["instrument"] = inst
        d["kind"] = KIND_DEPTH
        d["side"], d["level"] = side, lvl
        d["price"], d["size"] = dpx / LOBSTER_PRICE_SCALE, dsz
        ev[np.arange(nd) + owner + 1] = d
    if n:
        prev = np.stack([bpx[-1], bsz[-1], apx[-1], asz[-1]])
    return ev, prev


def _count_kinds(st: LobsterStats, ev: np.ndarray) -> None:
    kind = ev["kind"]
    for name in st.events_by_kind:
        st.events_by_kind[name] += int(np.count_nonzero(kind & KIND_NAMES[name]))


def read_lobster(
    message_path: str | os.PathLike[str],
    orderbook_path: str | os.PathLike[str] | None = None,
    *,
    date: str | _dt.date | None = None,
    tz: str = "America/New_York",
    symbol: str | None = None,
    instrument_id: int = 0,
    tick_size: float = 0.01,
    feed_latency_ns: int = 0,
    depth: bool = False,
    chunk_rows: int = DEFAULT_LOBSTER_CHUNK_ROWS,
    on_error: str = "raise",
) -> tuple[np.ndarray, InstrumentTable, LobsterStats]:
    """Read a whole LOBSTER day: ``(events, instruments, stats)``; see the module docstring."""
    if symbol is None:
        name = parse_lobster_name(message_path)
        if name is None:
            raise DataError(Finding("bad_file_name", str(message_path), None, None, Path(message_path).name,
                                    "no symbol in the file name", "pass symbol='...'"))
        symbol = str(name["symbol"])
    table = InstrumentTable([Instrument(instrument_id, symbol, tick_size=tick_size, lot_size=1.0)])
    stats = LobsterStats()
    chunks = list(iter_lobster(message_path, orderbook_path, date=date, tz=tz, instrument_id=instrument_id,
                               feed_latency_ns=feed_latency_ns, depth=depth, chunk_rows=chunk_rows,
                               on_error=on_error, stats=stats))
    events = np.concatenate(chunks) if chunks else np.empty(0, dtype=EVENT_DTYPE)
    return events, table, stats
