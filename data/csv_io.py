"""CSV (and ``.csv.gz``) in: text chunks -> raw string columns -> typed values, keeping every bad row.

Why hand-split lines instead of ``pandas.read_csv``: pandas silently pads a short row with NaN and
either raises on a long one or skips it. Here every physical line is accounted for: a row with the
wrong number of fields becomes a :class:`~tickguard.data.parsed.Reject` (``"truncated_line"`` when
it is the last line of the file cut short, ``"wrong_field_count"`` elsewhere), blank lines are
skipped (they are not data rows), and row numbers are physical: data row ``r`` is line ``r + 1``.
Files with quoted fields go through the :mod:`csv` module (quotes may hold commas or newlines).

This module also turns a raw table into events (:func:`table_to_chunk`, driven by a
:class:`ColumnPlan` that :func:`tickguard.data.readers.plan_columns` builds from the options),
with vectorised value parsers shared by :mod:`.readers` and :mod:`.bars`; a row's first problem
becomes its one Reject, so counts are conserved. Memory is bounded by ``chunk_rows`` lines.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import zlib
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import DataError, Finding
from .parsed import ParsedChunk, Reject
from .schema import KIND_DEPTH, KIND_NAMES, KIND_QUOTE, KIND_TRADE, InstrumentTable, empty_events
from .timestamps import INT64_MAX, TS_OK, parse_timestamps, status_problem

__all__ = [
    "BAR_FIELDS",
    "ColumnPlan",
    "CsvText",
    "PRESETS",
    "RawTable",
    "RowProblems",
    "SIDE_WORDS",
    "closest",
    "parse_floats",
    "parse_ints",
    "parse_kinds",
    "parse_sides",
    "parse_symbols",
    "table_instruments",
    "table_times",
    "table_to_chunk",
]

#: Presets: our field -> the user's column (matched case-insensitively).
PRESETS: dict[str, dict[str, str]] = {
    "quotes": {"ts_exch": "time", "bid_px": "bid", "ask_px": "ask", "bid_sz": "bid_size",
               "ask_sz": "ask_size"},
    "trades": {"ts_exch": "timestamp", "price": "price", "size": "qty", "side": "side"},
    "bars": {"time": "time", "open": "open", "high": "high", "low": "low", "close": "close",
             "volume": "volume"},
}
BAR_FIELDS = ("time", "open", "high", "low", "close", "volume")
SIDE_WORDS: dict[str, int] = {"buy": 1, "b": 1, "bid": 1, "+1": 1, "1": 1, "sell": -1, "s": -1,
                              "ask": -1, "-1": -1, "0": 0, "": 0, "none": 0, "n": 0}
_FLOAT_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|infinity)$"
_INT_RE = r"^[+-]?\d{1,18}$"
_MAX_QUOTED_LINES = 10_000  # how far a chunk may grow to close a quoted field spanning lines


# Common vendor spellings of our fields, tried before difflib's string similarity.
_ALIASES = {"bid_price": "bid_px", "bid": "bid_px", "ask_price": "ask_px", "ask": "ask_px",
            "offer": "ask_px", "bid_size": "bid_sz", "ask_size": "ask_sz", "qty": "size",
            "quantity": "size", "volume": "size", "time": "ts_exch", "timestamp": "ts_exch",
            "ticker": "symbol", "type": "kind"}


def closest(name: str, candidates: list[str]) -> str:
    """' Did you mean 'x'?' for a known alias or the closest candidate (difflib), or ''."""
    lower = {c.lower(): c for c in candidates}
    alias = _ALIASES.get(name.lower())
    hit = [alias] if alias in lower else difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.5)
    return f" Did you mean {lower[hit[0]]!r}?" if hit else ""


@dataclass
class RawTable:
    """One chunk of source rows as text: a str object array per column, the 1-based data row of
    each entry, and the rows that could not be split into the header's fields."""

    file: str
    columns: dict[str, np.ndarray]
    rows: np.ndarray
    rejects: list[Reject] = field(default_factory=list)

    def raw(self, i: int) -> dict[str, str]:
        return {name: "" if col[i] is None else str(col[i]) for name, col in self.columns.items()}


class CsvText:
    """An open CSV file: ``header`` is read (and one chunk peeked) on construction, so a missing,
    unreadable, header-only or empty file raises :class:`DataError` before any iteration."""

    def __init__(self, path: str | Path, chunk_rows: int) -> None:
        self.path = Path(path)
        self.file = str(path)
        self.chunk_rows = chunk_rows
        self._line = 0  # physical lines consumed
        if not self.path.exists():
            raise DataError(Finding("missing_file", self.file, None, None, self.file,
                                    "file does not exist", "check the path"))
        gz = self.path.name.lower().endswith(".gz")
        try:
            self._fh = gzip.open(self.path, "rb") if gz else open(self.path, "rb")
        except OSError as exc:
            raise self._unreadable(exc) from exc
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        head = self._read(1)
        text = head[0].decode("utf-8-sig", errors="replace").strip("\r\n") if head else ""
        if not text.strip():
            raise DataError(Finding("empty_file", self.file, None, None, "",
                                    "file is empty (no header line)", "check the file was exported"))
        self.header = [h.strip() for h in next(csv.reader([text]))]
        dupes = sorted({h for h in self.header if self.header.count(h) > 1 or not h})
        if dupes:
            raise DataError(Finding("bad_header", self.file, None, None, self.header,
                                    f"header has empty or repeated column names {dupes}",
                                    "give every column a unique name"))
        self._pending = self._read(1)  # one-line lookahead: tells the last line apart
        self._first = self._next_table()
        if self._first is None:
            raise DataError(Finding("empty_file", self.file, None, None, self.header,
                                    "file has a header but no data rows",
                                    "check the export; a file needs at least one data row"))

    def _unreadable(self, exc: BaseException) -> DataError:
        return DataError(Finding("unreadable_file", self.file, None, None, type(exc).__name__,
                                 f"could not read the file after line {self._line}: {exc}",
                                 "re-download or re-compress the file; it looks truncated or corrupt"))

    def _read(self, n: int) -> list[bytes]:
        try:
            lines = list(islice(self._fh, n))
        except (EOFError, OSError, zlib.error) as exc:
            raise self._unreadable(exc) from exc
        self._line += len(lines)
        return lines

    def close(self) -> None:
        fh = getattr(self, "_fh", None)
        if fh is not None:
            fh.close()

    def tables(self) -> Iterator[RawTable]:
        """Yield the peeked chunk, then the rest; closes the file at the end."""
        try:
            table = self._first
            while table is not None:
                yield table
                table = self._next_table()
        finally:
            self.close()

    def _next_table(self) -> RawTable | None:
        """Read up to ``chunk_rows`` lines (more if a quoted field spans lines); None at EOF."""
        while self._pending:
            first_line = self._line  # physical number of the pending line
            lines = self._pending + self._read(self.chunk_rows - 1)
            quoted = any(b'"' in ln for ln in lines)
            extra = 0  # keep a quoted field that spans lines inside one chunk (bounded)
            while quoted and extra < _MAX_QUOTED_LINES and sum(ln.count(b'"') for ln in lines) % 2:
                more = self._read(1)
                if not more:
                    break
                lines += more
                extra += 1
            self._pending = self._read(1)
            at_eof = not self._pending
            table = None if quoted else self._split_plain(lines, first_line, at_eof)
            if table is None:
                table = self._split_records(lines, first_line, quoted, at_eof)
            if len(table.rows) or table.rejects:
                return table
        return None

    def _split_plain(self, lines: list[bytes], first_line: int, at_eof: bool) -> RawTable | None:
        """Fast path for chunks without quotes: field counts and splitting at C speed."""
        try:
            text = b"".join(lines).decode("utf-8")
        except UnicodeDecodeError:
            return None
        ends_nl = text.endswith("\n")
        parts = pa.array((text[:-1] if ends_nl else text).replace("\r\n", "\n").split("\n"))
        parts = pc.utf8_rtrim(parts, characters="\r")
        commas = _np(pc.count_substring(parts, ","))
        blank = _np(pc.utf8_length(parts)) == 0
        ncols = len(self.header)
        good = (commas == ncols - 1) & ~blank
        strings = _np(parts).astype(object)
        flat = ",".join(strings[good]).split(",") if good.any() else []
        grid = np.array(flat, dtype=object).reshape(-1, ncols)
        columns = {h: grid[:, j].copy() for j, h in enumerate(self.header)}
        rows = np.flatnonzero(good).astype(np.int64) + first_line - 1
        bad = np.flatnonzero(~good & ~blank)
        last = int(np.flatnonzero(~blank)[-1]) if (~blank).any() else -1
        rejects = [self._reject(first_line + i - 1, strings[i].split(","), strings[i],
                                cut=at_eof and i == last, newline=ends_nl or i < len(strings) - 1)
                   for i in bad]
        return RawTable(self.file, columns, rows, rejects)

    def _split_records(self, lines: list[bytes], first_line: int, quoted: bool, at_eof: bool) -> RawTable:
        """Slow path: quoted fields (csv module) or lines that are not valid UTF-8."""
        records: list[tuple[int, list[str] | None, bytes]] = []  # (line, fields, raw line)
        if quoted:
            reader = csv.reader([ln.decode("utf-8", errors="replace") for ln in lines])
            start = 0
            try:
                for rec in reader:
                    blank = not rec or (len(rec) == 1 and not rec[0].strip())
                    records.append((first_line + start, [] if blank else rec, lines[start]))
                    start = reader.line_num
            except csv.Error as exc:
                raise DataError(Finding("unreadable_file", self.file, first_line + start - 1, None,
                                        str(exc), "CSV structure is broken", "fix the quoting")) from exc
        else:
            for i, ln in enumerate(lines):
                try:
                    text = ln.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError:
                    records.append((first_line + i, None, ln))
                    continue
                records.append((first_line + i, text.split(",") if text else [], ln))
        ncols = len(self.header)
        good, rows, rejects = [], [], []
        last = max((k for k, r in enumerate(records) if r[1] != []), default=-1)
        for k, (line_no, fields, ln) in enumerate(records):
            if fields == []:
                continue  # blank line: not a data row
            if fields is not None and len(fields) == ncols:
                good.append(fields)
                rows.append(line_no - 1)
                continue
            text = ln.decode("utf-8", errors="replace").rstrip("\r\n")
            if fields is None:
                rejects.append(Reject(Finding("bad_encoding", self.file, line_no - 1, None, text,
                                              "line is not valid UTF-8", "save the file as UTF-8"), {}))
            else:
                rejects.append(self._reject(line_no - 1, fields, text, cut=at_eof and k == last,
                                            newline=ln.endswith(b"\n")))
        cols = list(zip(*good)) if good else [()] * ncols
        columns = {h: np.array(c, dtype=object) for h, c in zip(self.header, cols)}
        return RawTable(self.file, columns, np.array(rows, dtype=np.int64), rejects)

    def _reject(self, row: int, fields: list[str], text: str, *, cut: bool, newline: bool) -> Reject:
        """A row whose field count does not match the header."""
        ncols = len(self.header)
        if len(fields) < ncols and cut:
            nl = "" if newline else ", no newline at end of file"
            code, col = "truncated_line", self.header[len(fields)]
            msg = (f"last line is cut short: {len(fields)} of {ncols} fields{nl} "
                   "(the file was probably truncated while being written or copied)")
            fix = "re-export or re-download the file, or delete the partial last line"
        else:
            code, col = "wrong_field_count", None
            msg = f"row has {len(fields)} fields, the header has {ncols}"
            fix = "quote fields that contain commas, or fix the row's field count"
        raw = dict(zip(self.header, fields))
        raw.update({f"_extra_{j + 1}": v for j, v in enumerate(fields[ncols:])})
        return Reject(Finding(code, self.file, row, col, text, msg, fix), raw)


# --- value parsers: text -> values, plus masks for empty and unparseable cells ---------------------
def _text(values: np.ndarray) -> pa.Array:
    try:  # the common case, str objects: converted at C speed
        arr = pa.array(values, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = pa.array([v if isinstance(v, str) else ("" if v is None else str(v)) for v in values],
                       type=pa.string())
    return pc.utf8_trim_whitespace(pc.fill_null(arr, ""))


def _np(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False))


def parse_floats(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Text -> (float64, empty, bad). Empty or ``nan`` cells are empty (NaN); anything that is
    not a plain finite decimal number is bad. Arrow's parser is correctly rounded, so a float
    written with ``repr`` reads back bit-identical."""
    text = _text(values)
    empty = (_np(pc.utf8_length(text)) == 0) | _np(pc.equal(pc.utf8_lower(text), "nan"))
    shaped = _np(pc.match_substring_regex(text, _FLOAT_RE, ignore_case=True))
    bad = ~empty & ~shaped
    vals = _np(pc.cast(pc.if_else(pa.array(shaped), text, "nan"), pa.float64())).astype(np.float64)
    bad |= ~empty & ~np.isfinite(vals)
    vals[bad | empty] = np.nan
    return vals, empty, bad


def parse_ints(values: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Text -> (int64, empty, bad); bad also when outside ``[lo, hi]``."""
    text = _text(values)
    empty = _np(pc.utf8_length(text)) == 0
    shaped = _np(pc.match_substring_regex(text, _INT_RE))
    vals = _np(pc.cast(pc.if_else(pa.array(shaped), text, "0"), pa.int64())).astype(np.int64)
    bad = ~empty & (~shaped | (vals < lo) | (vals > hi))
    vals[bad | empty] = 0
    return vals, empty, bad


def _by_unique(values: np.ndarray, one) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``one(text) -> int | None`` once per distinct value; returns (values, bad)."""
    text = _np(_text(values)).astype(object)
    uniq, inverse = np.unique(text, return_inverse=True) if len(text) else (text, text)
    mapped = [one(u) for u in uniq]
    table = np.array([0 if m is None else m for m in mapped], dtype=np.int64)
    bad_u = np.array([m is None for m in mapped], dtype=bool)
    inverse = np.asarray(inverse, dtype=np.int64).reshape(-1)
    return table[inverse] if len(text) else np.zeros(0, np.int64), (
        bad_u[inverse] if len(text) else np.zeros(0, bool))


def _one_kind(text: str) -> int | None:
    if text.lstrip("+").isdigit():
        value = int(text)
        return value if value <= 0xFFFF else None
    bits = 0
    for name in text.lower().split("|"):
        bit = KIND_NAMES.get(name.strip())
        if bit is None:
            return None
        bits |= bit
    return bits


def parse_kinds(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kind text (``"3"``, ``"quote|trade"``, case-insensitive) -> (uint16, empty, bad)."""
    empty = _np(pc.utf8_length(_text(values))) == 0
    vals, bad = _by_unique(values, lambda t: None if not t else _one_kind(t))
    return vals.astype(np.uint16), empty, bad & ~empty


def parse_sides(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Side text (buy/sell/b/s/bid/ask/+1/-1/0, empty -> 0) -> (int8, bad)."""
    vals, bad = _by_unique(values, lambda t: SIDE_WORDS.get(t.lower()))
    return vals.astype(np.int8), bad


def parse_symbols(values: np.ndarray, table: InstrumentTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symbols -> (int32 ids, empty, unknown) through the instrument table (exact match)."""
    ids = {inst.symbol: int(inst.id) for inst in table}
    empty = _np(pc.utf8_length(_text(values))) == 0
    vals, bad = _by_unique(values, lambda t: ids.get(t))
    return vals.astype(np.int32), empty, bad & ~empty

# --- column plan: which user column feeds which field --------------------------------------------
@dataclass(frozen=True)
class ColumnPlan:
    """How a table becomes events. ``fields`` maps our field -> the user's column as spelled in
    the header. ``bars`` is ``(bar_duration_ns, label)`` for OHLCV files, else None. ``instrument``
    is the fixed id of a single-instrument file. ``infer_kind``: no kind column, kind comes from
    which of bid/ask and price/size are filled on each row."""

    file: str
    fields: dict[str, str]
    bars: tuple[int, str] | None
    instrument: int | None
    instruments: InstrumentTable | None
    time_unit: str | None
    tz: object
    feed_latency_ns: int
    infer_kind: bool


class RowProblems:
    """First problem per row, collected vectorised; becomes Rejects with the raw record."""

    def __init__(self, table: RawTable) -> None:
        self.table = table
        self.index = np.full(len(table.rows), -1, dtype=np.int32)
        self._kinds: list[tuple[str, str, str, str]] = []

    @property
    def ok(self) -> np.ndarray:
        return self.index < 0

    def flag(self, mask: np.ndarray, code: str, column: str, message: str, fix: str) -> None:
        hit = np.asarray(mask, dtype=bool) & (self.index < 0)
        if hit.any():
            self._kinds.append((code, column, message, fix))
            self.index[hit] = len(self._kinds) - 1

    def rejects(self) -> list[Reject]:
        """This chunk's rejects (split-level ones included), in row order."""
        t = self.table
        out = list(t.rejects)
        for i in np.flatnonzero(self.index >= 0):
            code, column, message, fix = self._kinds[self.index[i]]
            value = t.columns[column][i] if column in t.columns else ""
            out.append(Reject(Finding(code, t.file, int(t.rows[i]), column, value, message, fix), t.raw(i)))
        out.sort(key=lambda r: r.finding.row or 0)
        return out


# --- table -> events ------------------------------------------------------------------------------
def table_times(table: RawTable, column: str, plan: ColumnPlan, probs: RowProblems) -> np.ndarray:
    """Parse one time column to int64 ns UTC, flagging bad rows."""
    parsed = parse_timestamps(table.columns[column], time_unit=plan.time_unit, tz=plan.tz)
    for status in np.unique(parsed.status[parsed.status != TS_OK]):
        code, message, fix = status_problem(int(status), plan.time_unit, plan.tz)
        probs.flag(parsed.status == status, code, column, message, fix)
    return parsed.ns


def table_instruments(table: RawTable, plan: ColumnPlan, probs: RowProblems) -> np.ndarray:
    """Instrument id per row: the fixed id, a symbol column, or an instrument column holding ids
    (or symbols, when a table is given)."""
    n = len(table.rows)
    if plan.instrument is not None:
        return np.full(n, plan.instrument, dtype=np.int32)
    key = "symbol" if "symbol" in plan.fields else "instrument"
    col = plan.fields[key]
    values = table.columns[col]
    fix = "use an id from the instrument table, or add the symbol to it (instruments=)"
    if key == "symbol":
        ids, empty, unknown = parse_symbols(values, plan.instruments)  # type: ignore[arg-type]
    else:
        ids, empty, unknown = parse_ints(values, 0, 2**31 - 1)
        if plan.instruments is not None and unknown.any():
            sym_ids, _, sym_unknown = parse_symbols(values, plan.instruments)
            ids = np.where(unknown & ~sym_unknown, sym_ids, ids)
            unknown &= sym_unknown
    probs.flag(empty, "missing_value", col, "instrument is empty", "fill the instrument")
    probs.flag(unknown, "unknown_instrument", col,
               "not an instrument id (int >= 0) nor a symbol in the instrument table", fix)
    return ids.astype(np.int32)


_REQUIRED = ((int(KIND_QUOTE), "quote", ("bid_px", "ask_px")),
             (int(KIND_TRADE), "trade", ("price", "size")),
             (int(KIND_DEPTH), "depth", ("price", "size")))


def table_to_chunk(table: RawTable, plan: ColumnPlan) -> ParsedChunk:
    """Convert one raw table (non-bar plan) to events; every bad row becomes a Reject.

    With one timestamp column it is the exchange time and ``ts_local = ts_exch + feed_latency_ns``.
    Without a kind column, a row is a quote when bid/ask are filled, a trade when price/size are.
    """
    f, cols, n = plan.fields, table.columns, len(table.rows)
    probs = RowProblems(table)
    ev = empty_events(n)
    stamps = {k: table_times(table, f[k], plan, probs) for k in ("ts_exch", "ts_local") if k in f}
    if len(stamps) == 2:
        ev["ts_exch"], ev["ts_local"] = stamps["ts_exch"], stamps["ts_local"]
    else:
        (key, ts), = stamps.items()
        probs.flag(ts > INT64_MAX - plan.feed_latency_ns, "unparseable_timestamp", f[key],
                   "timestamp + feed_latency_ns overflows int64 ns", "check the value")
        ev["ts_exch"] = ts
        ev["ts_local"] = np.where(ts > INT64_MAX - plan.feed_latency_ns, ts, ts + plan.feed_latency_ns)
    ev["instrument"] = table_instruments(table, plan, probs)
    if "kind" in f:
        kinds, empty, bad = parse_kinds(cols[f["kind"]])
        probs.flag(empty, "missing_value", f["kind"], "kind is empty", "fill the kind (e.g. quote)")
        probs.flag(bad, "unknown_kind", f["kind"], "kind not recognised",
                   f"use an int of KIND_* bits or names joined by '|' from {sorted(KIND_NAMES)}")
    present: dict[str, np.ndarray] = {}
    for key in ("price", "size", "bid_px", "bid_sz", "ask_px", "ask_sz"):
        if key in f:
            vals, empty, bad = parse_floats(cols[f[key]])
            probs.flag(bad, "unparseable_number", f[key], "not a finite decimal number",
                       "write a plain number such as 101.25 (empty means missing)")
            ev[key], present[key] = vals, ~empty & ~bad
    if plan.infer_kind:
        none = np.zeros(n, dtype=bool)
        quote = present.get("bid_px", none) | present.get("ask_px", none)
        trade = present.get("price", none) | present.get("size", none)
        if not any(k in f for k in ("price", "size")):
            quote = ~none
        elif not any(k in f for k in ("bid_px", "ask_px")):
            trade = ~none
        first = next(f[k] for k in ("bid_px", "ask_px", "price", "size") if k in f)
        probs.flag(~quote & ~trade, "missing_value", first, "row has neither a quote nor a trade",
                   "fill bid/ask or price/size, or remove the row")
        kinds = np.where(quote, int(KIND_QUOTE), 0) | np.where(trade, int(KIND_TRADE), 0)
    ev["kind"] = kinds
    if "side" in f:
        sides, bad = parse_sides(cols[f["side"]])
        probs.flag(bad, "unknown_side", f["side"], "side not recognised",
                   "use buy/sell, b/s, bid/ask, +1/-1, 0, or leave it empty")
        ev["side"] = sides
    if "level" in f:
        levels, _, bad = parse_ints(cols[f["level"]], 0, 255)
        probs.flag(bad, "unparseable_number", f["level"], "level must be an int 0..255", "fix the level")
        ev["level"] = levels
    for bit, name, keys in _REQUIRED:
        need = (ev["kind"] & bit) != 0
        for key in keys:
            probs.flag(need & ~present.get(key, np.zeros(n, dtype=bool)), "missing_value",
                       f.get(key, key), f"a {name} row needs {key}", f"fill {f.get(key, key)!r} on this row")
    keep = probs.ok
    return ParsedChunk(ev[keep], table.rows[keep], probs.rejects())
