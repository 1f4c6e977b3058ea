"""Exchange simulator: order arrival, matching against the replayed book, queue position, fills.

The exchange sees the market as of *exchange* time (the data's ``ts_exch``); the strategy sees it
later, at ``ts_local``. An action reaches the exchange after its entry latency and its outcome
reaches the strategy after the response latency (see :mod:`latency`).

Fill rules on L1 data (documented for users in the README; L2 data: see book.py):

* A marketable order takes the displayed size at the touch (less what our own earlier orders took
  from the same touch). Any rest fills ``K_IMPACT_TICKS`` ticks beyond the touch when that is within
  its limit (``K_IMPACT_TICKS < 0`` disables this: the rest of a market/IOC order expires).
* A resting limit order joins the back of the queue: size ahead = displayed size at its price (plus
  our own earlier orders there); better than the touch -> nothing ahead; behind the touch -> not
  visible (infinite) until its price becomes the touch.
* Trades at our price advance the queue; the part of a trade beyond the size ahead fills us. A trade
  through our price, or the opposite touch moving onto our price, fills what is left, at our price.
* Size decreases at our level not explained by trades are cancellations: the conservative model
  ignores them (only the clamp "ahead <= displayed" applies); the probabilistic model removes the
  share f(ahead)/(f(ahead)+f(behind)) of them from ahead of us, f(x) = x**n.
* While the exchange halts an instrument (CONTROL rows, level 0: side -1 halt, 0 quoting only, +1
  trading resumes) nothing matches: arriving market/IOC/FOK orders are rejected (RJ_HALTED), limit
  orders rest, and fills resume with the first market event after trading resumes. No reopening
  auction is simulated.
"""

from __future__ import annotations

import math

import numpy as np
from numba import types as _t

from .book import (
    B_PX, BM_HAS_L2, BM_N_BID, available_within_nb, book_side_nb, level_size_nb, take_level_nb,
)
from .internal import code_offset, internal_njit
from .latency import latency_nb
from .minmax import max2, min2
from .layout import (
    A_CASH, C_N_ACTIONS, C_N_FILLS, C_N_OE, C_N_OPEN, C_N_PEND, C_NEXT_ARRIVAL, C_NEXT_RESP,
    C_RESP_SEQ, C_STATUS, INT64_MAX, KERNEL_OVERFLOW, K_IMPACT_TICKS, K_MAKER_BPS, K_MAKER_PER_UNIT,
    K_QUEUE_MODEL, K_QUEUE_POWER, K_SEED, K_TAKER_BPS, K_TAKER_PER_UNIT, M_ASK, M_ASK_SZ, M_BID,
    M_BID_SZ, M_HALTED, M_MID, M_TAKEN_ASK, M_TAKEN_BID, P_POS,
)
from .nbtypes import (
    F64_1D, F64_2D, F64_4D, FILLS, I64_1D, I64_2D, LOCAL_ORDER_ROW, ORDER_EVENTS, ORDER_ROW, ORDERS,
    RESPONSES,
)
from .portfolio import apply_fill_nb
from .records import (
    ACTION_CANCEL, ACTION_MODIFY, ACTION_SUBMIT, LIQ_MAKER, LIQ_TAKER, OE_ACK, OE_CANCEL_ACK,
    OE_CANCEL_REJECT, OE_EXPIRED, OE_FILL, OE_MODIFY_ACK, OE_MODIFY_REJECT, OE_REJECT, OT_FOK,
    OT_IOC, OT_MARKET, OT_POST_ONLY, RJ_BAD_QTY, RJ_FOK_UNFILLED, RJ_HALTED, RJ_NO_QUOTE,
    RJ_POST_ONLY_CROSS,
    RJ_TOO_LATE,
    RJ_UNKNOWN_ORDER, ST_CANCELLED, ST_FILLED, ST_IN_FLIGHT, ST_OPEN, ST_REJECTED,
)

__all__ = [
    "KERNEL_OVERFLOW",
    "emit_nb",
    "insert_open_nb",
    "next_arrival_nb",
    "on_market_nb",
    "process_arrivals_nb",
    "record_order_event_nb",
    "reject_late_nb",
    "same_price_nb",
]



@internal_njit
def same_price_nb(a, b, tick):
    """Prices equal on the tick grid (exact-ish float compare when no tick size is known)."""
    if tick > 0.0:
        return abs(a - b) < 0.5 * tick
    return abs(a - b) <= 1e-12 * max2(1.0, abs(a))


@internal_njit([_t.boolean(ORDER_EVENTS, I64_1D, _t.int64, _t.int64, _t.int64, _t.int64, _t.int64, row,
                           _t.float64, _t.float64) for row in (ORDER_ROW, LOCAL_ORDER_ROW)])
def record_order_event_nb(rec_oe, cnt, ts, ts_local, oid, event, reason, order, price, qty):
    """Append one order-event record; ``order`` is a row of the order table or of the strategy's
    view of it (both carry instrument, side, order_type, filled and tag). False when full."""
    n = cnt[C_N_OE]
    if n >= rec_oe.shape[0]:
        return False
    r = rec_oe[n]
    r["ts"] = ts
    r["ts_local"] = ts_local
    r["order_id"] = oid
    r["event"] = event
    r["reason"] = reason
    r["instrument"] = order["instrument"]
    r["side"] = order["side"]
    r["order_type"] = order["order_type"]
    r["price"] = price
    r["qty"] = qty
    r["filled"] = order["filled"]
    r["tag"] = order["tag"]
    cnt[C_N_OE] = n + 1
    return True


@internal_njit(_t.void(ORDERS, _t.int64, _t.int64, _t.int64, _t.int64, _t.float64, _t.float64, _t.int64,
                       F64_1D, F64_2D, I64_1D, F64_2D, ORDER_EVENTS, RESPONSES, I64_1D))
def emit_nb(orders, oid, ts, event, reason, price, qty, action, cfg, lat, trace_ts, trace_lat,
            rec_oe, resp, cnt):
    """Record an exchange-side order event and queue its response to the strategy."""
    o = orders[oid]
    cnt[C_N_ACTIONS] += 1
    delay = latency_nb(lat, trace_ts, trace_lat, action, True, ts, cfg[K_SEED], cnt[C_N_ACTIONS])
    ts_local = max2(ts + max2(delay, 0), o["ts_last_resp"])  # responses of one order stay in order
    o["ts_last_resp"] = ts_local
    if cnt[C_N_PEND] >= resp.shape[0] or not record_order_event_nb(
        rec_oe, cnt, ts, ts_local, oid, event, reason, o, price, qty
    ):
        cnt[C_STATUS] = KERNEL_OVERFLOW
        return
    p = resp[cnt[C_N_PEND]]
    p["ts_local"] = ts_local
    p["seq"] = cnt[C_RESP_SEQ]
    p["order"] = oid
    p["event"] = event
    p["reason"] = reason
    p["status"] = o["status"]
    p["price"] = price
    p["qty"] = qty
    p["filled"] = o["filled"]
    cnt[C_RESP_SEQ] += 1
    cnt[C_N_PEND] += 1
    if ts_local < cnt[C_NEXT_RESP]:
        cnt[C_NEXT_RESP] = ts_local


@internal_njit
def insert_open_nb(open_idx, cnt, oid):
    """Track ``oid`` (kept sorted by id); a no-op when it is already tracked."""
    n = cnt[C_N_OPEN]
    k = n
    while k > 0 and open_idx[k - 1] >= oid:
        if open_idx[k - 1] == oid:
            return
        k -= 1
    for m in range(n, k, -1):
        open_idx[m] = open_idx[m - 1]
    open_idx[k] = oid
    cnt[C_N_OPEN] = n + 1


@internal_njit
def _remove_open(open_idx, cnt, oid, orders):
    """Stop tracking ``oid`` unless a cancel/modify for it is still on its way."""
    if orders[oid]["pending"] != 0:
        return
    n = cnt[C_N_OPEN]
    for k in range(n):
        if open_idx[k] == oid:
            for m in range(k, n - 1):  # keep id order: fills among our own orders stay fair
                open_idx[m] = open_idx[m + 1]
            cnt[C_N_OPEN] = n - 1
            return


@internal_njit(_t.void(ORDERS, _t.int64, _t.int64, _t.float64, _t.float64, _t.int64, F64_2D, F64_2D, F64_1D,
                       F64_1D, _t.float64, F64_2D, I64_1D, F64_2D, ORDER_EVENTS, FILLS, RESPONSES, I64_1D,
                       I64_1D))  # explicit: called with literal liquidity codes (see nbtypes.py)
def _fill_nb(orders, oid, ts, qty, price, liquidity, mkt_x, pf, acct, cfg, mult, lat, trace_ts,
             trace_lat, rec_oe, rec_fill, resp, cnt, open_idx):
    code_offset(4)  # its slot (engine/internal.py)
    o = orders[oid]
    inst = o["instrument"]
    side = o["side"]
    if liquidity == LIQ_MAKER:
        fee = qty * price * mult * cfg[K_MAKER_BPS] * 1e-4 + qty * cfg[K_MAKER_PER_UNIT]
    else:
        fee = qty * price * mult * cfg[K_TAKER_BPS] * 1e-4 + qty * cfg[K_TAKER_PER_UNIT]
    realized = apply_fill_nb(pf, acct, inst, side, qty, price, fee, mult)
    o["filled"] += qty
    if o["filled"] >= o["qty"] - 1e-9 * o["qty"]:
        o["filled"] = o["qty"]
        o["status"] = ST_FILLED
        _remove_open(open_idx, cnt, oid, orders)
    emit_nb(orders, oid, ts, OE_FILL, 0, price, qty, ACTION_SUBMIT, cfg, lat, trace_ts, trace_lat,
            rec_oe, resp, cnt)
    n = cnt[C_N_FILLS]
    if n >= rec_fill.shape[0]:
        cnt[C_STATUS] = KERNEL_OVERFLOW
        return
    f = rec_fill[n]
    f["ts"] = ts
    f["ts_local"] = o["ts_last_resp"]
    f["order_id"] = oid
    f["instrument"] = inst
    f["side"] = side
    f["liquidity"] = liquidity
    f["price"] = price
    f["qty"] = qty
    f["fee"] = fee
    f["mid"] = mkt_x[inst, M_MID]
    f["position"] = pf[inst, P_POS]
    f["realized"] = realized
    f["tag"] = o["tag"]
    cnt[C_N_FILLS] = n + 1


@internal_njit
def _own_ahead(orders, open_idx, cnt, oid):
    """Remaining size of our own earlier resting orders at the same price and side."""
    o = orders[oid]
    total = 0.0
    for k in range(cnt[C_N_OPEN]):
        j = open_idx[k]
        if j == oid:
            break
        q = orders[j]
        if (q["status"] == ST_OPEN and q["instrument"] == o["instrument"] and q["side"] == o["side"]
                and q["price"] == o["price"]):
            total += q["qty"] - q["filled"]
    return total


@internal_njit
def _join_queue(orders, oid, mkt_x, tick, open_idx, cnt, book, meta):
    o = orders[oid]
    inst = o["instrument"]
    o["traded_at_level"] = 0.0
    if meta[inst, BM_HAS_L2] != 0:  # L2: the size at our price is visible down to the book's depth
        sz = level_size_nb(book, meta, inst, book_side_nb(o["side"]), o["price"], tick)
        if math.isnan(sz):
            o["queue_ahead"] = np.inf  # beyond the levels we hold
            o["level_size"] = np.nan
        else:
            o["queue_ahead"] = sz + _own_ahead(orders, open_idx, cnt, oid)
            o["level_size"] = sz
        return
    best = mkt_x[inst, M_BID] if o["side"] > 0 else mkt_x[inst, M_ASK]
    best_sz = mkt_x[inst, M_BID_SZ] if o["side"] > 0 else mkt_x[inst, M_ASK_SZ]
    if math.isnan(best) or (o["side"] > 0 and o["price"] > best) or (o["side"] < 0 and o["price"] < best):
        o["queue_ahead"] = _own_ahead(orders, open_idx, cnt, oid)  # we improve the touch
        o["level_size"] = 0.0
    elif same_price_nb(o["price"], best, tick):
        sz = 0.0 if math.isnan(best_sz) else best_sz
        o["queue_ahead"] = sz + _own_ahead(orders, open_idx, cnt, oid)
        o["level_size"] = sz
    else:
        o["queue_ahead"] = np.inf  # behind the touch: not visible on L1 data
        o["level_size"] = np.nan


@internal_njit(_t.int64(ORDERS, _t.int64, _t.int64, F64_2D, F64_2D, F64_1D, F64_1D, _t.float64, _t.float64,
                        F64_2D, I64_1D, F64_2D, ORDER_EVENTS, FILLS, RESPONSES, I64_1D, I64_1D, _t.int64,
                        _t.int64, F64_4D, I64_2D))  # explicit: literal ack codes (see nbtypes.py)
def _execute_nb(orders, oid, ts, mkt_x, pf, acct, cfg, tick, mult, lat, trace_ts, trace_lat,
                rec_oe, rec_fill, resp, cnt, open_idx, ack_event, ack_action, book, meta):
    """Match an order that just arrived (new, or re-priced by a modify); ack, take, rest or expire."""
    code_offset(3)  # its slot (engine/internal.py)
    o = orders[oid]
    inst = o["instrument"]
    side = o["side"]
    otype = o["order_type"]
    row = mkt_x[inst]
    limit = o["price"]
    if otype == OT_MARKET:
        limit = np.inf if side > 0 else -np.inf
    l2 = meta[inst, BM_HAS_L2] != 0
    s_opp = 1 - book_side_nb(side)  # the book side a marketable order takes from
    if l2:
        touch = book[inst, s_opp, 0, B_PX] if meta[inst, BM_N_BID + s_opp] > 0 else np.nan
        avail = available_within_nb(book, meta, inst, s_opp, limit)
    elif side > 0:
        touch = row[M_ASK]
        avail = row[M_ASK_SZ] - row[M_TAKEN_ASK]
    else:
        touch = row[M_BID]
        avail = row[M_BID_SZ] - row[M_TAKEN_BID]
    if math.isnan(avail) or avail < 0.0:
        avail = 0.0
    crosses = (not math.isnan(touch)) and ((side > 0 and touch <= limit) or (side < 0 and touch >= limit))
    remaining = o["qty"] - o["filled"]
    reject = 0
    if row[M_HALTED] != 0.0:  # a halt: nothing executes; limit orders rest for the reopening
        crosses = False
        if otype == OT_MARKET or otype == OT_IOC or otype == OT_FOK:
            reject = RJ_HALTED
    elif otype == OT_POST_ONLY and crosses:
        reject = RJ_POST_ONLY_CROSS
    elif otype == OT_MARKET and math.isnan(touch):
        reject = RJ_NO_QUOTE
    take_touch = min2(remaining, avail) if crosses else 0.0  # L2: everything displayed within the limit
    beyond_px = np.nan
    take_beyond = 0.0
    if not l2 and crosses and remaining - take_touch > 0.0 and cfg[K_IMPACT_TICKS] >= 0.0:
        beyond_px = touch + side * cfg[K_IMPACT_TICKS] * tick
        if (side > 0 and beyond_px <= limit) or (side < 0 and beyond_px >= limit):
            take_beyond = remaining - take_touch
    if reject == 0 and otype == OT_FOK and take_touch + take_beyond < remaining:
        reject = RJ_FOK_UNFILLED
    if reject != 0:
        if ack_event == OE_ACK:  # a new order dies; a modify's caller restores the old terms
            o["status"] = ST_REJECTED
            _remove_open(open_idx, cnt, oid, orders)
            emit_nb(orders, oid, ts, OE_REJECT, reject, o["price"], o["qty"], ack_action, cfg, lat,
                    trace_ts, trace_lat, rec_oe, resp, cnt)
        return reject
    o["status"] = ST_OPEN
    emit_nb(orders, oid, ts, ack_event, 0, o["price"], o["qty"], ack_action, cfg, lat, trace_ts,
            trace_lat, rec_oe, resp, cnt)
    if take_touch > 0.0 and l2:  # walk the book: one fill per level, at that level's price
        left = take_touch
        k = np.int64(0)  # not a literal 0: numba would compile take_level_nb for it, then again
        while left > 0.0:
            px, q = take_level_nb(book, meta, inst, s_opp, k, limit, left)
            if math.isnan(px):
                break
            if q > 0.0:
                left -= q
                _fill_nb(orders, oid, ts, q, px, LIQ_TAKER, mkt_x, pf, acct, cfg, mult, lat,
                         trace_ts, trace_lat, rec_oe, rec_fill, resp, cnt, open_idx)
            k += 1
    elif take_touch > 0.0:
        if side > 0:
            row[M_TAKEN_ASK] += take_touch
        else:
            row[M_TAKEN_BID] += take_touch
        _fill_nb(orders, oid, ts, take_touch, touch, LIQ_TAKER, mkt_x, pf, acct, cfg, mult, lat,
                 trace_ts, trace_lat, rec_oe, rec_fill, resp, cnt, open_idx)
    if take_beyond > 0.0:
        _fill_nb(orders, oid, ts, take_beyond, beyond_px, LIQ_TAKER, mkt_x, pf, acct, cfg, mult, lat,
                 trace_ts, trace_lat, rec_oe, rec_fill, resp, cnt, open_idx)
    if o["status"] == ST_OPEN:
        if otype == OT_MARKET or otype == OT_IOC or otype == OT_FOK:
            o["status"] = ST_CANCELLED
            _remove_open(open_idx, cnt, oid, orders)
            emit_nb(orders, oid, ts, OE_EXPIRED, 0, o["price"], o["qty"] - o["filled"], ack_action,
                    cfg, lat, trace_ts, trace_lat, rec_oe, resp, cnt)
        else:
            _join_queue(orders, oid, mkt_x, tick, open_idx, cnt, book, meta)
    return 0


@internal_njit
def next_arrival_nb(orders, open_idx, cnt):
    """Earliest exchange arrival among in-flight orders and pending cancels/modifies."""
    t = INT64_MAX
    for k in range(cnt[C_N_OPEN]):
        o = orders[open_idx[k]]
        if o["status"] == ST_IN_FLIGHT and o["ts_arrive"] < t:
            t = o["ts_arrive"]
        if o["pending"] != 0 and o["ts_pending"] < t:
            t = o["ts_pending"]
    cnt[C_NEXT_ARRIVAL] = t
    return t


@internal_njit
def process_arrivals_nb(t, orders, open_idx, mkt_x, pf, acct, cfg, tick, mult, lat, trace_ts,
                        trace_lat, rec_oe, rec_fill, resp, cnt, book, meta):
    """Handle every action arriving at the exchange at exchange time ``t`` (in order id order)."""
    k = 0
    while k < cnt[C_N_OPEN]:
        oid = open_idx[k]
        o = orders[oid]
        n_before = cnt[C_N_OPEN]
        if o["status"] == ST_IN_FLIGHT and o["ts_arrive"] == t:
            _execute_nb(orders, oid, t, mkt_x, pf, acct, cfg, tick[o["instrument"]],
                        mult[o["instrument"]], lat, trace_ts, trace_lat, rec_oe, rec_fill, resp,
                        cnt, open_idx, OE_ACK, ACTION_SUBMIT, book, meta)
        elif o["pending"] != 0 and o["ts_pending"] == t:
            action = o["pending"]
            o["pending"] = 0
            if o["status"] == ST_FILLED or o["status"] == ST_CANCELLED or o["status"] == ST_REJECTED:
                reject_late_nb(orders, oid, t, action, cfg, lat, trace_ts, trace_lat, rec_oe, resp,
                               cnt)
                _remove_open(open_idx, cnt, oid, orders)
            elif o["status"] == ST_IN_FLIGHT:  # overtook its own order: the exchange never heard of it
                ev = OE_CANCEL_REJECT if action == ACTION_CANCEL else OE_MODIFY_REJECT
                emit_nb(orders, oid, t, ev, RJ_UNKNOWN_ORDER, o["price"], o["qty"], action, cfg,
                        lat, trace_ts, trace_lat, rec_oe, resp, cnt)
            elif action == ACTION_CANCEL:
                o["status"] = ST_CANCELLED
                _remove_open(open_idx, cnt, oid, orders)
                emit_nb(orders, oid, t, OE_CANCEL_ACK, 0, o["price"], o["qty"] - o["filled"],
                        action, cfg, lat, trace_ts, trace_lat, rec_oe, resp, cnt)
            else:
                new_px = o["new_price"]
                new_qty = o["new_qty"]
                if new_qty <= o["filled"]:
                    emit_nb(orders, oid, t, OE_MODIFY_REJECT, RJ_BAD_QTY, new_px, new_qty, action,
                            cfg, lat, trace_ts, trace_lat, rec_oe, resp, cnt)
                elif new_px != o["price"] or new_qty > o["qty"]:
                    old_px = o["price"]
                    old_qty = o["qty"]
                    o["price"] = new_px  # loses priority: re-enters as a new arrival
                    o["qty"] = new_qty
                    code = _execute_nb(orders, oid, t, mkt_x, pf, acct, cfg, tick[o["instrument"]],
                                       mult[o["instrument"]], lat, trace_ts, trace_lat, rec_oe,
                                       rec_fill, resp, cnt, open_idx, OE_MODIFY_ACK, ACTION_MODIFY,
                                       book, meta)
                    if code != 0:  # e.g. a post-only re-priced across the spread: keep old terms
                        o["price"] = old_px
                        o["qty"] = old_qty
                        emit_nb(orders, oid, t, OE_MODIFY_REJECT, code, new_px, new_qty, action,
                                cfg, lat, trace_ts, trace_lat, rec_oe, resp, cnt)
                else:
                    o["qty"] = new_qty  # size decrease keeps its place in the queue
                    emit_nb(orders, oid, t, OE_MODIFY_ACK, 0, new_px, new_qty, action, cfg, lat,
                            trace_ts, trace_lat, rec_oe, resp, cnt)
        if cnt[C_N_OPEN] == n_before:
            k += 1
    next_arrival_nb(orders, open_idx, cnt)


@internal_njit
def reject_late_nb(orders, oid, t, action, cfg, lat, trace_ts, trace_lat, rec_oe, resp, cnt):
    """A cancel/modify that arrives after its order filled or was cancelled."""
    ev = OE_CANCEL_REJECT if action == ACTION_CANCEL else OE_MODIFY_REJECT
    emit_nb(orders, oid, t, ev, RJ_TOO_LATE, orders[oid]["price"], orders[oid]["qty"], action, cfg,
            lat, trace_ts, trace_lat, rec_oe, resp, cnt)


@internal_njit
def _queue_share(ahead, behind, power):
    fa = ahead ** power
    fb = behind ** power
    if fa + fb <= 0.0:
        return 0.0
    return fa / (fa + fb)


@internal_njit
def _level_changed(o, new_sz, cfg):
    """Our price level now shows ``new_sz``: trades since the last update explain part of any
    decrease; the probabilistic model removes a share of the rest (cancellations) from ahead."""
    if math.isinf(o["queue_ahead"]) or math.isnan(o["level_size"]):
        o["queue_ahead"] = new_sz  # our level just became visible: behind all shown
    else:
        cancelled = o["level_size"] - new_sz - o["traded_at_level"]
        if cancelled > 0.0 and cfg[K_QUEUE_MODEL] == 1.0:
            behind = max2(o["level_size"] - o["queue_ahead"], 0.0)
            share = _queue_share(o["queue_ahead"], behind, cfg[K_QUEUE_POWER])
            o["queue_ahead"] -= cancelled * share
            spill = cancelled * (1.0 - share) - behind  # more than was behind us
            if spill > 0.0:
                o["queue_ahead"] -= spill
        o["queue_ahead"] = max2(min2(o["queue_ahead"], new_sz), 0.0)
    o["level_size"] = new_sz
    o["traded_at_level"] = 0.0


@internal_njit
def on_market_nb(inst, is_trade, is_quote, is_depth, trade_px, trade_sz, aggressor, t, orders,
                 open_idx, mkt_x, pf, acct, cfg, tick, lot, mult, lat, trace_ts, trace_lat, rec_oe,
                 rec_fill, resp, cnt):
    """Advance queues and fill our resting orders of ``inst`` after an exchange market event.

    ``trade_px``/``trade_sz``/``aggressor`` are the row's price, size and side: a trade print, or
    for a depth row (``is_depth``) the level's price, new size and book side (+1 bid, -1 ask).
    A queue fill is rounded down to whole lots (the probabilistic model makes fractional queue
    positions; a fraction of a lot never trades).
    """
    row = mkt_x[inst]
    if row[M_HALTED] != 0.0:  # no matching while the exchange halts the instrument
        return
    trade_left = trade_sz
    k = 0
    while k < cnt[C_N_OPEN]:
        oid = open_idx[k]
        o = orders[oid]
        n_before = cnt[C_N_OPEN]
        if o["instrument"] == inst and o["status"] == ST_OPEN:
            side = o["side"]
            px = o["price"]
            if is_trade and aggressor != side:  # a sell aggressor hits bids, a buy lifts offers
                through = (side > 0 and trade_px < px) or (side < 0 and trade_px > px)
                if through and not same_price_nb(trade_px, px, tick):
                    _fill_nb(orders, oid, t, o["qty"] - o["filled"], px, LIQ_MAKER, mkt_x, pf,
                             acct, cfg, mult, lat, trace_ts, trace_lat, rec_oe, rec_fill, resp,
                             cnt, open_idx)
                elif same_price_nb(trade_px, px, tick):
                    o["traded_at_level"] += trade_sz
                    o["queue_ahead"] -= trade_sz
                    if o["queue_ahead"] < 0.0:
                        q = min2(min2(-o["queue_ahead"], o["qty"] - o["filled"]), trade_left)
                        o["queue_ahead"] = 0.0
                        if lot > 0.0:
                            q = math.floor(q / lot + 1e-9) * lot
                        if q > 0.0:
                            trade_left -= q
                            _fill_nb(orders, oid, t, q, px, LIQ_MAKER, mkt_x, pf, acct, cfg, mult,
                                     lat, trace_ts, trace_lat, rec_oe, rec_fill, resp, cnt,
                                     open_idx)
            if is_depth and aggressor == side and same_price_nb(trade_px, px, tick):
                _level_changed(o, 0.0 if math.isnan(trade_sz) else trade_sz, cfg)
            if is_quote and o["status"] == ST_OPEN:
                opp = row[M_ASK] if side > 0 else row[M_BID]
                best = row[M_BID] if side > 0 else row[M_ASK]
                best_sz = row[M_BID_SZ] if side > 0 else row[M_ASK_SZ]
                if not math.isnan(opp) and ((side > 0 and opp <= px) or (side < 0 and opp >= px)):
                    # the other side moved onto our price: a counterparty crossed into our order
                    _fill_nb(orders, oid, t, o["qty"] - o["filled"], px, LIQ_MAKER, mkt_x, pf,
                             acct, cfg, mult, lat, trace_ts, trace_lat, rec_oe, rec_fill, resp,
                             cnt, open_idx)
                elif math.isnan(best) or (side > 0 and px > best and not same_price_nb(px, best, tick)) \
                        or (side < 0 and px < best and not same_price_nb(px, best, tick)):
                    o["queue_ahead"] = 0.0  # we are better than everything displayed
                    o["level_size"] = 0.0
                    o["traded_at_level"] = 0.0
                elif same_price_nb(px, best, tick):
                    _level_changed(o, 0.0 if math.isnan(best_sz) else best_sz, cfg)
                else:
                    o["traded_at_level"] = 0.0  # behind the touch (on L2, depth rows track it)
        if cnt[C_N_OPEN] == n_before:
            k += 1
