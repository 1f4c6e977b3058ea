"""Identical orders in a sliding window: the state behind repeated_execution and duplicate_order.

A rule's block in ``rstate`` (offset ``off``): the ring header ``RB_*``, ``cap`` ring rows of
``SG_NF`` floats (``SG_*``: the orders that passed, oldest at ``RB_HEAD``), ``SC_USED`` (keys in the
table) and ``SC_NROWS`` (table rows: ``SC_TABLE_ROWS * cap`` rounded up to a power of two, so a
hash is reduced with a mask, not a division), then the table rows of ``SG_NF`` floats: an open-addressing
hash table from an order's signature (instrument, side, price, quantity, and the order type for
duplicate_order; NaN prices are equal) to the number of ring rows holding it, kept in the row's
``SG_TS`` column; ``SG_INST == -1`` marks an empty row.

The table turns "how many identical orders in the window" into one probe sequence instead of a
pass over the window, which may hold ``capacity`` orders (1024 by default): the gate's cost per
order no longer grows with the order rate. Keys whose count fell to 0 stay until the table holds
``2 * cap`` keys; then it is rebuilt from the ring (at most ``cap`` live keys), so probing stays short.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tickguard.engine.internal import internal_njit

from .layout import (
    RB_CAP, RB_COUNT, RB_HEAD, RB_NF, RB_OVERFLOW, SG_INST, SG_NF, SG_PRICE, SG_QTY, SG_SIDE,
    SG_TS, SG_TYPE,
)

__all__ = ["SC_TABLE_ROWS", "signature_block", "signature_count_nb", "signature_expire_nb",
           "signature_push_nb"]

SC_TABLE_ROWS = 4  #: table rows per ring row (at least)
SC_USED = 0  #: after the ring rows: keys in the table
SC_NROWS = 1  #: table rows, a power of two
SC_NF = 2
_EMPTY = -1.0
_GOLDEN = -7046029254386353131  # 0x9E3779B97F4A7C15 as int64: Fibonacci hashing


def signature_block(cap: int) -> np.ndarray:
    """A fresh block for a ring of ``cap`` orders (``cap >= 1``)."""
    n_rows = 1 << (SC_TABLE_ROWS * cap - 1).bit_length()
    table = np.zeros((n_rows, SG_NF))
    table[:, SG_INST] = _EMPTY
    head = np.zeros(RB_NF)
    head[RB_CAP] = cap
    return np.concatenate([head, np.zeros(cap * SG_NF), [0.0, float(n_rows)], table.ravel()])


@njit(cache=True, inline="always")
def _row(rs, off, inst, side, otype, price, qty):
    """Table row (offset) holding this key, or the empty row where it would go."""
    cap = int(rs[off + RB_CAP])
    sc = off + RB_NF + cap * SG_NF
    n_rows = int(rs[sc + SC_NROWS])
    table = sc + SC_NF
    x = abs(inst * 7919.0 + side * 104729.0 + otype * 1299709.0 + qty * 15485863.0
            + (price * 179424673.0 if price == price else 0.0))
    k = int(x * 1024.0) if x < 4.0e15 else 0  # keeps ~3 decimals of the price in the key
    h = ((k * _GOLDEN) >> 29) & (n_rows - 1)  # wraps in int64 (jitted); same counts either way
    for _ in range(n_rows):
        row = table + h * SG_NF
        if rs[row + SG_INST] == _EMPTY:
            return row
        p = rs[row + SG_PRICE]
        if (rs[row + SG_INST] == inst and rs[row + SG_SIDE] == side and rs[row + SG_TYPE] == otype
                and rs[row + SG_QTY] == qty and (p == price or (p != p and price != price))):
            return row
        h += 1
        if h == n_rows:
            h = 0
    return -1  # unreachable: the table is rebuilt before it holds 2 * cap of its >= 4 * cap rows


@njit(cache=True, inline="always")
def _add(rs, off, inst, side, otype, price, qty, delta):
    row = _row(rs, off, inst, side, otype, price, qty)
    if rs[row + SG_INST] == _EMPTY:
        rs[row + SG_INST] = inst
        rs[row + SG_SIDE] = side
        rs[row + SG_TYPE] = otype
        rs[row + SG_PRICE] = price
        rs[row + SG_QTY] = qty
        rs[row + SG_TS] = 0.0
        rs[off + RB_NF + int(rs[off + RB_CAP]) * SG_NF + SC_USED] += 1.0
    rs[row + SG_TS] += delta


@njit(cache=True, inline="always")
def _add_ring_row(rs, off, ring_row, delta, use_type):
    _add(rs, off, rs[ring_row + SG_INST], rs[ring_row + SG_SIDE],
         rs[ring_row + SG_TYPE] if use_type else 0.0, rs[ring_row + SG_PRICE], rs[ring_row + SG_QTY],
         delta)


@njit(cache=True, inline="always")
def signature_count_nb(rs, off, inst, side, otype, price, qty, use_type):
    """Ring rows with this signature (``otype`` counts only when ``use_type``)."""
    row = _row(rs, off, float(inst), float(side), float(otype) if use_type else 0.0, price, qty)
    return 0.0 if rs[row + SG_INST] == _EMPTY else rs[row + SG_TS]


@njit(cache=True, inline="always")
def signature_expire_nb(rs, off, cutoff, use_type):
    """Drop ring rows stamped before ``cutoff``, oldest first, uncounting each."""
    cap = int(rs[off + RB_CAP])
    head = int(rs[off + RB_HEAD])
    n = int(rs[off + RB_COUNT])
    while n > 0 and rs[off + RB_NF + head * SG_NF + SG_TS] < cutoff:
        _add_ring_row(rs, off, off + RB_NF + head * SG_NF, -1.0, use_type)
        head += 1
        if head == cap:
            head = 0
        n -= 1
    rs[off + RB_HEAD] = head
    rs[off + RB_COUNT] = n


@njit(cache=True, inline="always")
def signature_push_nb(rs, off, now, inst, side, otype, price, qty, use_type):
    """Append an order that passed; a full ring drops (and uncounts) its oldest, in RB_OVERFLOW."""
    cap = int(rs[off + RB_CAP])
    head = int(rs[off + RB_HEAD])
    n = int(rs[off + RB_COUNT])
    if n == cap:
        _add_ring_row(rs, off, off + RB_NF + head * SG_NF, -1.0, use_type)
        rs[off + RB_OVERFLOW] += 1.0
        head = head + 1 if head + 1 < cap else 0
        n -= 1
    pos = head + n
    row = off + RB_NF + (pos - cap if pos >= cap else pos) * SG_NF
    rs[row + SG_TS] = now
    rs[row + SG_INST] = inst
    rs[row + SG_SIDE] = side
    rs[row + SG_TYPE] = otype
    rs[row + SG_PRICE] = price
    rs[row + SG_QTY] = qty
    rs[off + RB_HEAD] = head
    rs[off + RB_COUNT] = n + 1
    if rs[off + RB_NF + cap * SG_NF + SC_USED] >= 2 * cap:  # too many stale keys: rebuild
        _rebuild(rs, off, use_type)
    _add_ring_row(rs, off, row, 1.0, use_type)


@internal_njit
def _rebuild(rs, off, use_type):
    """Empty the table and count the live ring rows again (all but the newest, added after)."""
    cap = int(rs[off + RB_CAP])
    sc = off + RB_NF + cap * SG_NF
    for k in range(int(rs[sc + SC_NROWS])):
        rs[sc + SC_NF + k * SG_NF + SG_INST] = _EMPTY
    rs[sc + SC_USED] = 0.0
    head = int(rs[off + RB_HEAD])
    for k in range(int(rs[off + RB_COUNT]) - 1):
        slot = head + k
        _add_ring_row(rs, off, off + RB_NF + (slot - cap if slot >= cap else slot) * SG_NF, 1.0,
                      use_type)
