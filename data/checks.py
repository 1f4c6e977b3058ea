"""Vectorised row checks over one chunk of events: which row is wrong, in which field, and why.

Why a separate module: validation (:mod:`tickguard.data.validate`) is bookkeeping — strict vs
quarantine, counts, the report — while the checks themselves are pure array code that is easiest
to trust when it can be read and tested on its own. Every check is a numpy mask over a chunk of
:data:`EVENT_DTYPE` rows (no numba: each check is one or two whole-array operations already, and
the only sequential rule, "below the running maximum", is a ``maximum.accumulate``).

A check result is a :data:`HITS_DTYPE` array, one element per (row, code, field) problem:
``idx`` (position in the chunk), ``code`` (index into :data:`CODES`), ``field`` (index into
:data:`EVENT_FIELDS`, -1 for none) and ``aux`` (check-specific: the running maximum for
``out_of_order``, the earlier identical row for ``duplicate_row``, the suggested unit for
``unit_mixup``). Messages are written later by :func:`describe`, only for the rows someone will
read (the first findings, the quarantined rows), so a clean chunk costs only the masks.

Stateful checks (``out_of_order``, ``duplicate_row``) work on *groups*: the events that came from
one source row (a bar row becomes four events sharing one row number). A group is accepted or
quarantined as a whole, and these checks only look at groups that passed the stateless checks.
"""

from __future__ import annotations

import numpy as np

from .schema import (
    EVENT_DTYPE,
    EVENT_FIELDS,
    InstrumentTable,
    KIND_BAR,
    KIND_DEPTH,
    KIND_NAMES,
    KIND_QUOTE,
    KIND_TRADE,
    KIND_TYPE_MASK,
    kind_to_str,
)

__all__ = [
    "CODES",
    "GRID_TOL",
    "HITS_DTYPE",
    "TIME_UNITS",
    "describe",
    "duplicate_groups",
    "group_starts",
    "out_of_order",
    "plausible_window",
    "stateless_checks",
    "unit_hint",
]

#: Every code a row check can produce, in the order findings on one row are listed.
CODES: tuple[str, ...] = (
    "unknown_kind",
    "unknown_instrument",
    "unit_mixup",
    "implausible_time",
    "non_finite",
    "non_positive_price",
    "negative_size",
    "non_positive_size",
    "crossed_quote",
    "off_tick_grid",
    "off_lot_grid",
    "local_before_exchange",
    "out_of_order",
    "duplicate_row",
)
_C = {code: i for i, code in enumerate(CODES)}
_F = {name: i for i, name in enumerate(EVENT_FIELDS)}

HITS_DTYPE = np.dtype([("idx", np.int64), ("code", np.int16), ("field", np.int16), ("aux", np.int64)])

#: Off-grid tolerance, in ticks (or lots): ``|q - round(q)| > GRID_TOL + 4 * eps * |q|`` with
#: ``q = value / tick``. 1e-6 tick is far below any real mis-tick (a price off by 1e-6 of a tick
#: is a decimal-to-binary artefact, not a bad print); the ``eps`` term absorbs the rounding of the
#: division itself for large ``q`` (a decimal price parses with relative error <= eps/2, and the
#: division adds <= eps/2 more).
GRID_TOL = 1e-6

#: Time units a reader may have been told, as nanoseconds per unit.
TIME_UNITS: dict[str, int] = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}

_KNOWN_KIND_BITS = sum(KIND_NAMES.values())
_PRICE_FIELDS = ("price", "bid_px", "ask_px")
_SIZE_FIELDS = ("size", "bid_sz", "ask_sz")
# Fields that must be finite for a kind bit: QUOTE needs the top of book (each side filled or
# empty, see below), TRADE and DEPTH a price and size, BAR a price (its size is a volume share).
_REQUIRED = {
    "price": int(KIND_TRADE | KIND_DEPTH | KIND_BAR),
    "size": int(KIND_TRADE | KIND_DEPTH),
    "bid_px": int(KIND_QUOTE),
    "ask_px": int(KIND_QUOTE),
    "bid_sz": int(KIND_QUOTE),
    "ask_sz": int(KIND_QUOTE),
}
_EPOCH_1980_NS = 315_532_800 * 10**9
_DAY_NS = 86_400 * 10**9


def plausible_window(now_ns: int) -> tuple[int, int]:
    """Timestamps outside ``[1980-01-01, now + 1 day]`` (ns) are implausible."""
    return _EPOCH_1980_NS, int(now_ns) + _DAY_NS


def _hits(idx: np.ndarray, code: str, field: str | None, aux: np.ndarray | int = 0) -> np.ndarray:
    out = np.empty(len(idx), dtype=HITS_DTYPE)
    out["idx"] = idx
    out["code"] = _C[code]
    out["field"] = -1 if field is None else _F[field]
    out["aux"] = aux
    return out


def _scale_hint(values: np.ndarray, lo: int, hi: int, unit_ns: int) -> np.ndarray:
    """For each value, the ns-per-unit that would make it plausible (0 when none does).

    A value ``v`` read with ``unit_ns`` came from a raw number ``v / unit_ns``; if ``v * k`` is
    plausible the raw number was in units of ``unit_ns * k`` ns. Only ``k`` = 1e3, 1e6, 1e9 can
    apply: a value 1000x too *large* would exceed int64 nanoseconds (year 2262), which the reader
    already rejects. The window spans a factor < 6, so at most one ``k`` fits.
    """
    v = values.astype(np.float64)
    out = np.zeros(len(v), dtype=np.int64)
    for k in (10**3, 10**6, 10**9):
        if unit_ns * k in TIME_UNITS.values():
            out[(v * k >= lo) & (v * k <= hi)] = unit_ns * k
    return out


def unit_hint(value: int, lo: int, hi: int, unit_ns: int) -> str | None:
    """The ``time_unit`` that would make ``value`` plausible, or None (scalar twin for messages)."""
    hint = int(_scale_hint(np.array([value], dtype=np.int64), lo, hi, unit_ns)[0])
    return next((name for name, ns in TIME_UNITS.items() if ns == hint), None) if hint else None


def _off_grid(values: np.ndarray, step: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        q = values / step
        err = np.abs(q - np.round(q))
        return (step > 0) & np.isfinite(q) & (err > GRID_TOL + 4 * np.finfo(np.float64).eps * np.abs(q))


def _lookup(dense: np.ndarray | None, ids: np.ndarray) -> np.ndarray:
    """Per-event value of a per-id array; NaN for ids outside it (unknown ids: no grid check)."""
    out = np.full(len(ids), np.nan)
    if dense is None or len(dense) == 0:
        return out
    ok = (ids >= 0) & (ids < len(dense))
    out[ok] = dense[ids[ok]]
    return out


def stateless_checks(
    events: np.ndarray,
    *,
    lo_ns: int,
    hi_ns: int,
    unit_ns: int = 1,
    known_ids: np.ndarray | None = None,
    tick: np.ndarray | None = None,
    lot: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Every per-row problem of ``events``, and a mask of locked quotes (bid == ask).

    ``known_ids`` (None: no instrument check), ``tick`` and ``lot`` (per-id arrays, NaN or 0 = no
    grid check) come from the instrument table. Returns hits sorted by (idx, code order).
    """
    if events.dtype != EVENT_DTYPE:
        raise TypeError(f"events must have EVENT_DTYPE, got {events.dtype}")
    kind = events["kind"].astype(np.int64)
    ids = events["instrument"].astype(np.int64)
    parts: list[np.ndarray] = []

    def add(mask: np.ndarray, code: str, field: str | None, aux: np.ndarray | int = 0) -> None:
        idx = np.flatnonzero(mask)
        if len(idx):
            parts.append(_hits(idx, code, field, aux if np.isscalar(aux) else aux[idx]))

    add(((kind & ~_KNOWN_KIND_BITS) != 0) | ((kind & int(KIND_TYPE_MASK)) == 0), "unknown_kind", "kind")
    if known_ids is not None:
        add(~np.isin(ids, known_ids), "unknown_instrument", "instrument")
    for name in ("ts_exch", "ts_local"):
        ts = events[name]
        bad = np.flatnonzero((ts < lo_ns) | (ts > hi_ns))
        if len(bad):
            hint = _scale_hint(ts[bad], lo_ns, hi_ns, unit_ns)
            mix = hint != 0
            if mix.any():
                parts.append(_hits(bad[mix], "unit_mixup", name, hint[mix]))
            if (~mix).any():
                parts.append(_hits(bad[~mix], "implausible_time", name))
    quote = (kind & int(KIND_QUOTE)) != 0
    # An empty book side on a quote is price NaN with size 0 or NaN (the schema's "NaN if
    # empty"; LOBSTER's empty-side marker becomes exactly that). Anything else half-filled is bad.
    empty_side = {}
    for px, sz in (("bid_px", "bid_sz"), ("ask_px", "ask_sz")):
        e = np.isnan(events[px]) & (np.isnan(events[sz]) | (events[sz] == 0))
        empty_side[px] = empty_side[sz] = e
    for name, need in _REQUIRED.items():
        v = events[name]
        required = (kind & need) != 0
        if name in empty_side:
            required &= ~empty_side[name]
        # NaN means "absent" in an optional field; infinity is never a value.
        add((required & ~np.isfinite(v)) | np.isinf(v), "non_finite", name)
    for name in _PRICE_FIELDS:
        v = events[name]
        add(np.isfinite(v) & (v <= 0), "non_positive_price", name)
    for name in _SIZE_FIELDS:
        v = events[name]
        add(np.isfinite(v) & (v < 0), "negative_size", name)
    # Size 0 deletes a depth level, may be a no-volume bar, or marks an empty quote side (price
    # NaN); on a trade, or at a quoted price, it is bad.
    add(((kind & int(KIND_TRADE)) != 0) & (events["size"] == 0), "non_positive_size", "size")
    not_bar = (kind & int(KIND_BAR)) == 0
    for px, sz in (("bid_px", "bid_sz"), ("ask_px", "ask_sz")):
        add(quote & not_bar & np.isfinite(events[px]) & (events[sz] == 0), "non_positive_size", sz)
    bid, ask = events["bid_px"], events["ask_px"]
    add(bid > ask, "crossed_quote", "bid_px")  # NaN compares False: one-sided books pass
    locked = np.isfinite(bid) & (bid == ask)
    if tick is not None:
        t = _lookup(tick, ids)
        # Quoted prices sit on the tick grid; a trade (or a bar built from trades) may print at
        # the midpoint of two quoted prices (hidden/midpoint orders), i.e. on the half-tick grid.
        half = (kind & int(KIND_TRADE | KIND_BAR)) != 0
        add(_off_grid(events["price"], np.where(half, t / 2, t)), "off_tick_grid", "price")
        for name in ("bid_px", "ask_px"):
            add(_off_grid(events[name], t), "off_tick_grid", name)
    if lot is not None:
        step = _lookup(lot, ids)
        # A bar's size is a share of the bar volume, not a traded quantity: no lot grid.
        for name in _SIZE_FIELDS:
            mask = _off_grid(events[name], step)
            add(mask & not_bar if name == "size" else mask, "off_lot_grid", name)
    add(events["ts_local"] < events["ts_exch"], "local_before_exchange", "ts_local")
    if not parts:
        return np.empty(0, dtype=HITS_DTYPE), locked
    hits = np.concatenate(parts)
    return hits[np.lexsort((hits["field"], hits["code"], hits["idx"]))], locked


def group_starts(rows: np.ndarray) -> np.ndarray:
    """Start index of each run of equal source row numbers (the events of one source row)."""
    if len(rows) == 0:
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])


def out_of_order(ts: np.ndarray, starts: np.ndarray, prev_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Events whose ``ts`` is below the running maximum of the accepted events before them.

    Returns ``(bad, before)``: a per-event mask and the maximum each event was compared with. A
    group with any bad event is not accepted, so it must not raise the maximum for later groups.
    With one event per group a bad event is below the maximum and cannot raise it, so one
    ``maximum.accumulate`` is exact; multi-event groups fall back to a loop when any is bad.
    """
    n = len(ts)
    if n == 0:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64)
    before = np.maximum.accumulate(np.r_[np.int64(prev_max), ts[:-1]].astype(np.int64))
    bad = ts < before
    if not bad.any() or len(starts) == n:
        return bad, before
    ends = np.r_[starts[1:], n]
    running = np.int64(prev_max)
    for s, e in zip(starts, ends):
        g = ts[s:e]
        b = np.maximum.accumulate(np.r_[running, g[:-1]])
        before[s:e] = b
        bad[s:e] = g < b
        if not bad[s:e].any():
            running = max(running, g.max())
    return bad, before


def _rows_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Field-by-field equality of two event arrays, NaN equal to NaN."""
    eq = np.ones(len(a), dtype=bool)
    for name in EVENT_FIELDS:
        x, y = a[name], b[name]
        same = x == y
        if x.dtype.kind == "f":
            same |= np.isnan(x) & np.isnan(y)
        eq &= same
    return eq


def duplicate_groups(
    events: np.ndarray, starts: np.ndarray, prev: np.ndarray, eligible: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per group of ``events``: is it identical (same events, same count) to its reference group?

    The reference of a group is the last *eligible* group before it (``eligible``: groups that
    can have been accepted, i.e. not out of order; default all), or ``prev`` — the previous
    accepted group of the stream, possibly empty — when there is none in this chunk. Duplicates
    are identical to their reference, so chaining through them is the same as comparing with the
    previous accepted group. Returns ``(dup, ref)`` with ``ref`` = reference group index, -1 for
    ``prev``, -2 for none.
    """
    ng = len(starts)
    if ng == 0:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64)
    ok = np.ones(ng, dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
    k0 = 1 if len(prev) else 0  # groups in `cat` before this chunk's first group
    cat = np.concatenate([prev, events]) if k0 else events
    cstarts = np.r_[0, starts + len(prev)] if k0 else np.asarray(starts)
    sizes = np.diff(np.r_[cstarts, len(cat)])
    last = np.maximum.accumulate(np.where(np.r_[np.ones(k0, dtype=bool), ok], np.arange(len(sizes)), -1))
    ref = np.r_[-1, last[:-1]]  # index into cat's groups
    has = ref >= 0
    same_size = has & (sizes == sizes[np.maximum(ref, 0)])
    gid = np.repeat(np.arange(len(sizes)), sizes)
    valid = same_size[gid]
    i = np.flatnonzero(valid)
    partner = i - cstarts[gid[i]] + cstarts[ref[gid[i]]]
    eq = np.zeros(len(cat), dtype=bool)
    eq[i] = _rows_equal(cat[i], cat[partner])
    dup = same_size & np.logical_and.reduceat(eq, cstarts)
    ref_out = np.where(has, ref - k0, -2)
    return dup[k0:], ref_out[k0:]


_UNIT_WORDS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}


def describe(code: str, name: str | None, value: object, ev: np.void, aux: int, *,
             table: InstrumentTable | None, window: tuple[int, int], time_unit: str) -> tuple[str, str]:
    """``(message, fix)`` for one finding: ``ev`` is the event, ``aux`` the hit's aux value."""
    inst = int(ev["instrument"])
    if code == "non_finite":
        what = "missing (NaN)" if value != value else value
        return (f"{name} is {what} but a {kind_to_str(ev['kind'])} row needs a finite {name}",
                "supply a number (empty, NaN and inf are not values here), or fix the column mapping")
    if code == "non_positive_price":
        return (f"{name} {value} is not positive",
                "prices must be > 0: check the price column mapping and scale; leave it empty if absent")
    if code == "negative_size":
        return (f"{name} {value} is negative",
                "sizes must be >= 0: check the column mapping (a signed quantity belongs in 'side')")
    if code == "non_positive_size":
        return (f"{name} is 0 on a {kind_to_str(ev['kind'])} row",
                "a trade needs size > 0 and a quote a size at the touch; size 0 only deletes a depth level")
    if code == "crossed_quote":
        return (f"bid {value} is above ask {ev['ask_px'].item()} (crossed quote)",
                "check the bid and ask columns are not swapped; a crossed book cannot be replayed")
    if code == "out_of_order":
        return (f"ts_local {value} is earlier than {aux}, the latest ts_local accepted before it",
                "sort the source by ts_local (stable) before loading; the engine replays in local time")
    if code == "duplicate_row":
        return (f"row is identical in every field to row {aux}",
                "remove the repeated row, or pass duplicates='allow' if the feed really prints identical events")
    if code == "local_before_exchange":
        return (f"ts_local {value} is before ts_exch {ev['ts_exch'].item()}",
                "check the timestamp columns are not swapped and share one time zone (tz=)")
    if code == "unit_mixup":
        unit = unit_hint(value, window[0], window[1], TIME_UNITS[time_unit])
        return (f"{name} {value} looks like {_UNIT_WORDS[unit]} read as {_UNIT_WORDS[time_unit]}",
                f"pass time_unit='{unit}'")
    if code == "implausible_time":
        return (f"{name} {value} ({np.datetime64(int(value), 'ns')}) is outside 1980-01-01 .. now + 1 day",
                "check the timestamp column, its unit (time_unit=) and time zone (tz=)")
    if code in ("off_tick_grid", "off_lot_grid"):
        key = "tick_size" if code == "off_tick_grid" else "lot_size"
        step = getattr(table[inst], key) if table is not None and inst in table else float("nan")
        if name == "price" and int(ev["kind"]) & int(KIND_TRADE | KIND_BAR):
            return (f"{name} {value} is not a multiple of half the {key} {step} of instrument {inst} "
                    "(trades may print at a midpoint, not in between)",
                    f"check the scale of {name}, or correct {key} in the instrument table (0 disables the check)")
        return (f"{name} {value} is not a multiple of {key} {step} of instrument {inst}",
                f"check the scale of {name}, or correct {key} in the instrument table (0 disables the check)")
    if code == "unknown_instrument":
        known = [] if table is None else table.ids[:10].tolist()
        return (f"instrument id {value} is not in the instrument table (ids {known})",
                "add the instrument to the table, or check the instrument/symbol column")
    if code == "unknown_kind":
        what = "has no type bit" if (int(value) & 0xFF) == 0 else "has unknown bits"
        return (f"kind {value} ({kind_to_str(int(value))}) {what}",
                "use kind names quote|trade|depth|snapshot|bar|control, optionally |last_in_batch")
    raise AssertionError(code)  # pragma: no cover - every code is described above
