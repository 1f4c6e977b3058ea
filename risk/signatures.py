"""Identical orders in a sliding window: the state behind repeated_execution and duplicate_order.

A rule's block in ``rstate`` (offset ``off``): the ring header ``RB_*``, ``cap`` ring rows of
``SG_NF`` floats (``SG_*``: the orders that passed, oldest at ``RB_HEAD``), the table header
``SC_*``, then the table rows of ``SG_NF`` floats: an open-addressing hash table (``SC_TABLE_ROWS *
cap`` rows rounded up to a power of two, so a hash is reduced with a mask, not a division) from an
order's signature (instrument, side, price, quantity, and the order type for duplicate_order; NaN
prices are equal) to the number of ring rows holding it, kept in the row's ``SG_TS`` column. A
table row is empty unless its ``SG_ROW`` column holds the table's epoch (``SC_EPOCH``): emptying
the table is one increment.

Most orders need no count at all. A rule denies an order when more than ``threshold`` identical
ones would be in the window; the window holds ``RB_COUNT`` orders of any signature, so while that
is at most ``threshold - 1`` the count cannot matter, and :func:`signature_count_nb` is told so
(``beyond``) and returns without looking. Then the table is not kept up either (``SC_LIVE`` = 0):
a push only writes its ring row and expiry only moves the head, and the table's memory is not
touched (the benchmark's relaxed rules: the two cost the gate ~360 instructions per order instead
of ~500; benchmarks/PERFORMANCE.md, 4 December, evening).

In that common case (:func:`signature_check_nb`, inline) expiry is also lazy: the ring may keep
rows older than the window at its head, so ``RB_COUNT`` bounds the window's orders from above,
and while that bound is at most ``beyond`` and the ring is not full the old rows are left unread;
the ring is cut to the window exactly before a count and before a full ring drops a row (so
``RB_OVERFLOW`` still counts only rows inside the window). Rows older than the window are only
ever at the head: times only grow. And a ring that is empty when it takes a row starts again at
row 0. Together: no read of a row written a window ago per order, and a short window's rows
written to the same lines again instead of through the whole ring (cold lines: the relaxed
default rulebook's loop ran ~1.8 ms of ~102 faster per 10^7 canonical events, lower in 11 of 12
pairs of identical copies; benchmarks/PERFORMANCE.md, 5 December, late morning).

When a count is needed, a window of at most ``SC_SCAN`` orders is scanned. A fuller one brings the
table up to date from the ring (a new epoch, one insertion per ring row: O(window), paid once) and
keeps it live, so counting is one probe sequence instead of a pass over the window (which may hold
``cap`` orders, 1024 by default) and the gate's cost per order does not grow with the order rate:
the count finds the key's row, the push that follows reuses it (``SC_PENDING``), and a ring row
that leaves the window uncounts its key through its ``SG_ROW``. The table goes stale again when
expiry leaves at most ``SC_SCAN // 2`` orders in the window; the window grows by one order per
push, so a rebuild over ``n > SC_SCAN`` orders follows at least ``n - SC_SCAN // 2`` pushes since
the table went stale, and the upkeep stays O(1) per order amortized. Keys whose count fell
to 0 stay until the table holds ``2 * cap`` keys; then it is rebuilt from the ring (at most ``cap``
live keys), so probing stays short.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tickguard.engine.internal import internal_njit

from .layout import (
    RB_CAP, RB_COUNT, RB_HEAD, RB_NF, RB_OVERFLOW, SG_INST, SG_NF, SG_PRICE, SG_QTY, SG_ROW,
    SG_SIDE, SG_TS, SG_TYPE,
)
from .slots import SLOT_MASK, int_nb, int_view, ring_header, ring_slot_nb, set_int_nb, slot_nb

__all__ = ["SCAN_ROWS", "SC_TABLE_ROWS", "signature_block", "signature_check_nb", "signature_count_nb",
           "signature_expire_nb", "signature_push_nb", "signature_unpush_nb"]

SC_TABLE_ROWS = 4  #: table rows per ring row (at least)
SCAN_ROWS = 16  #: windows of at most this many orders are counted by a scan, without the table
SC_USED = 0  #: after the ring rows: keys in the table
SC_NROWS = 1  #: table rows, a power of two (SC_NROWS, SC_PENDING, SC_EPOCH, SC_SCAN: integer slots)
SC_PENDING = 2  #: the table row (offset) of the key signature_count_nb probed last, -1: none
SC_LIVE = 3  #: 1.0 while the table counts every ring row; 0.0: stale, not kept up
SC_EPOCH = 4  #: table rows whose SG_ROW (an integer slot, as in ring rows) holds another value are empty
SC_SCAN = 5  #: the most orders in the window counted by a scan (SCAN_ROWS unless a test sets it)
SC_DROPPED = 6  #: 1.0 when the last push dropped the oldest ring row, kept at SC_SAVED for an unpush
SC_SAVED = 7  #: SG_NF floats: that row
SC_NF = SC_SAVED + SG_NF
_GOLDEN = -7046029254386353131  # 0x9E3779B97F4A7C15 as int64: Fibonacci hashing


def signature_block(cap: int, scan_rows: int = SCAN_ROWS) -> np.ndarray:
    """A fresh block for a ring of ``cap`` orders (``cap >= 1``); windows of at most ``scan_rows``
    orders are counted by a scan of the ring."""
    n_rows = 1 << (SC_TABLE_ROWS * cap - 1).bit_length()
    sc = np.zeros(SC_NF)
    ints = int_view(sc)
    ints[SC_NROWS] = n_rows
    ints[SC_PENDING] = -1  # nothing looked up
    ints[SC_EPOCH] = 1  # the zeroed rows below are empty
    ints[SC_SCAN] = scan_rows
    return np.concatenate([ring_header(cap), np.zeros(cap * SG_NF), sc, np.zeros(n_rows * SG_NF)])


# helpers inlined by LLVM (forceinline), not by numba: the same instructions per order, and with
# risk/killswitch.py's a cold rulebook build ~4 s shorter (engine/internal.py, "Inlining")
@njit(cache=True, forceinline=True)
def _same_key(rs, row, inst, side, otype, price, qty):
    p = rs[row + SG_PRICE]
    return (rs[row + SG_INST] == inst and rs[row + SG_SIDE] == side and rs[row + SG_TYPE] == otype
            and rs[row + SG_QTY] == qty and (p == price or (p != p and price != price)))


@njit(cache=True, forceinline=True)
def _row(rs, sc, inst, side, otype, price, qty):
    """Table row (offset) holding this key, or the empty row where it would go (``sc``: the
    table header's offset)."""
    n_rows = slot_nb(rs, sc + SC_NROWS)
    mask = (n_rows - 1) & SLOT_MASK  # masked: h stays known >= 0 around the loop (slots.py)
    epoch = int_nb(rs, sc + SC_EPOCH)
    table = sc + SC_NF
    x = abs(inst * 7919.0 + side * 104729.0 + otype * 1299709.0 + qty * 15485863.0
            + (price * 179424673.0 if price == price else 0.0))
    k = int(x * 1024.0) if x < 4.0e15 else 0  # keeps ~3 decimals of the price in the key
    # wraps in int64 (jitted); same counts either way. SLOT_MASK: known >= 0 (slots.py)
    h = ((k * _GOLDEN) >> 29) & mask
    for _ in range(n_rows):
        row = table + h * SG_NF
        if int_nb(rs, row + SG_ROW) != epoch or _same_key(rs, row, inst, side, otype, price, qty):
            return row
        h = (h + 1) & mask
    return -1  # unreachable: the table is rebuilt before it holds 2 * cap of its >= 4 * cap rows


@njit(cache=True, forceinline=True)
def _count_key(rs, sc, row, key):
    """Count the key held in the ring row at ``key`` (SG_* columns) once more, at table row
    ``row`` (found by _row for it), inserting it there if that row is empty."""
    if int_nb(rs, row + SG_ROW) != int_nb(rs, sc + SC_EPOCH):
        for c in (SG_INST, SG_SIDE, SG_TYPE, SG_PRICE, SG_QTY):
            rs[row + c] = rs[key + c]
        set_int_nb(rs, row + SG_ROW, int_nb(rs, sc + SC_EPOCH))
        rs[row + SG_TS] = 0.0
        rs[sc + SC_USED] += 1.0
    rs[row + SG_TS] += 1.0
    set_int_nb(rs, key + SG_ROW, row)


@njit(cache=True, forceinline=True)
def _find_key(rs, sc, key):
    return _row(rs, sc, rs[key + SG_INST], rs[key + SG_SIDE], rs[key + SG_TYPE], rs[key + SG_PRICE],
                rs[key + SG_QTY])


@njit(cache=True, forceinline=True)
def _key_type(otype, use_type):
    """The order type as the key holds it: only duplicate_order tells types apart."""
    return float(otype) if use_type else 0.0


@internal_njit
def _scan(rs, off, n, inst, side, otype, price, qty):
    """Ring rows with this signature, by a pass over the ``n`` in the window (out of line: it runs
    only when a window may hold more identical orders than the rule allows)."""
    cap = slot_nb(rs, off + RB_CAP)
    head = slot_nb(rs, off + RB_HEAD)
    count = 0.0
    for k in range(n):
        if _same_key(rs, off + RB_NF + ring_slot_nb(head, k, cap) * SG_NF, inst, side, otype, price, qty):
            count += 1.0
    return count


@internal_njit
def _rebuild(rs, off, k):
    """Empty the table (a new epoch) and count the ring's oldest ``k`` rows in it; it is live
    from then on (out of line: it runs once per rebuild)."""
    cap = slot_nb(rs, off + RB_CAP)
    sc = off + RB_NF + cap * SG_NF
    set_int_nb(rs, sc + SC_EPOCH, int_nb(rs, sc + SC_EPOCH) + 1)
    rs[sc + SC_USED] = 0.0
    rs[sc + SC_LIVE] = 1.0
    head = slot_nb(rs, off + RB_HEAD)
    for j in range(k):
        ring = off + RB_NF + ring_slot_nb(head, j, cap) * SG_NF
        _count_key(rs, sc, _find_key(rs, sc, ring), ring)


@njit(cache=True, forceinline=True)
def signature_count_nb(rs, off, inst, side, otype, price, qty, use_type, beyond):
    """Ring rows with this signature (``otype`` counts only when ``use_type``) when the ring holds
    more than ``beyond`` rows; 0.0, without looking, when it holds no more (the count cannot then
    exceed ``beyond``). So ``count > beyond`` is exact either way, and so is the count whenever it
    is more than ``beyond``. A probe of the table leaves the key's row pending, which
    :func:`signature_push_nb` reuses when given the same key."""
    sc = off + RB_NF + slot_nb(rs, off + RB_CAP) * SG_NF
    set_int_nb(rs, sc + SC_PENDING, -1)
    n = slot_nb(rs, off + RB_COUNT)
    if not n > beyond:
        return 0.0
    t = _key_type(otype, use_type)
    if rs[sc + SC_LIVE] == 0.0:
        if n <= slot_nb(rs, sc + SC_SCAN):
            return _scan(rs, off, n, float(inst), float(side), t, price, qty)
        _rebuild(rs, off, n)
    row = _row(rs, sc, float(inst), float(side), t, price, qty)
    set_int_nb(rs, sc + SC_PENDING, row)
    return rs[row + SG_TS] if int_nb(rs, row + SG_ROW) == int_nb(rs, sc + SC_EPOCH) else 0.0


@njit(cache=True, forceinline=True)
def _forget_oldest(rs, off, head, cap, live):
    """Uncount the key of the oldest ring row (at ``head``; its key stays put) if the table is
    live; the next head."""
    if live:
        rs[slot_nb(rs, off + RB_NF + head * SG_NF + SG_ROW) + SG_TS] -= 1.0
    return ring_slot_nb(head, 1, cap)


@njit(cache=True, forceinline=True)
def signature_expire_nb(rs, off, cutoff):
    """Drop ring rows stamped before ``cutoff``, oldest first, uncounting each while the table is
    live (keys stay put); the table goes stale once at most ``SC_SCAN // 2`` rows are left."""
    cap = slot_nb(rs, off + RB_CAP)
    head = slot_nb(rs, off + RB_HEAD)
    n = slot_nb(rs, off + RB_COUNT)
    sc = off + RB_NF + cap * SG_NF
    live = rs[sc + SC_LIVE] != 0.0
    while n > 0 and rs[off + RB_NF + head * SG_NF + SG_TS] < cutoff:
        head = _forget_oldest(rs, off, head, cap, live)
        n -= 1
    set_int_nb(rs, off + RB_HEAD, head)
    set_int_nb(rs, off + RB_COUNT, n)
    if live and n <= slot_nb(rs, sc + SC_SCAN) // 2:
        rs[sc + SC_LIVE] = 0.0


@njit(cache=True, forceinline=True)
def _save_oldest(rs, off, head, sc):
    rs[sc + SC_DROPPED] = 1.0
    for c in range(SG_NF):
        rs[sc + SC_SAVED + c] = rs[off + RB_NF + head * SG_NF + c]


@njit(cache=True, forceinline=True)
def _write_row(rs, ring, now, inst, side, otype, price, qty, use_type):
    rs[ring + SG_INST] = inst
    rs[ring + SG_SIDE] = side
    rs[ring + SG_TYPE] = _key_type(otype, use_type)
    rs[ring + SG_PRICE] = price
    rs[ring + SG_QTY] = qty
    rs[ring + SG_TS] = now


@njit(cache=True, forceinline=True)
def _restart_if_empty(head, n):
    """The head a push writes after: row 0 for an empty ring (any head reads the same), so a
    window that empties between orders keeps writing the same lines (module doc)."""
    return 0 if n == 0 else head


@njit(cache=True, forceinline=True)
def signature_push_nb(rs, off, now, inst, side, otype, price, qty, use_type):
    """Append an order at time ``now``: the key signature_count_nb was given last, given again
    (its table row, if probed, is the pending one); a full ring drops its oldest, counted in
    RB_OVERFLOW. The table, while live, counts the new row and uncounts a dropped one."""
    cap = slot_nb(rs, off + RB_CAP)
    head = slot_nb(rs, off + RB_HEAD)
    n = slot_nb(rs, off + RB_COUNT)
    sc = off + RB_NF + cap * SG_NF
    live = rs[sc + SC_LIVE] != 0.0
    row = int_nb(rs, sc + SC_PENDING)
    set_int_nb(rs, sc + SC_PENDING, -1)  # used up
    rs[sc + SC_DROPPED] = 0.0
    if n == cap:  # the oldest row leaves, kept for signature_unpush_nb
        _save_oldest(rs, off, head, sc)
        head = _forget_oldest(rs, off, head, cap, live)
        rs[off + RB_OVERFLOW] += 1.0
        n -= 1
    head = _restart_if_empty(head, n)
    ring = off + RB_NF + ring_slot_nb(head, n, cap) * SG_NF
    _write_row(rs, ring, now, inst, side, otype, price, qty, use_type)
    set_int_nb(rs, off + RB_HEAD, head)
    set_int_nb(rs, off + RB_COUNT, n + 1)
    if not live:
        return
    if rs[sc + SC_USED] >= 2 * cap:  # too many stale keys: rebuild (keys move)
        _rebuild(rs, off, n)  # all but the new row, counted below
        row = -1
    if row < 0:
        row = _find_key(rs, sc, ring)
    _count_key(rs, sc, row, ring)


@internal_njit
def _check_slow(rs, off, cutoff, now, inst, side, otype, price, qty, use_type, beyond, remember):
    """signature_check_nb's other cases, in three calls (out of line: a live table, a count
    needed, or a full ring)."""
    signature_expire_nb(rs, off, cutoff)
    count = signature_count_nb(rs, off, inst, side, otype, price, qty, use_type, beyond)
    if remember and not count > beyond:
        signature_push_nb(rs, off, now, inst, side, otype, price, qty, use_type)
    return count


@njit(cache=True, forceinline=True)
def signature_check_nb(rs, off, cutoff, now, inst, side, otype, price, qty, use_type, beyond, remember):
    """What one order does to a rule's memory: :func:`signature_expire_nb` at ``cutoff``, then
    :func:`signature_count_nb` (its return), then, if ``remember`` and the count is not past
    ``beyond`` (the order passes this rule), :func:`signature_push_nb`; undone by
    :func:`signature_unpush_nb`. The same answers as the three calls, and one read of the ring's
    header: the common case (a stale table, no count needed, a ring not full) runs inline, the
    others call the three out of line. With the three in a row, and the push in a later pass over
    the rules, the gate ran ~165 more instructions per order on the default rulebook (two such
    rules and a throttle; benchmarks/PERFORMANCE.md, 4 December, late night). Inline, expiry is
    lazy (the module doc): the ring may keep rows older than ``cutoff`` at its head."""
    cap = slot_nb(rs, off + RB_CAP)
    sc = off + RB_NF + cap * SG_NF
    if rs[sc + SC_LIVE] == 0.0:
        head = slot_nb(rs, off + RB_HEAD)
        n = slot_nb(rs, off + RB_COUNT)
        if n > beyond or n == cap:  # the rows held could matter, or one would drop: cut exactly
            while n > 0 and rs[off + RB_NF + head * SG_NF + SG_TS] < cutoff:  # the head moves
                head = ring_slot_nb(head, 1, cap)
                n -= 1
        if not n > beyond and n < cap:  # no count needed, nothing dropped
            if remember:
                head = _restart_if_empty(head, n)
                _write_row(rs, off + RB_NF + ring_slot_nb(head, n, cap) * SG_NF, now, inst, side, otype,
                           price, qty, use_type)
                rs[sc + SC_DROPPED] = 0.0
                n += 1
            set_int_nb(rs, off + RB_HEAD, head)
            set_int_nb(rs, off + RB_COUNT, n)
            return 0.0
    return _check_slow(rs, off, cutoff, now, inst, side, otype, price, qty, use_type, beyond, remember)


@internal_njit
def signature_unpush_nb(rs, off):
    """Undo the last push (the gate remembers an order as it checks it, and forgets it if a later
    rule denies it): its row leaves the ring and the table; a row it dropped comes back."""
    cap = slot_nb(rs, off + RB_CAP)
    head = slot_nb(rs, off + RB_HEAD)
    n = slot_nb(rs, off + RB_COUNT) - 1
    sc = off + RB_NF + cap * SG_NF
    live = rs[sc + SC_LIVE] != 0.0
    ring = off + RB_NF + ring_slot_nb(head, n, cap) * SG_NF  # the newest row
    if live:
        rs[slot_nb(rs, ring + SG_ROW) + SG_TS] -= 1.0
    if rs[sc + SC_DROPPED] != 0.0:  # it took the slot of the row it dropped: that row comes back
        rs[sc + SC_DROPPED] = 0.0
        for c in range(SG_NF):
            rs[ring + c] = rs[sc + SC_SAVED + c]
        head = ring_slot_nb(head, n, cap)
        n += 1
        rs[off + RB_OVERFLOW] -= 1.0
        if live:  # counted again (the push may have rebuilt the table: looked up afresh)
            _count_key(rs, sc, _find_key(rs, sc, ring), ring)
    set_int_nb(rs, off + RB_HEAD, head)
    set_int_nb(rs, off + RB_COUNT, n)
