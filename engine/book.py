"""The exchange's L2 book per instrument, rebuilt from ``KIND_DEPTH`` / ``KIND_SNAPSHOT`` rows.

Layout: ``book`` float64[n_instruments, 2, levels, B_NF] — side 0 the bids (best = highest price
first), side 1 the asks (lowest first); per level the price, the displayed size and the size our
own marketable orders took from it since the data last updated that level (so we never take the
same displayed liquidity twice). ``meta`` int64[n_instruments, BM_NF]: levels in use per side, the
exchange time of the snapshot batch last applied per side, and whether depth rows were seen at all.

Depth rows carry (side +1 bid / -1 ask, price, new total size at that price; size 0 deletes the
level). The first ``KIND_SNAPSHOT`` row of a side at a new exchange time clears that side first.
When a side holds more than ``levels`` prices, the worst are dropped (they come back when the data
updates them again): configure ``EngineConfig.book_levels`` at least as deep as the data.
"""

from __future__ import annotations

import math

from .internal import internal_njit
from .minmax import max2, min2


__all__ = [
    "B_NF", "B_PX", "B_SZ", "B_TAKEN", "BM_HAS_L2", "BM_N_ASK", "BM_N_BID", "BM_NF", "BM_SNAP_ASK",
    "BM_SNAP_BID", "apply_depth_nb", "available_within_nb", "book_side_nb", "level_size_nb",
    "take_level_nb",
]

B_PX = 0
B_SZ = 1
B_TAKEN = 2
B_NF = 3

BM_N_BID = 0
BM_N_ASK = 1
BM_SNAP_BID = 2  #: ts_exch of the snapshot batch last applied to the bids
BM_SNAP_ASK = 3
BM_HAS_L2 = 4  #: 1 once a depth or snapshot row of the instrument was applied
BM_NF = 5


@internal_njit
def book_side_nb(order_side):
    """Book side index holding resting orders of ``order_side`` (+1 buy -> bids 0, -1 -> asks 1)."""
    return 0 if order_side > 0 else 1


@internal_njit
def _better(s, a, b):
    """Price ``a`` ranks before ``b`` on book side ``s``."""
    return a > b if s == 0 else a < b


@internal_njit
def _same(a, b, tick):
    if tick > 0.0:
        return abs(a - b) < 0.5 * tick
    return abs(a - b) <= 1e-12 * max2(1.0, abs(a))


@internal_njit
def apply_depth_nb(book, meta, inst, side, price, size, ts, snapshot, tick):
    """Apply one depth/snapshot row; returns False when the row is unusable (no side/price)."""
    if side == 0 or math.isnan(price):
        return False
    s = 0 if side > 0 else 1
    levels = book.shape[2]
    if levels == 0:
        return False
    meta[inst, BM_HAS_L2] = 1
    if snapshot and meta[inst, BM_SNAP_BID + s] != ts:
        meta[inst, BM_SNAP_BID + s] = ts
        meta[inst, BM_N_BID + s] = 0
    n = meta[inst, BM_N_BID + s]
    sz = 0.0 if math.isnan(size) else size
    k = 0
    while k < n and _better(s, book[inst, s, k, B_PX], price) and not _same(book[inst, s, k, B_PX], price, tick):
        k += 1
    if k < n and _same(book[inst, s, k, B_PX], price, tick):
        if sz <= 0.0:  # delete level k
            for m in range(k, n - 1):
                for f in range(B_NF):
                    book[inst, s, m, f] = book[inst, s, m + 1, f]
            meta[inst, BM_N_BID + s] = n - 1
        else:
            book[inst, s, k, B_SZ] = sz
            book[inst, s, k, B_TAKEN] = 0.0  # the data now shows this level as it is
        return True
    if sz <= 0.0 or k >= levels:  # deleting an unknown level, or a price beyond our depth
        return True
    last = min2(n, levels - 1)  # insert at k, shifting the rest down (the worst may fall off)
    for m in range(last, k, -1):
        for f in range(B_NF):
            book[inst, s, m, f] = book[inst, s, m - 1, f]
    book[inst, s, k, B_PX] = price
    book[inst, s, k, B_SZ] = sz
    book[inst, s, k, B_TAKEN] = 0.0
    meta[inst, BM_N_BID + s] = min2(n + 1, levels)
    return True


@internal_njit
def level_size_nb(book, meta, inst, s, price, tick):
    """Displayed size at ``price`` on book side ``s``: 0 when better than the best level or
    between levels, NaN when beyond the last level we hold (not visible)."""
    n = meta[inst, BM_N_BID + s]
    for k in range(n):
        px = book[inst, s, k, B_PX]
        if _same(px, price, tick):
            return book[inst, s, k, B_SZ]
        if _better(s, price, px):
            return 0.0
    return math.nan


@internal_njit
def _within(s, px, limit):
    return px <= limit if s == 1 else px >= limit


@internal_njit
def available_within_nb(book, meta, inst, s, limit):
    """Displayed size not yet taken by us on side ``s`` at prices within ``limit`` (a buy walks the
    asks up to its limit, a sell the bids down to it)."""
    total = 0.0
    for k in range(meta[inst, BM_N_BID + s]):
        if not _within(s, book[inst, s, k, B_PX], limit):
            break
        total += max2(book[inst, s, k, B_SZ] - book[inst, s, k, B_TAKEN], 0.0)
    return total


@internal_njit
def take_level_nb(book, meta, inst, s, k, limit, want):
    """Take up to ``want`` from level ``k`` of side ``s``; returns (price, qty), price NaN once
    the walk is past the last level or the limit (a level we already emptied gives qty 0)."""
    if k >= meta[inst, BM_N_BID + s]:
        return math.nan, 0.0
    px = book[inst, s, k, B_PX]
    if not _within(s, px, limit):
        return math.nan, 0.0
    avail = book[inst, s, k, B_SZ] - book[inst, s, k, B_TAKEN]
    q = min2(want, avail) if avail > 0.0 else 0.0
    book[inst, s, k, B_TAKEN] += q
    return px, q
