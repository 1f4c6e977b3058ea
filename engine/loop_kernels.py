"""The event loop's kernels that depend on the risk module and not on the strategy: requests
through the gate, the kill switch's actions, risk records, the equity clock, and the loop's small
helpers. Also a template (see :mod:`tickguard.engine.codegen`): for each risk module the code
generator writes a copy with the two marked lines changed, compiled and cached once per risk
module, so a new strategy compiles only the loop itself (loop_template.py) against it. As written
here, the kernels run with the pass-through gate.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numba import types as _t

from tickguard.data.schema import KIND_CONTROL, KIND_DEPTH, KIND_QUOTE, KIND_SNAPSHOT, KIND_TRADE
from tickguard.engine.book import apply_depth_nb
from tickguard.engine.exchange import insert_open_nb, record_order_event_nb
import tickguard.engine.gate as risk  # @@GATE@@
_RISK = True  # @@RISK@@: False with the pass-through gate (no kill switch to run)
_L2 = True  # @@L2@@: False in a loop for data without book rows, or with book_levels 0 (codegen.py)
_SECTIONS = False  # @@SECTIONS@@: True in a build timing its sections (codegen.py)
from tickguard.engine.internal import code_offset, cycles, internal_njit, not_inlined
from tickguard.engine.latency import latency_nb
from tickguard.engine.layout import (
    A_CASH, A_EQUITY, A_INITIAL, C_BURST_N, C_BURST_TS, C_ERR_TS, C_ERR_VALUE, C_EVENTS_DONE,
    C_FLAT_TS, C_KILL, C_LAST_XTS, C_NEXT_ARRIVAL, C_NEXT_SAMPLE_T, C_N_ACTIONS, C_N_EQ,
    C_N_FILLS, C_N_OE, C_N_OPEN, C_N_ORDERS, C_N_PEND, C_N_RISK, C_N_WORK, C_SINCE_SAMPLE,
    C_S_ACTIVITY, C_S_GATE, C_S_N_ACTIVITY, C_S_N_GATE, C_STATUS, C_XCURSOR, G_ACT_CANCEL,
    G_ACT_MODIFY, G_ACT_SUBMIT, G_DENY_OBSERVED,
    G_DENY_THRESHOLD, G_FLATTEN, G_OBSERVED, G_PREV_TS, G_RULE, G_STATE, G_THRESHOLD,
    G_TR_HALTED, G_TR_NONE, G_TR_RESET, G_WAKE_ALL, G_WAKE_AT, G_WAKE_CROSSED, G_WAKE_GAP,
    KERNEL_OVERFLOW, KERNEL_RUNAWAY, K_MARK, K_MAX_BURST, K_SEED, M_TAKEN_ASK, M_TAKEN_BID,
    P_AVG, P_FEES, P_MARK, P_POS, P_REALIZED,
)
from tickguard.engine.market import apply_market_event_nb, apply_trade_state_nb
from tickguard.engine.minmax import max2, min2
from tickguard.engine.nbtypes import (
    F64_1D, I64_1D, LOCAL_ORDER_ROW, LOOP, ORDER_EVENTS, REQUEST_ROW, REQUESTS, RISK_EVENTS,
)
from tickguard.engine.portfolio import mark_price_nb
from tickguard.engine.records import (
    ACTION_CANCEL, ACTION_MODIFY, ACTION_SUBMIT, OE_CANCEL_REQ, OE_DENIED, OE_MODIFY_REQ, OE_REJECT,
    OE_SUBMIT, OT_MARKET, OT_POST_ONLY, RISK_TAG, RJ_BAD_PRICE, RJ_BAD_QTY, RJ_PENDING,
    RJ_RISK_DENIED, RJ_TOO_LATE, RJ_UNKNOWN_INSTRUMENT, RK_DENIAL, RK_RESET, RK_TRANSITION,
    ST_CANCELLED, ST_FILLED, ST_IN_FLIGHT, ST_OPEN, ST_REJECTED,
)

__all__ = [  # what the loop (loop_template.py) imports
    "risk", "_CALLS_HOOKS", "_CONTROL", "_QUOTE", "_RISK", "_TRADE",
    "_drop_working", "_exchange_takes_row", "_handle_requests", "_has_room", "_idle_rows",
    "_kill_or_flatten", "_kill_switch_actions", "_risk_on_event", "_sample_equity", "_store_clocks",
    "_takes_pending", "_transition", "_wake_conditions", "_activity", "_tick", "_tock", "_timed_activity",
]

_TRADE = int(KIND_TRADE)
_QUOTE = int(KIND_QUOTE)
_CONTROL = int(KIND_CONTROL)
_DEPTH = int(KIND_DEPTH)
_SNAPSHOT = int(KIND_SNAPSHOT)
_BOOK_ROW = _DEPTH | _SNAPSHOT
_NOT_QUOTE = _TRADE | _CONTROL | _BOOK_ROW  # what a row brings besides a quote
_HOOKS_ALLOCATE = True  # @@HOOKS_ALLOCATE@@: False for a risk module that says so (gate.py)
# The kernels here compile without reference counting (internal.py), and a callee inherits its
# caller's setting unless it sets its own. A risk module's hooks may allocate, so in a loop with a
# kill switch the kernels that call them keep it, unless the module says they allocate nothing:
# then a hook call passes its ten arrays without a reference count call on each (two per array
# per call, ~100 per order with the rulebook); a pass-through loop calls no hook.
_CALLS_HOOKS = {"_nrt": True} if _RISK and _HOOKS_ALLOCATE else {}


@njit(cache=True, inline="always")
def _tick():
    """The time-stamp counter where a section starts, in a build that times them (else 0: no
    code, the build is the loop as it is)."""
    return cycles() if _SECTIONS else np.int64(0)


@njit(cache=True, inline="always")
def _tock(cnt, slot, t0):
    """Add the ticks since ``t0`` (:func:`_tick`) to section ``slot`` of ``cnt`` (C_S_*)."""
    if _SECTIONS:
        cnt[slot] += cycles() - t0


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
    _risk_record(rec_risk, cnt, now, oid, rule, RK_DENIAL, inst, np.int64(ks[G_STATE]),
                 ks[G_DENY_OBSERVED], ks[G_DENY_THRESHOLD])


@_risk_kernel(_t.void(_t.int64, _t.int64, _t.int64, RISK_EVENTS, I64_1D, F64_1D))
def _transition(tr, now, inst, rec_risk, cnt, ks):
    """Record a kill-switch transition or reset; on HALTED the loop must cancel and flatten."""
    if tr == G_TR_NONE:
        return
    kind = RK_RESET if tr == G_TR_RESET else RK_TRANSITION
    _risk_record(rec_risk, cnt, now, -1, np.int64(ks[G_RULE]), kind, inst, np.int64(ks[G_STATE]),
                 ks[G_OBSERVED], ks[G_THRESHOLD])
    if tr == G_TR_HALTED:
        cnt[C_KILL] = 1


# The per-order hooks run inside kernels of their own that take the loop's bundle: a call passes
# three or four words, where the hooks' own signatures pass each array's whole structure (~60
# words for the gate, ~25 for the activity monitor). With the rulebook, ~85 fewer instructions
# per order in all (benchmarks/PERFORMANCE.md, 4 December, late evening).
# The hooks are inlined by LLVM (forceinline, engine/internal.py), not by numba: numba's inlining
# typed and lowered the whole of pretrade_nb again inside _gate, 21 of a cold rulebook build's 45 s.
if _RISK:
    _inlined = njit(forceinline=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
    _pretrade_inline = _inlined(risk.pretrade_nb.py_func)
    _activity_inline = _inlined(risk.monitor_activity_nb.py_func)


@_risk_kernel(_t.int64(REQUEST_ROW, _t.int64, LOOP), **_CALLS_HOOKS)
def _gate(q, now, lp):
    """The gate's verdict on request ``q`` at ``now`` (risk.pretrade_nb)."""
    code_offset(2)  # its slot (engine/internal.py)
    return _pretrade_inline(q, now, lp.mkt_l, lp.pos_local, lp.lorders, lp.lwork[:lp.cnt[C_N_WORK]],
                            lp.mult, lp.rules, lp.rstate, lp.ks)


@_risk_kernel(_t.int64(_t.int64, _t.int64, _t.int64, LOOP), **_CALLS_HOOKS)
def _activity(now, what, inst, lp):
    """The activity monitor on activity ``what`` (risk.monitor_activity_nb)."""
    return _activity_inline(now, what, inst, lp.rules, lp.rstate, lp.ks)


@njit(cache=True, inline="always")
def _timed_activity(now, what, inst, lp):
    """The activity monitor (_activity), counted in its section in a build that times them."""
    t0 = _tick()
    tr = _activity(now, what, inst, lp)
    _tock(lp.cnt, C_S_ACTIVITY, t0)
    if _SECTIONS:
        lp.cnt[C_S_N_ACTIVITY] += 1
    return tr


@njit(cache=True, inline="always")
def _timed_gate(q, now, lp):
    """The pre-trade gate (_gate), counted in its section in a build that times them."""
    t0 = _tick()
    code = _gate(q, now, lp)
    _tock(lp.cnt, C_S_GATE, t0)
    if _SECTIONS:
        lp.cnt[C_S_N_GATE] += 1
    return code


# explicit signature: one copy, not one per literal count and flag (see nbtypes.py). The loop's
# arrays come as one bundle (``lp``, see bundle.py): one word per call, not ~190
@internal_njit(_t.void(_t.int64, _t.int64, REQUESTS, LOOP, _t.boolean), **_CALLS_HOOKS)
def _handle_requests(nreq, now, req, lp, from_risk):
    """Validate, gate and send ``req[:nreq]``. ``from_risk``: the kill switch's own cancels and
    flattening orders, which skip the gate and the activity monitors.

    The runaway guard: a strategy that answers every response with a new request, where nothing
    moves time on (no latency anywhere: a post-only order resent at a price the exchange rejects,
    say), would keep the loop at one instant forever. More than ``cfg[K_MAX_BURST]`` requests at
    one local time stop the run (KERNEL_RUNAWAY; Backtest names the time and the fixes) before
    any of them is handled."""
    # each array read from the bundle where it is used: read at the top, LLVM kept them all in
    # stack slots, two moves a word on entry (bundle.py)
    code_offset(1)  # its slot (engine/internal.py)
    cnt = lp.cnt
    if not from_risk:
        if now != cnt[C_BURST_TS]:
            cnt[C_BURST_TS] = now
            cnt[C_BURST_N] = 0
        cnt[C_BURST_N] += nreq
        if cnt[C_BURST_N] > lp.cfg[K_MAX_BURST]:
            cnt[C_STATUS] = KERNEL_RUNAWAY
            cnt[C_ERR_TS] = now
            cnt[C_ERR_VALUE] = cnt[C_BURST_N]
            return
    n_inst = lp.tick.shape[0]
    for r in range(nreq):
        q = req[r]
        action = q["action"]
        if action == ACTION_SUBMIT:
            oid = cnt[C_N_ORDERS]
            if oid >= lp.orders.shape[0]:
                cnt[C_STATUS] = KERNEL_OVERFLOW
                return
            cnt[C_N_ORDERS] = oid + 1
            inst = q["instrument"]
            o = lp.orders[oid]
            lo = lp.lorders[oid]
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
            elif not (q["qty"] > 0.0) or math.isinf(q["qty"]) or not _on_grid(q["qty"], lp.lot[inst]):
                reason = RJ_BAD_QTY
            elif q["order_type"] < OT_MARKET or q["order_type"] > OT_POST_ONLY or q["side"] == 0:
                reason = RJ_BAD_PRICE
            elif q["order_type"] != OT_MARKET and (
                not (q["price"] > 0.0) or math.isinf(q["price"]) or not _on_grid(q["price"], lp.tick[inst])
            ):
                reason = RJ_BAD_PRICE
            _local_record(lp.rec_oe, cnt, now, oid, OE_SUBMIT, 0, lo, o["price"], o["qty"])
            if reason != 0:
                o["status"] = ST_REJECTED
                lo["status"] = ST_REJECTED
                lo["reason"] = reason
                _local_record(lp.rec_oe, cnt, now, oid, OE_REJECT, reason, lo, o["price"], o["qty"])
                continue
            code = 0
            if _RISK and not from_risk:  # the new order is row oid: the gate sees the ones before it
                code = _timed_gate(q, now, lp)
            if _RISK and code != 0:
                o["status"] = ST_REJECTED
                lo["status"] = ST_REJECTED
                lo["reason"] = RJ_RISK_DENIED
                _local_record(lp.rec_oe, cnt, now, oid, OE_DENIED, code, lo, o["price"], o["qty"])
                _denied(lp.rec_risk, cnt, now, oid, code, inst, lp.ks)
                continue
            cnt[C_N_ACTIONS] += 1
            delay = latency_nb(lp.lat, lp.trace_ts, lp.trace_lat, ACTION_SUBMIT, False, now, lp.cfg[K_SEED],
                               cnt[C_N_ACTIONS])
            o["status"] = ST_IN_FLIGHT
            lo["status"] = ST_IN_FLIGHT
            lp.lwork[cnt[C_N_WORK]] = oid  # the newest id: the list stays ascending
            cnt[C_N_WORK] += 1
            o["ts_arrive"] = now + max2(delay, 0)
            insert_open_nb(lp.open_idx, cnt, oid)
            if o["ts_arrive"] < cnt[C_NEXT_ARRIVAL]:
                cnt[C_NEXT_ARRIVAL] = o["ts_arrive"]
            if _RISK and not from_risk:
                tr = _timed_activity(now, G_ACT_SUBMIT, inst, lp)
                if tr != G_TR_NONE:
                    _transition(tr, now, inst, lp.rec_risk, cnt, lp.ks)
        elif action == ACTION_CANCEL or action == ACTION_MODIFY:
            oid = q["order_id"]
            if oid < 0 or oid >= cnt[C_N_ORDERS]:
                continue  # nothing to attach a record to; the strategy asked about no order
            lo = lp.lorders[oid]
            o = lp.orders[oid]
            ev = OE_CANCEL_REQ if action == ACTION_CANCEL else OE_MODIFY_REQ
            _local_record(lp.rec_oe, cnt, now, oid, ev, 0, lo, q["price"], q["qty"])
            reason = 0
            if lo["status"] == ST_FILLED or lo["status"] == ST_CANCELLED or lo["status"] == ST_REJECTED:
                reason = RJ_TOO_LATE
            elif o["pending"] != 0:
                reason = RJ_PENDING
            elif action == ACTION_MODIFY and (
                not (q["qty"] > 0.0) or not _on_grid(q["qty"], lp.lot[o["instrument"]])
            ):
                reason = RJ_BAD_QTY
            elif action == ACTION_MODIFY and o["order_type"] != OT_MARKET and (
                not (q["price"] > 0.0) or not _on_grid(q["price"], lp.tick[o["instrument"]])
            ):
                reason = RJ_BAD_PRICE
            if _RISK and reason == 0 and action == ACTION_MODIFY and not from_risk:
                code = _timed_gate(q, now, lp)
                if code != 0:
                    lo["reason"] = RJ_RISK_DENIED
                    _local_record(lp.rec_oe, cnt, now, oid, OE_DENIED, code, lo, q["price"], q["qty"])
                    _denied(lp.rec_risk, cnt, now, oid, code, o["instrument"], lp.ks)
                    continue
            if reason != 0:
                lo["reason"] = reason
                _local_record(lp.rec_oe, cnt, now, oid, OE_REJECT, reason, lo, q["price"], q["qty"])
                continue
            cnt[C_N_ACTIONS] += 1
            delay = latency_nb(lp.lat, lp.trace_ts, lp.trace_lat, action, False, now, lp.cfg[K_SEED],
                               cnt[C_N_ACTIONS])
            o["pending"] = action
            o["ts_pending"] = now + max2(delay, 0)
            o["new_price"] = q["price"] if action == ACTION_MODIFY else o["price"]
            o["new_qty"] = q["qty"] if action == ACTION_MODIFY else o["qty"]
            lo["pending"] = action
            insert_open_nb(lp.open_idx, cnt, oid)
            if o["ts_pending"] < cnt[C_NEXT_ARRIVAL]:
                cnt[C_NEXT_ARRIVAL] = o["ts_pending"]
            if _RISK and not from_risk:
                what = G_ACT_CANCEL if action == ACTION_CANCEL else G_ACT_MODIFY
                tr = _timed_activity(now, what, o["instrument"], lp)
                if tr != G_TR_NONE:
                    _transition(tr, now, o["instrument"], lp.rec_risk, cnt, lp.ks)


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
def _kill_switch_actions(now, lp):
    """HALTED: cancel every working order (through the simulated latency) and, when the trigger
    asked for it, flatten every known position with market orders (tag RISK_TAG)."""
    cnt, kreq, lwork, lorders = lp.cnt, lp.kreq, lp.lwork, lp.lorders
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
                _handle_requests(k, now, kreq, lp, True)
                k = 0
    if k > 0:
        _handle_requests(k, now, kreq, lp, True)
    _flatten(now, lp)


@internal_njit
def _flatten(now, lp):
    """HALTED with flatten: a market order for every known position with no order still working
    on its instrument. Called at the halt, after every response and on every market event while
    halted, so orders that were in flight (and filled before their cancel arrived) are flattened
    too; at most one attempt per instant, so a flattening order the exchange rejects (no quote)
    is retried when time moves on, not in a loop at the same time."""
    cnt, kreq, lwork, lorders, pos_local, ks = lp.cnt, lp.kreq, lp.lwork, lp.lorders, lp.pos_local, lp.ks
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
        _handle_requests(1, now, kreq, lp, True)


@internal_njit
def _kill_or_flatten(now, lp):
    """After a risk hook ran: the kill switch's cancels and flattening if it just went HALTED,
    else another try at flattening what the exchange refused."""
    if lp.cnt[C_KILL] != 0:
        _kill_switch_actions(now, lp)
    elif lp.ks[G_FLATTEN] != 0.0:
        _flatten(now, lp)


def _risk_on_event(t, kind, inst, side, level, lp):
    """Step 3's risk work on a woken event: the monitor, then what the kill switch must do."""
    _transition(risk.monitor_event_nb(t, kind, inst, side, level, lp.mkt_l, lp.rules, lp.rstate, lp.ks),
                t, inst, lp.rec_risk, lp.cnt, lp.ks)
    _kill_or_flatten(t, lp)


# A separate function (explicit signature) keeps step 3's rare risk work out of the hot loop. A
# loop with the pass-through gate never calls it, nor the kill switch's actions: there it stays
# lazy, and the `if _RISK` guards drop the calls before typing, so none of it compiles (with the
# rest of the kill switch's code: ~4 s of a cold compile, benchmarks/engine.py).
_risk_on_event = _risk_kernel(_t.void(_t.int64, _t.int64, _t.int64, _t.int64, _t.int64, LOOP),
                              **_CALLS_HOOKS)(_risk_on_event)


@internal_njit
def _takes_pending(mkt_x):
    """How many instruments have a take of ours pending at the touch (M_TAKEN_* non-zero)."""
    k = 0
    for inst in range(mkt_x.shape[0]):
        if mkt_x[inst, M_TAKEN_BID] != 0.0 or mkt_x[inst, M_TAKEN_ASK] != 0.0:
            k += 1
    return k


@internal_njit
def _idle_rows(events, j, last_xts, until, mkt_x, book, book_meta, tick, deferred):
    """The rows an idle exchange owes: from its cursor ``j``, those with exchange time up to
    ``until``. Its book takes depth rows and its view a trade's price or a trading-state change
    (a store or two) at once; its view defers quotes: ``deferred[inst]`` becomes the row of the
    latest, for catch_up_nb (market.py). Exact only while no take of ours is pending at a touch
    (its reset depends on every quote in between): the loop calls it only then. Returns (cursor,
    last exchange time).

    A run of rows that bring a quote at most (most of a feed) is taken in two passes: one finds
    where it ends, two rows a step, storing nothing (the exchange clock passes ``until``, or a
    row brings more), then one from its end back notes each instrument's latest quote, and stops
    once every instrument has one (at once for one instrument): 10.5 instructions a row, where
    one pass storing ``deferred[inst]`` at every row ran 18. Rows that bring more are taken one
    by one.

    Never inlined into the loop (``not_inlined``): inlined, its registers were the loop's, and
    where the loop's other paths changed it ran 18 to 24 instructions a row."""
    not_inlined()
    n = events.shape[0]
    n_inst = tick.shape[0]
    while j < n:
        k = j  # the run of quote rows from j: up to k (excluded), its clock at hi
        hi = last_xts
        if hi <= until:  # (else nothing is owed: the clock is past until already)
            # the clock is the running maximum of the rows' times: from hi <= until, a row keeps
            # it within until iff its own time is, so no test waits for the maximum; two rows a
            # step (the second loop takes the run's last row, or finds which of two ends it)
            while k + 1 < n:
                a = events[np.uint64(k)]  # unsigned: no wrap-around of a negative index (never is)
                b = events[np.uint64(k + 1)]
                if (a["ts_exch"] > until or b["ts_exch"] > until
                        or (a["kind"] | b["kind"]) & _NOT_QUOTE):
                    break
                hi = max2(hi, max2(a["ts_exch"], b["ts_exch"]))
                k += 2
            while k < n:
                xe = events[np.uint64(k)]
                if xe["ts_exch"] > until or xe["kind"] & _NOT_QUOTE:
                    break
                hi = max2(hi, xe["ts_exch"])
                k += 1
        if k > j:
            # from the end back: an instrument's first quote met is its latest; deferred[inst]
            # below j was set before this run (rows taken earlier, or -1: none)
            found = 0
            r = k - 1
            while r >= j and found < n_inst:
                xe = events[np.uint64(r)]
                inst = np.uint64(xe["instrument"])  # (ids are checked non-negative: Backtest)
                if xe["kind"] & _QUOTE and deferred[inst] < j:
                    deferred[inst] = r
                    found += 1
                r -= 1
            j = k
            last_xts = hi
            if j >= n:
                break
        xe = events[np.uint64(j)]  # past until (the end), or a row that brings more than a quote
        tx = max2(xe["ts_exch"], last_xts)
        if tx > until:
            break
        inst = xe["instrument"]
        kind = xe["kind"]
        if kind & _QUOTE:
            deferred[np.uint64(inst)] = j
        apply_trade_state_nb(mkt_x, inst, kind, xe)
        if _L2 and kind & _BOOK_ROW:
            apply_depth_nb(book, book_meta, inst, xe["side"], xe["price"], xe["size"], tx,
                           (kind & _SNAPSHOT) != 0, tick[inst])
        last_xts = tx
        j += 1
    return j, last_xts


@njit(cache=True, inline="always")
def _exchange_takes_row(xe, tx, mkt_x, book, book_meta, tick):
    """The exchange's market view, and its book for depth rows, take the row ``xe`` at exchange
    time ``tx``: (the quote changed, the book applied the row; book_levels = 0 ignores them)."""
    inst = xe["instrument"]
    kind = xe["kind"]
    quoted = apply_market_event_nb(mkt_x, inst, xe, tx, True)
    is_book = False
    if _L2 and kind & _BOOK_ROW:
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
def _store_clocks(cnt, j, last_xts, done, since, next_t, dt_ns, ks, prev_ts):
    ks[G_PREV_TS] = prev_ts
    cnt[C_XCURSOR] = j
    cnt[C_LAST_XTS] = last_xts
    cnt[C_EVENTS_DONE] = done
    cnt[C_SINCE_SAMPLE] = since
    if dt_ns > 0:
        cnt[C_NEXT_SAMPLE_T] = next_t


@internal_njit(**_CALLS_HOOKS)
def _sample_equity(t, gidx, lp):
    mkt_l, pf, acct, cfg, mult, rec_eq, cnt = lp.mkt_l, lp.pf, lp.acct, lp.cfg, lp.mult, lp.rec_eq, lp.cnt
    n = cnt[C_N_EQ]
    if n >= rec_eq.shape[0]:
        cnt[C_STATUS] = KERNEL_OVERFLOW
        return
    mode = np.int64(cfg[K_MARK])
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
        tr = risk.monitor_sample_nb(t, acct[A_EQUITY], acct[A_EQUITY] - acct[A_INITIAL], lp.rules,
                                    lp.rstate, lp.ks)
        _transition(tr, t, -1, lp.rec_risk, cnt, lp.ks)
