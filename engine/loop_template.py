"""The event loop. This file is also a template: see :mod:`tickguard.engine.codegen`.

Numba can only cache a compiled loop whose strategy and risk gate are module globals, so for each
(strategy, gate) pair the code generator writes a copy of this file with the two marked import
lines changed, and imports that copy. As written here, the loop runs with no strategy and the
pass-through gate (the reference "no strategy" workload of the benchmarks).

Per local event, in this order:
1. the exchange catches up to the event's local time: market events by exchange time (the data's
   ``ts_exch``), actions arriving after their entry latency, and
2. responses reaching the strategy after their response latency (its order view and known
   position change, and its callback runs with ``reason == REASON_RESPONSE`` at the response's
   own local time), all merged in time order (on equal times: market event, arrival, response),
   with resting orders matched after each market event. The exchange never runs ahead of a
   response, so what a response callback sends is matched against the book of its own time;
3. the event updates the strategy's market view and the callback runs (``REASON_MARKET``);
4. requests pass the risk gate and leave with their entry latency;
5. equity is sampled on the configured clock.
"""

from __future__ import annotations

import math

from numba import njit
from numba import types as _t

from tickguard.data.schema import KIND_CONTROL, KIND_DEPTH, KIND_QUOTE, KIND_SNAPSHOT, KIND_TRADE
from tickguard.engine.book import apply_depth_nb
from tickguard.engine.exchange import (
    insert_open_nb, on_market_nb, process_arrivals_nb, record_order_event_nb,
)
import tickguard.engine.gate as risk  # @@GATE@@
from tickguard.engine.idle import idle_strategy_nb as on_response  # @@STRATEGY@@
on_event = on_response  # @@STRATEGY_INLINE@@
_RISK = True  # @@RISK@@: False in loops with the pass-through gate (no kill switch to run)
from tickguard.engine.internal import internal_njit
from tickguard.engine.latency import latency_nb
from tickguard.engine.layout import (
    A_CASH, A_EQUITY, A_INITIAL, A_NEXT_SAMPLE_T, C_CUR_DONE, C_ERR_ORDER, C_ERR_TS,
    C_ERR_VALUE, C_EVENTS_DONE, C_FLAT_TS, C_KILL, C_LAST_XTS, C_NEXT_ARRIVAL, C_NEXT_RESP,
    C_N_ACTIONS, C_N_EQ, C_N_FILLS, C_N_OE, C_N_OPEN, C_N_ORDERS, C_N_PEND, C_N_RISK, C_N_WORK,
    C_SINCE_SAMPLE, C_STATUS, C_XCURSOR, G_ACT_CANCEL, G_ACT_FILL, G_ACT_MODIFY, G_ACT_REJECT,
    G_ACT_SUBMIT, G_DENY_OBSERVED, G_DENY_THRESHOLD, G_FLATTEN, G_OBSERVED, G_PREV_TS, G_RULE,
    G_STATE, G_THRESHOLD, G_TR_HALTED, G_TR_NONE, G_TR_RESET, G_WAKE_ALL, G_WAKE_AT,
    G_WAKE_CROSSED, G_WAKE_GAP, INT64_MAX, KERNEL_DONE, KERNEL_NEED_MORE, KERNEL_NEED_SPACE,
    KERNEL_OVERFLOW, KERNEL_STRATEGY_ERROR, K_MARK, K_SAMPLE_DT, K_SAMPLE_EVERY, K_SEED, M_ASK,
    M_BID, P_AVG, P_FEES, P_MARK, P_POS, P_REALIZED, REASON_MARKET, REASON_RESPONSE,
)
from tickguard.engine.market import apply_market_event_nb
from tickguard.engine.nbtypes import (
    F64_1D, F64_2D, I64_1D, LOCAL_ORDER_ROW, LOCAL_ORDERS, ORDER_EVENTS, ORDERS, REQUESTS, RISK_EVENTS,
)
from tickguard.engine.portfolio import mark_price_nb
from tickguard.engine.unmanaged import unmanaged
from tickguard.engine.records import (
    ACTION_CANCEL, ACTION_MODIFY, ACTION_SUBMIT, OE_CANCEL_ACK, OE_CANCEL_REJECT, OE_CANCEL_REQ,
    OE_DENIED, OE_FILL, OE_MODIFY_ACK, OE_MODIFY_REJECT, OE_MODIFY_REQ, OE_REJECT, OE_SUBMIT,
    OT_MARKET, OT_POST_ONLY, RISK_TAG, RJ_BAD_PRICE, RJ_BAD_QTY, RJ_PENDING, RJ_RISK_DENIED,
    RJ_TOO_LATE, RJ_UNKNOWN_INSTRUMENT, RJ_UNKNOWN_ORDER, RK_DENIAL, RK_RESET, RK_TRANSITION,
    ST_CANCELLED, ST_FILLED, ST_IN_FLIGHT, ST_OPEN, ST_REJECTED,
)

__all__ = [
    "KERNEL_DONE",
    "KERNEL_NEED_MORE",
    "KERNEL_NEED_SPACE",
    "KERNEL_OVERFLOW",
    "KERNEL_STRATEGY_ERROR",
    "REASON_MARKET",
    "REASON_RESPONSE",
    "run_chunk_nb",
]

_TRADE = int(KIND_TRADE)
_QUOTE = int(KIND_QUOTE)
_CONTROL = int(KIND_CONTROL)
_DEPTH = int(KIND_DEPTH)
_SNAPSHOT = int(KIND_SNAPSHOT)
_BOOK_ROW = _DEPTH | _SNAPSHOT
# The kernels here compile without reference counting (internal.py), and a callee inherits its
# caller's setting unless it sets its own. A risk module's hooks may allocate, so in a loop with a
# kill switch the kernels that call them keep it; a pass-through loop calls no hook.
_CALLS_HOOKS = {"_nrt": True} if _RISK else {}


@internal_njit
def _on_grid(x, step):
    if step <= 0.0:
        return True
    r = x / step
    return abs(r - round(r)) <= 1e-6


@internal_njit(_t.void(ORDER_EVENTS, I64_1D, _t.int64, _t.int64, _t.int64, _t.int64, LOCAL_ORDER_ROW,
                       _t.float64, _t.float64))  # explicit: literal codes (see nbtypes.py)
def _local_record(rec_oe, cnt, ts, oid, event, reason, lo, price, qty):
    """An order event the strategy's side knows at once (submit, denial, local reject)."""
    if not record_order_event_nb(rec_oe, cnt, ts, ts, oid, event, reason, lo, price, qty):
        cnt[C_STATUS] = KERNEL_OVERFLOW


def _risk_kernel(signature, **options):
    """The kill switch's kernels: explicit signatures (literal codes, see nbtypes.py) in a loop with
    a kill switch; lazy, and never compiled, in a pass-through loop, whose `if _RISK` guards drop
    every call to them before typing."""
    return internal_njit(signature, **options) if _RISK else internal_njit


@_risk_kernel(_t.void(RISK_EVENTS, I64_1D, _t.int64, _t.int64, _t.int64, _t.int64, _t.int64, _t.int64,
                      _t.float64, _t.float64))
def _risk_record(rec_risk, cnt, ts, oid, rule, kind, inst, state, observed, threshold):
    n = cnt[C_N_RISK]
    if n >= rec_risk.shape[0]:
        cnt[C_STATUS] = KERNEL_OVERFLOW
        return
    r = rec_risk[n]
    r["ts"] = ts
    r["order_id"] = oid
    r["rule"] = rule
    r["kind"] = kind
    r["instrument"] = inst
    r["state"] = state
    r["observed"] = observed
    r["threshold"] = threshold
    cnt[C_N_RISK] = n + 1


@_risk_kernel(_t.void(RISK_EVENTS, I64_1D, _t.int64, _t.int64, _t.int64, _t.int64, F64_1D))
def _denied(rec_risk, cnt, now, oid, code, inst, ks):
    """Record a pre-trade denial: ``code`` is rule index + 1, or a negative kill-switch code."""
    rule = code - 1 if code > 0 else code
    _risk_record(rec_risk, cnt, now, oid, rule, RK_DENIAL, inst, int(ks[G_STATE]),
                 ks[G_DENY_OBSERVED], ks[G_DENY_THRESHOLD])


@_risk_kernel(_t.void(_t.int64, _t.int64, _t.int64, RISK_EVENTS, I64_1D, F64_1D))
def _transition(tr, now, inst, rec_risk, cnt, ks):
    """Record a kill-switch transition or reset; on HALTED the loop must cancel and flatten."""
    if tr == G_TR_NONE:
        return
    kind = RK_RESET if tr == G_TR_RESET else RK_TRANSITION
    _risk_record(rec_risk, cnt, now, -1, int(ks[G_RULE]), kind, inst, int(ks[G_STATE]),
                 ks[G_OBSERVED], ks[G_THRESHOLD])
    if tr == G_TR_HALTED:
        cnt[C_KILL] = 1


# explicit signature: one copy, not one per literal count and flag (see nbtypes.py)
@internal_njit(_t.void(_t.int64, _t.int64, REQUESTS, ORDERS, LOCAL_ORDERS, I64_1D, I64_1D, I64_1D, F64_1D,
                       F64_2D, I64_1D, F64_2D, F64_1D, F64_1D, F64_1D, F64_2D, F64_1D, ORDER_EVENTS,
                       RISK_EVENTS, F64_2D, F64_1D, F64_1D, _t.boolean), **_CALLS_HOOKS)
def _handle_requests(nreq, now, req, orders, lorders, lwork, open_idx, cnt, cfg, lat, trace_ts,
                     trace_lat, tick, lot, mult, mkt_l, pos_local, rec_oe, rec_risk, rules, rstate,
                     ks, from_risk):
    """Validate, gate and send ``req[:nreq]``. ``from_risk``: the kill switch's own cancels and
    flattening orders, which skip the gate and the activity monitors."""
    n_inst = tick.shape[0]
    for r in range(nreq):
        q = req[r]
        action = q["action"]
        if action == ACTION_SUBMIT:
            oid = cnt[C_N_ORDERS]
            if oid >= orders.shape[0]:
                cnt[C_STATUS] = KERNEL_OVERFLOW
                return
            cnt[C_N_ORDERS] = oid + 1
            inst = q["instrument"]
            o = orders[oid]
            lo = lorders[oid]
            o["id"] = oid
            o["instrument"] = inst
            o["order_type"] = q["order_type"]
            o["side"] = 1 if q["side"] > 0 else -1
            o["price"] = math.nan if q["order_type"] == OT_MARKET else q["price"]
            o["qty"] = q["qty"]
            o["filled"] = 0.0
            o["pending"] = 0
            o["ts_sent"] = now
            o["ts_last_resp"] = now
            o["tag"] = q["tag"]
            lo["id"] = oid
            lo["instrument"] = inst
            lo["side"] = o["side"]
            lo["order_type"] = q["order_type"]
            lo["price"] = o["price"]
            lo["qty"] = q["qty"]
            lo["filled"] = 0.0
            lo["pending"] = 0
            lo["tag"] = q["tag"]
            reason = 0
            if inst < 0 or inst >= n_inst:
                reason = RJ_UNKNOWN_INSTRUMENT
            elif not (q["qty"] > 0.0) or math.isinf(q["qty"]) or not _on_grid(q["qty"], lot[inst]):
                reason = RJ_BAD_QTY
            elif q["order_type"] < OT_MARKET or q["order_type"] > OT_POST_ONLY or q["side"] == 0:
                reason = RJ_BAD_PRICE
            elif q["order_type"] != OT_MARKET and (
                not (q["price"] > 0.0) or math.isinf(q["price"]) or not _on_grid(q["price"], tick[inst])
            ):
                reason = RJ_BAD_PRICE
            _local_record(rec_oe, cnt, now, oid, OE_SUBMIT, 0, lo, o["price"], o["qty"])
            if reason != 0:
                o["status"] = ST_REJECTED
                lo["status"] = ST_REJECTED
                lo["reason"] = reason
                _local_record(rec_oe, cnt, now, oid, OE_REJECT, reason, lo, o["price"], o["qty"])
                continue
            code = 0
            if _RISK and not from_risk:  # the new order is row oid: the gate sees the ones before it
                code = risk.pretrade_nb(q, now, mkt_l, pos_local, lorders, lwork[:cnt[C_N_WORK]],
                                        mult, rules, rstate, ks)
            if _RISK and code != 0:
                o["status"] = ST_REJECTED
                lo["status"] = ST_REJECTED
                lo["reason"] = RJ_RISK_DENIED
                _local_record(rec_oe, cnt, now, oid, OE_DENIED, code, lo, o["price"], o["qty"])
                _denied(rec_risk, cnt, now, oid, code, inst, ks)
                continue
            cnt[C_N_ACTIONS] += 1
            delay = latency_nb(lat, trace_ts, trace_lat, ACTION_SUBMIT, False, now, cfg[K_SEED],
                               cnt[C_N_ACTIONS])
            o["status"] = ST_IN_FLIGHT
            lo["status"] = ST_IN_FLIGHT
            lwork[cnt[C_N_WORK]] = oid  # the newest id: the list stays ascending
            cnt[C_N_WORK] += 1
            o["ts_arrive"] = now + max(delay, 0)
            insert_open_nb(open_idx, cnt, oid)
            if o["ts_arrive"] < cnt[C_NEXT_ARRIVAL]:
                cnt[C_NEXT_ARRIVAL] = o["ts_arrive"]
            if _RISK and not from_risk:
                tr = risk.monitor_activity_nb(now, G_ACT_SUBMIT, inst, rules, rstate, ks)
                if tr != G_TR_NONE:
                    _transition(tr, now, inst, rec_risk, cnt, ks)
        elif action == ACTION_CANCEL or action == ACTION_MODIFY:
            oid = q["order_id"]
            if oid < 0 or oid >= cnt[C_N_ORDERS]:
                continue  # nothing to attach a record to; the strategy asked about no order
            lo = lorders[oid]
            o = orders[oid]
            ev = OE_CANCEL_REQ if action == ACTION_CANCEL else OE_MODIFY_REQ
            _local_record(rec_oe, cnt, now, oid, ev, 0, lo, q["price"], q["qty"])
            reason = 0
            if lo["status"] == ST_FILLED or lo["status"] == ST_CANCELLED or lo["status"] == ST_REJECTED:
                reason = RJ_TOO_LATE
            elif o["pending"] != 0:
                reason = RJ_PENDING
            elif action == ACTION_MODIFY and (
                not (q["qty"] > 0.0) or not _on_grid(q["qty"], lot[o["instrument"]])
            ):
                reason = RJ_BAD_QTY
            elif action == ACTION_MODIFY and o["order_type"] != OT_MARKET and (
                not (q["price"] > 0.0) or not _on_grid(q["price"], tick[o["instrument"]])
            ):
                reason = RJ_BAD_PRICE
            if _RISK and reason == 0 and action == ACTION_MODIFY and not from_risk:
                code = risk.pretrade_nb(q, now, mkt_l, pos_local, lorders, lwork[:cnt[C_N_WORK]],
                                        mult, rules, rstate, ks)
                if code != 0:
                    lo["reason"] = RJ_RISK_DENIED
                    _local_record(rec_oe, cnt, now, oid, OE_DENIED, code, lo, q["price"], q["qty"])
                    _denied(rec_risk, cnt, now, oid, code, o["instrument"], ks)
                    continue
            if reason != 0:
                lo["reason"] = reason
                _local_record(rec_oe, cnt, now, oid, OE_REJECT, reason, lo, q["price"], q["qty"])
                continue
            cnt[C_N_ACTIONS] += 1
            delay = latency_nb(lat, trace_ts, trace_lat, action, False, now, cfg[K_SEED],
                               cnt[C_N_ACTIONS])
            o["pending"] = action
            o["ts_pending"] = now + max(delay, 0)
            o["new_price"] = q["price"] if action == ACTION_MODIFY else o["price"]
            o["new_qty"] = q["qty"] if action == ACTION_MODIFY else o["qty"]
            lo["pending"] = action
            insert_open_nb(open_idx, cnt, oid)
            if o["ts_pending"] < cnt[C_NEXT_ARRIVAL]:
                cnt[C_NEXT_ARRIVAL] = o["ts_pending"]
            if _RISK and not from_risk:
                what = G_ACT_CANCEL if action == ACTION_CANCEL else G_ACT_MODIFY
                tr = risk.monitor_activity_nb(now, what, o["instrument"], rules, rstate, ks)
                if tr != G_TR_NONE:
                    _transition(tr, now, o["instrument"], rec_risk, cnt, ks)


@internal_njit
def _drop_working(lwork, cnt, oid):
    """Take ``oid`` out of the working list, keeping it ascending (it is short: working orders)."""
    n = cnt[C_N_WORK]
    for w in range(n):
        if lwork[w] == oid:
            for m in range(w, n - 1):
                lwork[m] = lwork[m + 1]
            cnt[C_N_WORK] = n - 1
            return


@internal_njit
def _kill_switch_actions(now, kreq, orders, lorders, lwork, open_idx, cnt, cfg, lat, trace_ts,
                         trace_lat, tick, lot, mult, mkt_l, pos_local, rec_oe, rec_risk, rules,
                         rstate, ks):
    """HALTED: cancel every working order (through the simulated latency) and, when the trigger
    asked for it, flatten every known position with market orders (tag RISK_TAG)."""
    cnt[C_KILL] = 0
    k = 0
    for w in range(cnt[C_N_WORK]):  # cancels leave the list as it is until they are answered
        oid = lwork[w]
        lo = lorders[oid]
        if (lo["status"] == ST_IN_FLIGHT or lo["status"] == ST_OPEN) and lo["pending"] == 0:
            r = kreq[k]
            r["action"] = ACTION_CANCEL
            r["order_id"] = oid
            r["instrument"] = lo["instrument"]
            r["qty"] = 0.0
            r["price"] = math.nan
            r["tag"] = RISK_TAG
            k += 1
            if k == kreq.shape[0]:
                _handle_requests(k, now, kreq, orders, lorders, lwork, open_idx, cnt, cfg, lat,
                                 trace_ts, trace_lat, tick, lot, mult, mkt_l, pos_local, rec_oe,
                                 rec_risk, rules, rstate, ks, True)
                k = 0
    if k > 0:
        _handle_requests(k, now, kreq, orders, lorders, lwork, open_idx, cnt, cfg, lat, trace_ts,
                         trace_lat, tick, lot, mult, mkt_l, pos_local, rec_oe, rec_risk, rules,
                         rstate, ks, True)
    _flatten(now, kreq, orders, lorders, lwork, open_idx, cnt, cfg, lat, trace_ts, trace_lat, tick,
             lot, mult, mkt_l, pos_local, rec_oe, rec_risk, rules, rstate, ks)


@internal_njit
def _flatten(now, kreq, orders, lorders, lwork, open_idx, cnt, cfg, lat, trace_ts, trace_lat, tick,
             lot, mult, mkt_l, pos_local, rec_oe, rec_risk, rules, rstate, ks):
    """HALTED with flatten: a market order for every known position with no order still working
    on its instrument. Called at the halt, after every response and on every market event while
    halted, so orders that were in flight (and filled before their cancel arrived) are flattened
    too; at most one attempt per instant, so a flattening order the exchange rejects (no quote)
    is retried when time moves on, not in a loop at the same time."""
    if ks[G_FLATTEN] == 0.0 or ks[G_STATE] != G_TR_HALTED or cnt[C_FLAT_TS] == now:
        return
    for inst in range(pos_local.shape[0]):
        if pos_local[inst] == 0.0:
            continue
        working = False
        for w in range(cnt[C_N_WORK]):
            lo = lorders[lwork[w]]
            if lo["instrument"] == inst and (lo["status"] == ST_IN_FLIGHT or lo["status"] == ST_OPEN):
                working = True
                break
        if working:
            continue
        r = kreq[0]
        r["action"] = ACTION_SUBMIT
        r["instrument"] = inst
        r["order_type"] = OT_MARKET
        r["side"] = -1 if pos_local[inst] > 0.0 else 1
        r["price"] = math.nan
        r["qty"] = abs(pos_local[inst])
        r["tag"] = RISK_TAG
        cnt[C_FLAT_TS] = now  # an attempt was made at this instant
        _handle_requests(1, now, kreq, orders, lorders, lwork, open_idx, cnt, cfg, lat, trace_ts,
                         trace_lat, tick, lot, mult, mkt_l, pos_local, rec_oe, rec_risk, rules,
                         rstate, ks, True)


@internal_njit
def _kill_or_flatten(now, kreq, orders, lorders, lwork, open_idx, cnt, cfg, lat, trace_ts, trace_lat,
                     tick, lot, mult, mkt_l, pos_local, rec_oe, rec_risk, rules, rstate, ks):
    """After a risk hook ran: the kill switch's cancels and flattening if it just went HALTED,
    else another try at flattening what the exchange refused."""
    if cnt[C_KILL] != 0:
        _kill_switch_actions(now, kreq, orders, lorders, lwork, open_idx, cnt, cfg, lat, trace_ts,
                             trace_lat, tick, lot, mult, mkt_l, pos_local, rec_oe, rec_risk, rules,
                             rstate, ks)
    elif ks[G_FLATTEN] != 0.0:
        _flatten(now, kreq, orders, lorders, lwork, open_idx, cnt, cfg, lat, trace_ts, trace_lat, tick,
                 lot, mult, mkt_l, pos_local, rec_oe, rec_risk, rules, rstate, ks)


def _risk_on_event(t, kind, inst, side, level, kreq, orders, lorders, lwork, open_idx, cnt, cfg, lat,
                   trace_ts, trace_lat, tick, lot, mult, mkt_l, pos_local, rec_oe, rec_risk, rules,
                   rstate, ks):
    """Step 3's risk work on a woken event: the monitor, then what the kill switch must do."""
    _transition(risk.monitor_event_nb(t, kind, inst, side, level, mkt_l, rules, rstate, ks), t, inst,
                rec_risk, cnt, ks)
    _kill_or_flatten(t, kreq, orders, lorders, lwork, open_idx, cnt, cfg, lat, trace_ts, trace_lat,
                     tick, lot, mult, mkt_l, pos_local, rec_oe, rec_risk, rules, rstate, ks)


# A separate function (explicit signature) keeps step 3's rare risk work out of the hot loop. A
# loop with the pass-through gate never calls it, nor the kill switch's actions: there it stays
# lazy, and the `if _RISK` guards drop the calls before typing, so none of it compiles (with the
# rest of the kill switch's code: ~4 s of a cold compile, benchmarks/engine.py).
_risk_on_event = _risk_kernel(_t.void(
    _t.int64, _t.int64, _t.int64, _t.int64, _t.int64, REQUESTS, ORDERS, LOCAL_ORDERS, I64_1D, I64_1D,
    I64_1D, F64_1D, F64_2D, I64_1D, F64_2D, F64_1D, F64_1D, F64_1D, F64_2D, F64_1D, ORDER_EVENTS,
    RISK_EVENTS, F64_2D, F64_1D, F64_1D), **_CALLS_HOOKS)(_risk_on_event)


@njit(cache=True, inline="always")
def _exchange_takes_row(xe, tx, mkt_x, book, book_meta, tick):
    """The exchange's market view, and its book for depth rows, take the row ``xe`` at exchange
    time ``tx``: (the quote changed, the book applied the row; book_levels = 0 ignores them)."""
    inst = xe["instrument"]
    kind = xe["kind"]
    quoted = apply_market_event_nb(mkt_x, inst, kind, xe["side"], xe["level"], xe["price"],
                                   xe["bid_px"], xe["bid_sz"], xe["ask_px"], xe["ask_sz"], tx, True)
    is_book = False
    if kind & _BOOK_ROW:
        is_book = apply_depth_nb(book, book_meta, inst, xe["side"], xe["price"], xe["size"], tx,
                                 (kind & _SNAPSHOT) != 0, tick[inst])
    return quoted, is_book


@njit(cache=True, inline="always")
def _wake_conditions(ks):
    """The wake-up conditions of gate.py folded for the per-event check: (the time from which every
    event wakes the monitor, the feed gap that does, whether a crossed quote does)."""
    every = ks[G_WAKE_ALL] != 0.0 or ks[G_FLATTEN] != 0.0
    return -math.inf if every else ks[G_WAKE_AT], ks[G_WAKE_GAP], ks[G_WAKE_CROSSED] != 0.0


@internal_njit
def _has_room(cnt, cap_oe, cap_fill, cap_resp, cap_orders, cap_risk, cap_eq, n_req, n_levels, n_inst):
    """Room for the worst case of one step: every working order filled on every book level,
    every pending response answered with a full request buffer, the kill switch cancelling
    everything. The loop asks before each step that can write records (again only once an
    order event was written since it last asked: every order, fill and response writes one), so a
    buffer about to fill up pauses the loop (KERNEL_NEED_SPACE) instead of overflowing."""
    work = cnt[C_N_OPEN] + (cnt[C_N_PEND] + 1) * n_req + n_inst
    per = work * (n_levels + 4) + 16
    return (cnt[C_N_OE] + per <= cap_oe and cnt[C_N_FILLS] + per <= cap_fill
            and cnt[C_N_PEND] + per <= cap_resp and cnt[C_N_ORDERS] + work + 1 <= cap_orders
            and cnt[C_N_RISK] + 2 * work + 8 <= cap_risk and cnt[C_N_EQ] + 4 <= cap_eq)


@internal_njit
def _store_clocks(cnt, acct, j, last_xts, done, since, next_t, dt, ks, prev_ts):
    ks[G_PREV_TS] = prev_ts
    cnt[C_XCURSOR] = j
    cnt[C_LAST_XTS] = last_xts
    cnt[C_EVENTS_DONE] = done
    cnt[C_SINCE_SAMPLE] = since
    if dt > 0.0:
        acct[A_NEXT_SAMPLE_T] = next_t


@internal_njit(**_CALLS_HOOKS)
def _sample_equity(t, gidx, mkt_l, pf, acct, cfg, mult, rec_eq, cnt, rec_risk, rules, rstate, ks):
    n = cnt[C_N_EQ]
    if n >= rec_eq.shape[0]:
        cnt[C_STATUS] = KERNEL_OVERFLOW
        return
    mode = int(cfg[K_MARK])
    value = 0.0
    gross = 0.0
    unreal = 0.0
    realized = 0.0
    fees = 0.0
    for k in range(pf.shape[0]):
        pos = pf[k, P_POS]
        realized += pf[k, P_REALIZED]
        fees += pf[k, P_FEES]
        if pos != 0.0:
            mark = mark_price_nb(mkt_l[k], pos, mode)
            pf[k, P_MARK] = mark
            v = pos * mark * mult[k]
            value += v
            gross += abs(v)
            unreal += (mark - pf[k, P_AVG]) * pos * mult[k]
    acct[A_EQUITY] = acct[A_CASH] + value
    e = rec_eq[n]
    e["ts"] = t
    e["event_index"] = gidx
    e["cash"] = acct[A_CASH]
    e["equity"] = acct[A_EQUITY]
    e["gross_exposure"] = gross
    e["net_exposure"] = value
    e["realized"] = realized
    e["unrealized"] = unreal
    e["fees"] = fees
    cnt[C_N_EQ] = n + 1
    if _RISK:  # the kill switch watches the same clock: loss, drawdown, EWMA VaR of the PnL stream
        tr = risk.monitor_sample_nb(t, acct[A_EQUITY], acct[A_EQUITY] - acct[A_INITIAL], rules, rstate,
                                    ks)
        _transition(tr, t, -1, rec_risk, cnt, ks)


@internal_njit(**_CALLS_HOOKS)
def _deliver(t, blank, resp, orders, lorders, pos_local, cnt, mkt_l, params, state, aux_blank, req,
             lwork, open_idx, cfg, lat, trace_ts, trace_lat, tick, lot, mult, rec_oe, rec_risk,
             rules, rstate, ks, kreq):
    """Hand every response due by local time ``t`` to the strategy, in (time, creation) order."""
    while cnt[C_N_PEND] > 0 and cnt[C_STATUS] == 0:
        best = -1
        for k in range(cnt[C_N_PEND]):
            if resp[k]["ts_local"] <= t and (
                best < 0 or resp[k]["ts_local"] < resp[best]["ts_local"]
                or (resp[k]["ts_local"] == resp[best]["ts_local"] and resp[k]["seq"] < resp[best]["seq"])
            ):
                best = k
        if best < 0:
            break
        p = resp[best]
        now = p["ts_local"]
        oid = p["order"]
        ev = p["event"]
        lo = lorders[oid]
        if ev == OE_FILL:
            pos_local[lo["instrument"]] += lo["side"] * p["qty"]
        lo["filled"] = p["filled"]
        if ev == OE_MODIFY_ACK:
            lo["price"] = p["price"]
            lo["qty"] = p["qty"]
        was_working = lo["status"] == ST_IN_FLIGHT or lo["status"] == ST_OPEN
        lo["status"] = p["status"]
        if was_working and lo["status"] != ST_IN_FLIGHT and lo["status"] != ST_OPEN:
            _drop_working(lwork, cnt, oid)
        if p["reason"] != 0:
            lo["reason"] = p["reason"]
        if ev == OE_CANCEL_ACK or ev == OE_CANCEL_REJECT or ev == OE_MODIFY_ACK or ev == OE_MODIFY_REJECT:
            lo["pending"] = 0
        last = cnt[C_N_PEND] - 1
        resp[best] = resp[last]
        cnt[C_N_PEND] = last
        if _RISK and (ev == OE_FILL or ev == OE_REJECT):  # the kill switch counts fills and rejects
            what = G_ACT_FILL if ev == OE_FILL else G_ACT_REJECT
            tr = risk.monitor_activity_nb(now, what, lo["instrument"], rules, rstate, ks)
            if tr != G_TR_NONE:
                _transition(tr, now, lo["instrument"], rec_risk, cnt, ks)
        cnt[C_ERR_TS] = now  # where the callback runs, should it raise (Backtest reports it)
        cnt[C_ERR_ORDER] = oid
        nreq = on_response(REASON_RESPONSE, blank[0], oid, now, mkt_l, pos_local, lorders,
                        cnt[C_N_ORDERS], params, state, aux_blank, req)
        if nreq < 0 or nreq > req.shape[0]:
            cnt[C_STATUS] = KERNEL_STRATEGY_ERROR
            cnt[C_ERR_TS] = now
            cnt[C_ERR_ORDER] = oid
            cnt[C_ERR_VALUE] = nreq
            return
        if nreq > 0:
            _handle_requests(nreq, now, req, orders, lorders, lwork, open_idx, cnt, cfg, lat,
                             trace_ts, trace_lat, tick, lot, mult, mkt_l, pos_local, rec_oe,
                             rec_risk, rules, rstate, ks, False)
        if _RISK and (cnt[C_KILL] != 0 or ks[G_FLATTEN] != 0.0):  # checked here: a call costs
            _kill_or_flatten(now, kreq, orders, lorders, lwork, open_idx, cnt, cfg, lat, trace_ts,
                             trace_lat, tick, lot, mult, mkt_l, pos_local, rec_oe, rec_risk, rules,
                             rstate, ks)
    nxt = INT64_MAX
    for k in range(cnt[C_N_PEND]):
        if resp[k]["ts_local"] < nxt:
            nxt = resp[k]["ts_local"]
    cnt[C_NEXT_RESP] = nxt


# nogil: the GIL is free for the chunk reader thread (see prefetch.py); no C entry point (see internal.py)
@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def run_chunk_nb(events, final, blank, mkt_l, mkt_x, pf, pos_local, acct, orders, lorders, lwork,
                 open_idx, cnt, req, resp, cfg, lat, trace_ts, trace_lat, tick, lot, mult, rec_oe,
                 rec_fill, rec_eq, rec_risk, params, state, aux, aux_blank, rules, rstate, ks, kreq,
                 book, book_meta):
    """Process ``events`` (one chunk); returns how many were consumed.

    ``blank`` is a one-row event array handed to the strategy on response callbacks (so it cannot
    peek at the next market event); ``aux`` holds per-event strategy inputs aligned to ``events``
    (e.g. a signal array) and ``aux_blank`` the NaN row given with responses.

    Sets ``cnt[C_STATUS]``: KERNEL_DONE (all consumed), KERNEL_NEED_MORE (the exchange clock needs
    the next chunk; the caller carries the unconsumed tail over), KERNEL_OVERFLOW (a buffer is
    full; the caller reruns with larger ones), KERNEL_STRATEGY_ERROR (bad request count).
    """
    # unmanaged views: no atomic reference counting on the per-event calls (see unmanaged.py)
    events = unmanaged(events)
    blank = unmanaged(blank)
    mkt_l = unmanaged(mkt_l)
    mkt_x = unmanaged(mkt_x)
    pf = unmanaged(pf)
    pos_local = unmanaged(pos_local)
    acct = unmanaged(acct)
    orders = unmanaged(orders)
    lorders = unmanaged(lorders)
    lwork = unmanaged(lwork)
    open_idx = unmanaged(open_idx)
    cnt = unmanaged(cnt)
    req = unmanaged(req)
    resp = unmanaged(resp)
    cfg = unmanaged(cfg)
    lat = unmanaged(lat)
    trace_ts = unmanaged(trace_ts)
    trace_lat = unmanaged(trace_lat)
    tick = unmanaged(tick)
    lot = unmanaged(lot)
    mult = unmanaged(mult)
    rec_oe = unmanaged(rec_oe)
    rec_fill = unmanaged(rec_fill)
    rec_eq = unmanaged(rec_eq)
    rec_risk = unmanaged(rec_risk)
    params = unmanaged(params)
    state = unmanaged(state)
    aux = unmanaged(aux)
    aux_blank = unmanaged(aux_blank)
    rules = unmanaged(rules)
    rstate = unmanaged(rstate)
    ks = unmanaged(ks)
    kreq = unmanaged(kreq)
    book = unmanaged(book)
    book_meta = unmanaged(book_meta)
    n = events.shape[0]
    n_rules = rules.shape[0]
    # hot counters live in locals (registers) and go back to cnt/acct at every exit
    j = cnt[C_XCURSOR]
    last_xts = cnt[C_LAST_XTS]
    done = cnt[C_EVENTS_DONE]
    since = cnt[C_SINCE_SAMPLE]
    # the previous local event's time, which the risk hooks read as ks[G_PREV_TS]: kept here and
    # written there before each hook call and on return, so the common path stores nothing into
    # ks (an array the compiler must assume aliases every other one)
    prev_ts = ks[G_PREV_TS]
    # likewise the wake-up conditions: read again only after a hook ran (only hooks change them)
    wake_from, wake_gap, wake_crossed = _wake_conditions(ks)
    hooks_ran = False
    cnt[C_STATUS] = KERNEL_DONE
    every = cfg[K_SAMPLE_EVERY]
    dt = cfg[K_SAMPLE_DT]
    every_n = INT64_MAX if every <= 0.0 else int(math.ceil(every))
    next_t = acct[A_NEXT_SAMPLE_T] if dt > 0.0 else math.inf
    n_req = req.shape[0]
    n_levels = book.shape[2]
    n_inst = tick.shape[0]
    cap_oe, cap_fill, cap_resp = rec_oe.shape[0], rec_fill.shape[0], resp.shape[0]
    cap_orders, cap_risk, cap_eq = orders.shape[0], rec_risk.shape[0], rec_eq.shape[0]
    checked_oe = -1  # cnt[C_N_OE] when the room was last checked (nothing written since: still room)
    # one exit: every return site, and every edge leaving this loop, would release the arrays
    # again (numba's reference counting), ~300 lines of IR each to lower and optimize (README,
    # performance, "Compile"); so a stop sets `stop` and goes back to the loop's test
    stop = -1  # where the chunk stopped early (the status says why), -1 while running
    i = 0
    while stop < 0 and i < n:  # one exit edge (numba releases the arrays there once)
        ev = events[i]
        t = ev["ts_local"]
        cnt[C_CUR_DONE] = done
        if cnt[C_N_OE] != checked_oe or cnt[C_N_EQ] + 4 > cap_eq:
            if not _has_room(cnt, cap_oe, cap_fill, cap_resp, cap_orders, cap_risk, cap_eq, n_req,
                             n_levels, n_inst):
                cnt[C_STATUS] = KERNEL_NEED_SPACE
                stop = i
                continue
            checked_oe = cnt[C_N_OE]
        # 1. the exchange catches up to local time t, and responses due by then reach the
        #    strategy, all in time order (on equal times: market event, arrival, response)
        # t_due: the next arrival or response, read again only after a step that can move it
        t_due = min(cnt[C_NEXT_ARRIVAL], cnt[C_NEXT_RESP])
        exchange_idle = t_due > t and cnt[C_N_OPEN] == 0
        if exchange_idle:
            # the common case: an idle exchange (nothing resting, nothing due by t) only keeps its
            # market view (and book) current and writes no records: no room check, no matching,
            # no arrival or response times to compare (5-10 % of the canonical run: README)
            while j < n:
                xe = events[j]
                tx = max(xe["ts_exch"], last_xts)
                if tx > t:
                    break
                _exchange_takes_row(xe, tx, mkt_x, book, book_meta, tick)
                last_xts = tx
                j += 1
        # the general merge: unless the idle exchange is done (out of rows only at the last chunk)
        while not exchange_idle or (j >= n and not final):
            if j < n:
                tx = max(events[j]["ts_exch"], last_xts)
            elif final:
                tx = INT64_MAX
            else:
                cnt[C_STATUS] = KERNEL_NEED_MORE
                stop = i
                break
            if tx <= t_due:
                if tx > t:
                    break
                if cnt[C_N_OPEN] > 0 and cnt[C_N_OE] != checked_oe:
                    if not _has_room(cnt, cap_oe, cap_fill, cap_resp, cap_orders, cap_risk, cap_eq,
                                     n_req, n_levels, n_inst):
                        cnt[C_STATUS] = KERNEL_NEED_SPACE
                        stop = i
                        break
                    checked_oe = cnt[C_N_OE]
                xe = events[j]
                quoted, is_book = _exchange_takes_row(xe, tx, mkt_x, book, book_meta, tick)
                last_xts = tx
                if cnt[C_N_OPEN] > 0:  # only then is there anything to match
                    inst = xe["instrument"]
                    on_market_nb(inst, (xe["kind"] & _TRADE) != 0, quoted, is_book, xe["price"], xe["size"],
                                 xe["side"], tx, orders, open_idx, mkt_x, pf, acct, cfg,
                                 tick[inst], lot[inst], mult[inst], lat, trace_ts, trace_lat, rec_oe,
                                 rec_fill, resp, cnt)
                    t_due = min(cnt[C_NEXT_ARRIVAL], cnt[C_NEXT_RESP])  # fills queue responses
                j += 1
            else:
                if t_due > t:
                    break
                ta = cnt[C_NEXT_ARRIVAL]
                tr = cnt[C_NEXT_RESP]
                if cnt[C_N_OE] != checked_oe:
                    if not _has_room(cnt, cap_oe, cap_fill, cap_resp, cap_orders, cap_risk, cap_eq,
                                     n_req, n_levels, n_inst):
                        cnt[C_STATUS] = KERNEL_NEED_SPACE
                        stop = i
                        break
                    checked_oe = cnt[C_N_OE]
                if ta <= tr:
                    process_arrivals_nb(ta, orders, open_idx, mkt_x, pf, acct, cfg, tick, mult, lat,
                                        trace_ts, trace_lat, rec_oe, rec_fill, resp, cnt, book,
                                        book_meta)
                    t_due = min(cnt[C_NEXT_ARRIVAL], cnt[C_NEXT_RESP])
                    continue
                # 2. a response reaches the strategy at its own local time tr (<= t): the exchange
                # has not run past tr, so whatever the callback sends is matched in time order
                ks[G_PREV_TS] = prev_ts
                hooks_ran = True
                _deliver(tr, blank, resp, orders, lorders, pos_local, cnt, mkt_l, params, state,
                         aux_blank, req, lwork, open_idx, cfg, lat, trace_ts, trace_lat, tick, lot,
                         mult, rec_oe, rec_risk, rules, rstate, ks, kreq)
                if cnt[C_STATUS] != KERNEL_DONE:
                    stop = i
                    break
                t_due = min(cnt[C_NEXT_ARRIVAL], cnt[C_NEXT_RESP])
        if stop >= 0:  # the merge stopped the chunk (status set: more rows, room, or an error)
            continue
        # 3. the strategy's view takes the event, the kill switch looks at it, the strategy sees it
        inst = ev["instrument"]
        kind = ev["kind"]
        apply_market_event_nb(mkt_l, inst, kind, ev["side"], ev["level"], ev["price"], ev["bid_px"],
                              ev["bid_sz"], ev["ask_px"], ev["ask_sz"], t, False)
        if _RISK and n_rules > 0:
            # the monitor sees only the events its rules asked for (wake-ups, gate.py), and every
            # event while the kill switch has positions left to flatten; one call site, so the
            # common path is a few compares (each rare call site costs the hot loop registers)
            if hooks_ran:
                wake_from, wake_gap, wake_crossed = _wake_conditions(ks)
                hooks_ran = False
            if (kind & _CONTROL) != 0 or t >= wake_from or t - prev_ts > wake_gap \
                    or (wake_crossed and (kind & _QUOTE) != 0
                        and mkt_l[inst, M_BID] >= mkt_l[inst, M_ASK]):
                ks[G_PREV_TS] = prev_ts
                hooks_ran = True
                _risk_on_event(t, kind, inst, ev["side"], ev["level"], kreq, orders, lorders, lwork,
                               open_idx, cnt, cfg, lat, trace_ts, trace_lat, tick, lot, mult, mkt_l,
                               pos_local, rec_oe, rec_risk, rules, rstate, ks)
            prev_ts = float(t)
        cnt[C_ERR_TS] = t  # where the callback runs, should it raise (Backtest reports it)
        cnt[C_ERR_ORDER] = -1
        nreq = on_event(REASON_MARKET, ev, -1, t, mkt_l, pos_local, lorders, cnt[C_N_ORDERS],
                        params, state, aux[i], req)
        # 4. its requests leave through the gate
        if nreq != 0:
            if nreq < 0 or nreq > req.shape[0]:
                cnt[C_STATUS] = KERNEL_STRATEGY_ERROR
                cnt[C_ERR_TS] = t
                cnt[C_ERR_ORDER] = -1
                cnt[C_ERR_VALUE] = nreq
                stop = i
                continue
            ks[G_PREV_TS] = prev_ts
            hooks_ran = True
            _handle_requests(nreq, t, req, orders, lorders, lwork, open_idx, cnt, cfg, lat,
                             trace_ts, trace_lat, tick, lot, mult, mkt_l, pos_local, rec_oe,
                             rec_risk, rules, rstate, ks, False)
        # 5. equity clock: every N events and/or on a grid of local time (multiples of dt)
        gidx = done
        done += 1
        since += 1
        if since >= every_n or t >= next_t:
            if dt > 0.0 and t >= next_t:
                next_t = (math.floor(t / dt) + 1.0) * dt
            ks[G_PREV_TS] = prev_ts
            hooks_ran = True
            _sample_equity(t, gidx, mkt_l, pf, acct, cfg, mult, rec_eq, cnt, rec_risk, rules, rstate, ks)
            since = 0
        if _RISK and cnt[C_KILL] != 0:  # the gate's activity monitors or the equity clock tripped it
            hooks_ran = True
            _kill_switch_actions(t, kreq, orders, lorders, lwork, open_idx, cnt, cfg, lat, trace_ts,
                                 trace_lat, tick, lot, mult, mkt_l, pos_local, rec_oe, rec_risk,
                                 rules, rstate, ks)
        if cnt[C_STATUS] != KERNEL_DONE:
            stop = i + 1
            continue
        i += 1
    if stop < 0:  # every event consumed
        stop = n
        if final and n > 0:
            ks[G_PREV_TS] = prev_ts
            _sample_equity(events[n - 1]["ts_local"], done - 1, mkt_l, pf, acct, cfg, mult, rec_eq,
                           cnt, rec_risk, rules, rstate, ks)
            since = 0
    _store_clocks(cnt, acct, j, last_xts, done, since, next_t, dt, ks, prev_ts)
    return stop
