"""Identical orders in a sliding window: the state behind repeated_execution and duplicate_order.

A rule's block in ``rstate`` (offset ``off``): the ring header ``RB_*``, ``cap`` ring rows of
``SG_NF`` floats (``SG_*``: the orders that passed, oldest at ``RB_HEAD``; ``SG_ROW`` is where the
row's key sits in the table), the table header ``SC_*`` (keys in the table, table rows, and the
pending row: where :func:`signature_count_nb` found, or would insert, the key it counted last),
then the table rows of ``SG_NF`` floats: an open-addressing hash table (``SC_TABLE_ROWS * cap``
rows rounded up to a power of two, so a hash is reduced with a mask, not a division) from an
order's signature (instrument, side, price, quantity, and the order type for duplicate_order; NaN
prices are equal) to the number of ring rows holding it, kept in the row's ``SG_TS`` column;
``SG_INST == -1`` marks an empty row.

The table turns "how many identical orders in the window" into one probe sequence instead of a
pass over the window, which may hold ``capacity`` orders (1024 by default): the gate's cost per
order no longer grows with the order rate. One probe per order: the count finds the key's row,
the push that follows reuses it (the pending row; the gate passes the same key again, which it
holds in registers: copying it through ``rstate`` cost ~10 stores and loads per rule), and a ring
row that leaves the window uncounts its key through ``SG_ROW``. Keys whose count fell to 0 stay
until the table holds ``2 * cap`` keys; then it is rebuilt from the ring (at most ``cap`` live
keys), so probing stays short, and the ring rows learn their keys' new rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tickguard.engine.internal import internal_njit

from .layout import (
    RB_CAP, RB_COUNT, RB_HEAD, RB_NF, RB_OVERFLOW, SG_INST, SG_NF, SG_PRICE, SG_QTY, SG_ROW,
    SG_SIDE, SG_TS, SG_TYPE,
)
from .slots import SLOT_MASK, ring_slot_nb, slot_nb

__all__ = ["SC_TABLE_ROWS", "signature_block", "signature_count_nb", "signature_expire_nb",
           "signature_push_nb"]

SC_TABLE_ROWS = 4  #: table rows per ring row (at least)
SC_USED = 0  #: after the ring rows: keys in the table
SC_NROWS = 1  #: table rows, a power of two
SC_PENDING = 2  #: the table row (offset) of the key signature_count_nb counted last, -1: none
SC_NF = 3
_EMPTY = -1.0
_GOLDEN = -7046029254386353131  # 0x9E3779B97F4A7C15 as int64: Fibonacci hashing


def signature_block(cap: int) -> np.ndarray:
    """A fresh block for a ring of ``cap`` orders (``cap >= 1``)."""
    n_rows = 1 << (SC_TABLE_ROWS * cap - 1).bit_length()
    table = np.zeros((n_rows, SG_NF))
    table[:, SG_INST] = _EMPTY
    head = np.zeros(RB_NF)
    head[RB_CAP] = cap
    sc = np.zeros(SC_NF)
    sc[SC_NROWS] = n_rows
    sc[SC_PENDING] = -1.0  # nothing looked up
    return np.concatenate([head, np.zeros(cap * SG_NF), sc, table.ravel()])


@njit(cache=True, inline="always")
def _row(rs, sc, inst, side, otype, price, qty):
    """Table row (offset) holding this key, or the empty row where it would go (``sc``: the
    table header's offset)."""
    n_rows = slot_nb(rs[sc + SC_NROWS])
    mask = (n_rows - 1) & SLOT_MASK  # masked: h stays known >= 0 around the loop (slots.py)
    table = sc + SC_NF
    x = abs(inst * 7919.0 + side * 104729.0 + otype * 1299709.0 + qty * 15485863.0
            + (price * 179424673.0 if price == price else 0.0))
    k = int(x * 1024.0) if x < 4.0e15 else 0  # keeps ~3 decimals of the price in the key
    # wraps in int64 (jitted); same counts either way. SLOT_MASK: known >= 0 (slots.py)
    h = ((k * _GOLDEN) >> 29) & mask
    for _ in range(n_rows):
        row = table + h * SG_NF
        if rs[row + SG_INST] == _EMPTY:
            return row
        p = rs[row + SG_PRICE]
        if (rs[row + SG_INST] == inst and rs[row + SG_SIDE] == side and rs[row + SG_TYPE] == otype
                and rs[row + SG_QTY] == qty and (p == price or (p != p and price != price))):
            return row
        h = (h + 1) & mask
    return -1  # unreachable: the table is rebuilt before it holds 2 * cap of its >= 4 * cap rows


@njit(cache=True, inline="always")
def _count_key(rs, sc, row, key):
    """Count the key held in the row at ``key`` (SG_* columns) once more, at table row ``row``
    (found by _row for it), inserting it there if that row is empty."""
    if rs[row + SG_INST] == _EMPTY:
        for c in (SG_INST, SG_SIDE, SG_TYPE, SG_PRICE, SG_QTY):
            rs[row + c] = rs[key + c]
        rs[row + SG_TS] = 0.0
        rs[sc + SC_USED] += 1.0
    rs[row + SG_TS] += 1.0
    rs[key + SG_ROW] = row


@njit(cache=True, inline="always")
def _find_key(rs, sc, key):
    return _row(rs, sc, rs[key + SG_INST], rs[key + SG_SIDE], rs[key + SG_TYPE], rs[key + SG_PRICE],
                rs[key + SG_QTY])


@njit(cache=True, inline="always")
def _key_type(otype, use_type):
    """The order type as the key holds it: only duplicate_order tells types apart."""
    return float(otype) if use_type else 0.0


@njit(cache=True, inline="always")
def signature_count_nb(rs, off, inst, side, otype, price, qty, use_type):
    """Ring rows with this signature (``otype`` counts only when ``use_type``). Its table row
    becomes the pending one, which :func:`signature_push_nb` reuses when given the same key."""
    sc = off + RB_NF + slot_nb(rs[off + RB_CAP]) * SG_NF
    row = _row(rs, sc, float(inst), float(side), _key_type(otype, use_type), price, qty)
    rs[sc + SC_PENDING] = row
    return 0.0 if rs[row + SG_INST] == _EMPTY else rs[row + SG_TS]


@njit(cache=True, inline="always")
def _forget_oldest(rs, off, head, cap):
    """Uncount the key of the oldest ring row (at ``head``; its key stays put); the next head."""
    rs[slot_nb(rs[off + RB_NF + head * SG_NF + SG_ROW]) + SG_TS] -= 1.0
    return ring_slot_nb(head, 1, cap)


@njit(cache=True, inline="always")
def signature_expire_nb(rs, off, cutoff):
    """Drop ring rows stamped before ``cutoff``, oldest first, uncounting each (keys stay put)."""
    cap = slot_nb(rs[off + RB_CAP])
    head = slot_nb(rs[off + RB_HEAD])
    n = slot_nb(rs[off + RB_COUNT])
    while n > 0 and rs[off + RB_NF + head * SG_NF + SG_TS] < cutoff:
        head = _forget_oldest(rs, off, head, cap)
        n -= 1
    rs[off + RB_HEAD] = head
    rs[off + RB_COUNT] = n


@njit(cache=True, inline="always")
def signature_push_nb(rs, off, now, inst, side, otype, price, qty, use_type):
    """Append an order at time ``now``: the key signature_count_nb counted last, given again (its
    table row is the pending one); a full ring drops (and uncounts) its oldest, in RB_OVERFLOW."""
    cap = slot_nb(rs[off + RB_CAP])
    head = slot_nb(rs[off + RB_HEAD])
    n = slot_nb(rs[off + RB_COUNT])
    sc = off + RB_NF + cap * SG_NF
    row = int(rs[sc + SC_PENDING])
    rs[sc + SC_PENDING] = -1.0  # used up
    if n == cap:
        head = _forget_oldest(rs, off, head, cap)
        rs[off + RB_OVERFLOW] += 1.0
        n -= 1
    ring = off + RB_NF + ring_slot_nb(head, n, cap) * SG_NF
    rs[ring + SG_INST] = inst
    rs[ring + SG_SIDE] = side
    rs[ring + SG_TYPE] = _key_type(otype, use_type)
    rs[ring + SG_PRICE] = price
    rs[ring + SG_QTY] = qty
    rs[ring + SG_TS] = now
    rs[off + RB_HEAD] = head
    rs[off + RB_COUNT] = n + 1
    if rs[sc + SC_USED] >= 2 * cap:  # too many stale keys: rebuild (keys move)
        _rebuild(rs, off)
        row = -1
    if row < 0:
        row = _find_key(rs, sc, ring)
    _count_key(rs, sc, row, ring)


@internal_njit
def _rebuild(rs, off):
    """Empty the table and count the live ring rows again (all but the newest, added after)."""
    cap = slot_nb(rs[off + RB_CAP])
    sc = off + RB_NF + cap * SG_NF
    for k in range(slot_nb(rs[sc + SC_NROWS])):
        rs[sc + SC_NF + k * SG_NF + SG_INST] = _EMPTY
    rs[sc + SC_USED] = 0.0
    head = slot_nb(rs[off + RB_HEAD])
    for k in range(slot_nb(rs[off + RB_COUNT]) - 1):
        ring = off + RB_NF + ring_slot_nb(head, k, cap) * SG_NF
        _count_key(rs, sc, _find_key(rs, sc, ring), ring)
