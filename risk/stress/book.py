"""Rewrite a stream's prices and displayed sizes while keeping its order book consistent.

Every price and liquidity transform reduces to one per-row map, applied here:

* ``off_bid`` / ``off_ask``: an additive shift, in *half ticks*, of every bid-side / ask-side
  price (``bid_px``, depth rows of side +1, order prices of side +1 on non-trade rows; and the
  same for the ask side). Trade prices move with the side they hit (a buy aggressor prints at the
  ask); rows without a side move by the mean of the two shifts.
* ``k_size``: displayed sizes (``bid_sz``, ``ask_sz``, depth sizes; not trade sizes) times ``k``,
  rounded down to whole lots but never below one lot while the level exists (0 still deletes).
  A level always displays ``scale(its raw size, k of the latest row)``, the same rule as the quote
  sizes of that row, so the depth top and the quote agree for every ``k`` and window.
* ``max_level``: depth levels whose ``level`` field exceeds it are hidden.

Why shifts and not a multiplication of every price: a shift by whole ticks keeps every spread,
every distance between book levels and the tick grid exactly; multiplying each price by ``f < 1``
and rounding merges neighbouring levels onto one price (a book with 1-tick steps cannot shrink
by 20 % and stay distinct). The transforms choose the shift so the *mid* follows their target
(e.g. moved by ``pct`` x the pre-shock mid) to within half a tick. A price far below the book
(an order at a tiny price) could be shifted to or below zero: that is refused with a clear error.

L2 data are deltas: a level keeps the price it was last sent at. When the map changes, the
levels already in the book would be left at prices of the old map, so before the first row with
the new map :func:`remap_nb` re-sends the book: a deletion at the old displayed price and the
level at the new one, for every level whose display changed. A level that the rest of that
(closed) batch deletes is neither re-sent nor sent in it: batches are atomic, so those rows would
only show the old book at new-map prices (after a gap, possibly <= 0). The L1 quote is part of
the book: when that row's batch is closed and carries no quote of the instrument from there on (e.g. a
halt's control row alone in its batch), the last quote is re-sent under the new map too, after the
depth rows, so the depth top and the quote agree at every batch end. The book is replayed by price
(``KIND_SNAPSHOT`` streams are refused: their clearing semantics are not replayed here).
:func:`remap_py` is plain Python and :data:`remap_nb` its numba twin (tests assert they agree).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import register_jitable
from numba.typed import Dict

from tickguard.data.schema import EVENT_DTYPE, KIND_DEPTH, KIND_QUOTE, KIND_SNAPSHOT, KIND_TRADE, KIND_TYPE_MASK

from .core import StressContext, batch_keys, reflag

__all__ = ["NO_LEVEL_LIMIT", "from_half_ticks", "remap_book", "remap_nb", "remap_py", "scale_sizes",
           "to_half_ticks"]

NO_LEVEL_LIMIT = np.iinfo(np.int64).max  #: ``max_level`` that hides nothing
_EPS = 1e-9  # absorbs binary noise in size / lot before flooring (a size is a whole number of lots)


def to_half_ticks(price: np.ndarray, tick: float) -> np.ndarray:
    """Prices as integer half ticks (trades may print at the midpoint of two quoted prices)."""
    with np.errstate(invalid="ignore"):
        return np.rint(np.asarray(price) * 2.0 / tick).astype(np.int64)


def from_half_ticks(h: np.ndarray, tick: float) -> np.ndarray:
    """Half ticks back to prices; ``h / (2 * round(1/tick))`` (the correctly rounded decimal) when
    ``1/tick`` is an integer, as the data layer writes them."""
    inv = 1.0 / tick
    k = round(inv)
    if k >= 1 and abs(inv - k) <= 1e-9 * k:
        return np.asarray(h, dtype=np.float64) / (2.0 * k)
    return np.asarray(h, dtype=np.float64) * (tick / 2.0)


def scale_sizes(size: np.ndarray, k: np.ndarray | float, lot: float) -> np.ndarray:
    """``size * k`` floored to whole lots, at least one lot when ``size > 0``; 0 and NaN unchanged;
    ``k == 1`` leaves a size bit for bit. ``lot == 0`` (unknown) scales without rounding."""
    size = np.asarray(size, dtype=np.float64)
    k = np.broadcast_to(np.asarray(k, dtype=np.float64), size.shape)
    with np.errstate(invalid="ignore"):
        if lot > 0:
            scaled = np.maximum(np.floor(size * k / lot + _EPS), 1.0) * lot
        else:
            scaled = size * k
        return np.where((k == 1.0) | ~(size > 0), size, scaled)


@register_jitable
def _size_one(z, k, lot):
    if k == 1.0 or not z > 0.0:
        return z
    if lot > 0.0:
        return max(np.floor(z * k / lot + _EPS), 1.0) * lot
    return z * k


@register_jitable
def _gone_in_batch(i, stop, is_depth, side, key, size, off_b, off_a, max_level, nxt, pure, cb, ca, cm,
                   bids, asks, visited, gone):
    """At a map change at row ``i`` of a closed batch: mark (``gone``) the rows in ``[i, stop)``
    (to the batch end or the next map change) of every level that those rows leave deleted and that
    the re-send does not keep displayed. Returns how many rows were marked.

    Such a level is absent when the batch ends, so its rows under the new map are transient: the
    batch is atomic, nobody sees them. Sending them (and re-adding the level before them) would
    put the old book at new-map prices, e.g. the pre-gap book of a price gap's own batch shifted by
    a later transform's post-gap move, which can be <= 0 although every price shown is positive.
    """
    marked = 0
    for j in range(i, stop):
        if not is_depth[j] or visited[j]:
            continue
        t, ok = j, pure[j]  # follow the level through the rows in range; a row that is also a
        visited[j] = True  # quote or trade must stay, so its level is left alone
        while nxt[t] >= 0 and nxt[t] < stop:
            t = nxt[t]
            visited[t] = True
            ok = ok and pure[t]
        if not ok or size[t] != 0.0:
            continue
        book = bids if side[j] > 0 else asks
        if key[j] in book:  # still displayed after the re-send's deletions: its rows must stay
            lv = book[key[j]][1]
            same = (off_b[i] == cb) if side[j] > 0 else (off_a[i] == ca)
            if lv <= cm and lv <= max_level[i] and same:
                continue
        t = j
        while t >= 0 and t < stop:
            gone[t] = True
            marked += 1
            t = nxt[t]
    return marked


def remap_py(is_depth, side, key, price, size, level, off_b, off_a, k_size, max_level, nxt, bend, pure, lot,
             bids, asks, fill, out_keep, out_size, ins_pos, ins_side, ins_key, ins_off, ins_price, ins_size,
             ins_level):
    """One instrument's rows in order: map depth rows, re-send the book where the map changes.

    ``key`` identifies a price level (half ticks; any exact int id when nothing is shifted);
    ``bids``/``asks`` are empty dicts key -> (size, level, price). ``nxt``: the next row of the
    same batch touching the same level (-1: none); ``bend``: one past the last row of the row's
    batch when that batch is closed, else 0; ``pure``: a depth row that is nothing else. With
    ``fill`` False only the number of re-sent rows is returned; with ``fill`` True
    ``out_keep``/``out_size`` (per row) and the ``ins_*`` arrays (re-sent rows; ``ins_pos`` = the
    row they precede, ``ins_off`` = the shift to add to ``ins_key``) are written. A row is dropped
    when the level limit hides it, when its size change vanishes in the rounding to lots (it would
    repeat what the level displays; on the first row of a new map that is its old size under the
    *old* map, as it was not re-sent), or when it is a transient row of a map change's batch (see
    :func:`_gone_in_batch`; such a level is not re-sent either).
    """
    cb, ca, ck, cm = 0, 0, 1.0, NO_LEVEL_LIMIT
    c = 0
    n = len(is_depth)
    visited, gone = np.zeros(n, dtype=np.bool_), np.zeros(n, dtype=np.bool_)
    for i in range(n):
        nb, na, nk, nm = off_b[i], off_a[i], k_size[i], max_level[i]
        changed = nb != cb or na != ca or nk != ck or nm != cm
        n_gone, stop = 0, i
        if changed and bend[i] > i:
            stop = i + 1
            while stop < bend[i] and off_b[stop] == nb and off_a[stop] == na and k_size[stop] == nk and \
                    max_level[stop] == nm:
                stop += 1
            n_gone = _gone_in_batch(i, stop, is_depth, side, key, size, off_b, off_a, max_level, nxt, pure,
                                    cb, ca, cm, bids, asks, visited, gone)
        if changed and len(bids) + len(asks) > 0:
            for phase in range(4):  # bid and ask deletions first: a new price may be another's old one
                s = 1 if phase % 2 == 0 else -1
                book = bids if s > 0 else asks
                off_o, off_n = (cb, nb) if s > 0 else (ca, na)
                for k in book:
                    sz, lv, px = book[k]
                    vis_o, vis_n = lv <= cm, lv <= nm
                    sz_o, sz_n = _size_one(sz, ck, lot), _size_one(sz, nk, lot)
                    if phase < 2:
                        emit = vis_o and not (vis_n and off_n == off_o)
                        off, z = off_o, 0.0
                    else:  # (no add for the level row i itself sets: it would be sent twice)
                        emit = vis_n and not (vis_o and off_n == off_o and sz_n == sz_o) and not (
                            is_depth[i] and key[i] == k and (side[i] > 0) == (s > 0))
                        if emit and n_gone > 0:  # nor for a level the batch deletes (transient)
                            for j in range(i, stop):
                                if gone[j] and key[j] == k and (side[j] > 0) == (s > 0):
                                    emit = False
                                    break
                        off, z = off_n, sz_n
                    if emit:
                        if fill:
                            ins_pos[c], ins_side[c], ins_key[c], ins_off[c] = i, s, k, off
                            ins_price[c], ins_size[c], ins_level[c] = px, z, int(lv)
                        c += 1
        same_off = (nb == cb) if side[i] > 0 else (na == ca)
        pk, pm = ck, cm  # the map this row's level was last displayed under
        cb, ca, ck, cm = nb, na, nk, nm
        if is_depth[i]:
            book = bids if side[i] > 0 else asks
            k = key[i]
            vis_before = False  # shown downstream just before this row (after any re-send)
            old_size, old_level = 0.0, -1.0
            if k in book:
                old_size, old_level = book[k][0], book[k][1]
                # the re-send skips this row's level: it stays as displayed under the old map
                # unless hidden by the new one or deleted at its old price by the re-send
                vis_before = old_level <= pm and old_level <= cm and same_off
                if size[i] == 0.0:
                    book.pop(k)
            if size[i] != 0.0:
                book[k] = (size[i], float(level[i]), price[i])
            vis_after = size[i] > 0.0 and level[i] <= cm
            # a size change that rounding to lots erased would repeat the displayed row: drop it.
            # The displayed size is the old size under the *old* map (pk): on the first row of a
            # new map the level was not re-sent, so comparing under the new k would be wrong.
            erased = (vis_before and vis_after and size[i] != old_size and float(level[i]) == old_level
                      and _size_one(size[i], ck, lot) == _size_one(old_size, pk, lot))
            if fill:
                # else hidden by the limit, erased by rounding, or transient in its batch
                out_keep[i] = (vis_before or level[i] <= cm) and not erased and not gone[i]
                out_size[i] = _size_one(size[i], ck, lot) if vis_after else 0.0
    return c


remap_nb = njit(cache=True)(remap_py)
_BOOK_VALUE = types.UniTuple(types.float64, 3)


def _batch_links(ev: np.ndarray, bkey: np.ndarray, closed: np.ndarray, key: np.ndarray) -> tuple:
    """One instrument's rows: ``(nxt, bend, pure)`` for :func:`remap_py` (batches are runs of rows)."""
    n = len(ev)
    depth = (ev["kind"] & KIND_DEPTH) != 0
    last = np.flatnonzero(np.r_[bkey[1:] != bkey[:-1], True]) if n else np.zeros(0, np.int64)
    bend = np.where(closed, np.repeat(last + 1, np.diff(np.r_[-1, last])), 0).astype(np.int64)
    d = np.flatnonzero(depth)
    sd = np.sign(ev["side"][d]).astype(np.int64)
    order = np.lexsort((d, key[d], sd, bkey[d]))
    s, ss = d[order], sd[order]
    same = (bkey[s[1:]] == bkey[s[:-1]]) & (ss[1:] == ss[:-1]) & (key[s[1:]] == key[s[:-1]])
    nxt = np.full(n, -1, dtype=np.int64)
    nxt[s[:-1][same]] = s[1:][same]
    pure = depth & ((ev["kind"] & KIND_TYPE_MASK) == KIND_DEPTH)
    return nxt, bend, pure


def _run_kernel(args: tuple, use_numba: bool) -> tuple:
    n = len(args[0])
    out_keep, out_size = np.zeros(n, dtype=np.bool_), np.zeros(n)
    fn = remap_nb if use_numba else remap_py

    def books():
        if use_numba:
            return Dict.empty(types.int64, _BOOK_VALUE), Dict.empty(types.int64, _BOOK_VALUE)
        return {}, {}

    ei, ef = np.zeros(0, np.int64), np.zeros(0)
    c = fn(*args, *books(), False, out_keep, out_size, ei, ei, ei, ei, ef, ef, ei)
    ins = (np.zeros(c, np.int64), np.zeros(c, np.int64), np.zeros(c, np.int64), np.zeros(c, np.int64),
           np.zeros(c), np.zeros(c), np.zeros(c, np.int64))
    fn(*args, *books(), True, out_keep, out_size, *ins)
    return out_keep, out_size, ins


def _quote_resends(ev: np.ndarray, o: np.ndarray, ob: np.ndarray, oa: np.ndarray, kz: np.ndarray,
                   bkey: np.ndarray, closed: np.ndarray, tick: float, lot: float) -> tuple[np.ndarray, np.ndarray]:
    """One instrument's rows: (rows before which the last quote is re-sent, the re-sent quotes).

    A re-send goes where the quote map (shifts, ``k``) changes at a row of a *closed* batch with no
    quote at or after it (same batch, same ``ts_local``): nothing else would move the quote to the
    new map before the batch ends. An open batch (unflagged stream, truncated tail) promises no
    consistent state, so gets none. ``o`` is the mapped stream; a re-send repeating the quote
    shown is left out.
    """
    n = len(ev)
    qpos = np.flatnonzero((ev["kind"] & KIND_QUOTE) != 0)
    none = np.zeros(0, np.int64), np.zeros(0, dtype=EVENT_DTYPE)
    if not len(qpos):
        return none
    change = np.r_[(ob[0] != 0) | (oa[0] != 0) | (kz[0] != 1.0),
                   (ob[1:] != ob[:-1]) | (oa[1:] != oa[:-1]) | (kz[1:] != kz[:-1])]
    idx = np.arange(n)
    nxt = np.searchsorted(qpos, idx, side="left")  # first quote at or after the row
    prev = nxt - 1  # last quote before it
    nq = qpos[np.minimum(nxt, len(qpos) - 1)]
    own = (nxt < len(qpos)) & (bkey[nq] == bkey) & (ev["ts_local"][nq] == ev["ts_local"])
    cand = np.flatnonzero(change & closed & (prev >= 0) & ~own)
    if not len(cand):
        return none
    q = qpos[prev[cand]]
    new = np.zeros(len(cand), dtype=EVENT_DTYPE)
    new["ts_exch"], new["ts_local"] = ev["ts_exch"][cand], ev["ts_local"][cand]
    new["instrument"], new["kind"] = ev["instrument"][cand], KIND_QUOTE
    new["price"], new["size"] = np.nan, np.nan
    for field, off in (("bid_px", ob[cand]), ("ask_px", oa[cand])):
        x = ev[field][q]
        new[field] = x
        move = (off != 0) & np.isfinite(x)
        if move.any():
            new[field][move] = from_half_ticks(to_half_ticks(x[move], tick) + off[move], tick)
    new["bid_sz"] = scale_sizes(ev["bid_sz"][q], kz[cand], lot)
    new["ask_sz"] = scale_sizes(ev["ask_sz"][q], kz[cand], lot)
    # the quote shown before each: the previous re-send if it followed the same quote, else o[q]
    same_q = np.r_[False, q[1:] == q[:-1]]
    differs = np.zeros(len(cand), dtype=bool)
    for f in ("bid_px", "bid_sz", "ask_px", "ask_sz"):
        a, b = new[f], o[f][q]
        b[same_q] = a[np.flatnonzero(same_q) - 1]
        differs |= ~((a == b) | (np.isnan(a) & np.isnan(b)))
    return cand[differs], new[differs]


def remap_book(events: np.ndarray, ctx: StressContext, who: str, off_bid: np.ndarray, off_ask: np.ndarray,
               k_size: np.ndarray, max_level: np.ndarray, *, use_numba: bool = True) -> np.ndarray:
    """A new stream with the per-row map applied (see the module docstring); ``events`` is untouched.

    Raises ValueError when a shift would push a price of the book to or below zero.
    """
    out = events.copy()
    n = len(events)
    inst_all = events["instrument"]
    bkey, closed = batch_keys(events)
    keep = np.ones(n, dtype=bool)
    inserts: list[tuple[np.ndarray, np.ndarray]] = []  # (rows they precede, re-sent rows)
    for j in np.unique(inst_all):
        rows = np.flatnonzero(inst_all == j)
        ob, oa, kz, ml = off_bid[rows], off_ask[rows], k_size[rows], max_level[rows]
        if not ((ob != 0).any() or (oa != 0).any() or (kz != 1.0).any() or (ml != NO_LEVEL_LIMIT).any()):
            continue
        ev = events[rows]
        shifting = bool((ob != 0).any() or (oa != 0).any())
        tick = ctx.tick_of(int(j), who) if shifting else float(ctx.tick[j]) if j < len(ctx.tick) else np.nan
        known_tick = bool(np.isfinite(tick) and tick > 0)
        lot = ctx.lot_of(int(j))
        o = out[rows]
        is_trade = (ev["kind"] & KIND_TRADE) != 0
        depth = (ev["kind"] & KIND_DEPTH) != 0
        mean = (ob + oa) // 2
        bid_side = np.where(is_trade, ev["side"] < 0, ev["side"] > 0)
        ask_side = np.where(is_trade, ev["side"] > 0, ev["side"] < 0)
        off_px = np.where(bid_side, ob, np.where(ask_side, oa, mean))
        lowest = []
        for field, off, rowmask in (("bid_px", ob, True), ("ask_px", oa, True), ("price", off_px, ~depth)):
            move = rowmask & (off != 0) & np.isfinite(ev[field])
            if move.any():
                h = to_half_ticks(ev[field][move], tick) + off[move]
                lowest.append(h.min())
                o[field][move] = from_half_ticks(h, tick)
        for field in ("bid_sz", "ask_sz"):
            o[field] = scale_sizes(ev[field], kz, lot)
        if depth.any():
            if ((ev["kind"] & KIND_SNAPSHOT) != 0).any():
                raise ValueError(f"{who}: instrument {j} has KIND_SNAPSHOT depth rows, whose book-clearing "
                                 "is not replayed here; convert snapshots to level updates first")
            dprice = np.where(depth, ev["price"], 0.0)
            # level id: half ticks when known; the exact float otherwise (nothing shifts then)
            key = to_half_ticks(dprice, tick) if known_tick else dprice.view(np.int64)
            args = (depth, ev["side"].astype(np.int64), key, dprice, np.where(depth, ev["size"], 0.0),
                    ev["level"].astype(np.int64), ob.astype(np.int64), oa.astype(np.int64),
                    kz.astype(np.float64), ml.astype(np.int64), *_batch_links(ev, bkey[rows], closed[rows], key),
                    float(lot))
            out_keep, out_size, (ipos, iside, ikey, ioff, iprice, isize, ilevel) = _run_kernel(args, use_numba)
            side_off = np.where(ev["side"] > 0, ob, oa)
            moved = depth & (side_off != 0)
            o["price"][moved] = from_half_ticks(key[moved] + side_off[moved], tick)
            resized = depth & out_keep & (out_size != ev["size"])
            o["size"][resized] = out_size[resized]
            keep[rows[depth & ~out_keep]] = False
            if (moved & out_keep).any():  # prices actually sent (not dropped rows)
                lowest.append((key[moved & out_keep] + side_off[moved & out_keep]).min())
            if len(ipos):
                shifted = ioff != 0
                if shifted.any():
                    lowest.append((ikey[shifted] + ioff[shifted]).min())
                extra = np.zeros(len(ipos), dtype=EVENT_DTYPE)
                g = rows[ipos]
                extra["ts_exch"], extra["ts_local"] = events["ts_exch"][g], events["ts_local"][g]
                extra["instrument"], extra["kind"] = j, KIND_DEPTH
                extra["side"], extra["level"] = iside, ilevel
                extra["price"] = iprice
                if shifted.any():
                    extra["price"][shifted] = from_half_ticks(ikey[shifted] + ioff[shifted], tick)
                extra["size"] = isize
                for f in ("bid_px", "bid_sz", "ask_px", "ask_sz"):
                    extra[f] = np.nan
                inserts.append((g, extra))
        qg, qrows = _quote_resends(ev, o, ob, oa, kz, bkey[rows], closed[rows], tick, lot)
        if len(qg):  # after this instrument's re-sent depth rows (the merge sort is stable)
            for f in ("bid_px", "ask_px"):
                moved = np.isfinite(qrows[f]) & ((ob if f == "bid_px" else oa)[qg] != 0)
                if moved.any():
                    lowest.append(to_half_ticks(qrows[f][moved], tick).min())
            inserts.append((rows[qg], qrows))
        if lowest and min(lowest) < 1:
            raise ValueError(f"{who}: the move pushes prices of instrument {j} to or below zero (lowest "
                             f"{from_half_ticks(np.array([min(lowest)]), tick)[0]:g}); use a smaller move")
        out[rows] = o
    if keep.all() and not inserts:
        return out
    key = bkey
    pos = [np.flatnonzero(keep)] + [g for g, _ in inserts]
    rank = np.concatenate([2 * pos[0] + 1] + [2 * g for g in pos[1:]])
    merged = np.concatenate([out[keep]] + [e for _, e in inserts])
    mkey = np.concatenate([key[keep]] + [key[g] for g in pos[1:]])
    mclosed = np.concatenate([closed[keep]] + [closed[g] for g in pos[1:]])
    order = np.argsort(rank, kind="stable")
    merged, mkey, mclosed = merged[order], mkey[order], mclosed[order]
    if not keep.all():  # re-sent rows sit before a row of their batch, so only drops move a flag
        reflag(merged["kind"], mkey, mclosed, np.zeros(len(merged), dtype=np.int64))
    return merged
