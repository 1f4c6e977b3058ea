"""The event loop. This file is also a template: see :mod:`tickguard.engine.codegen`.

Numba can only cache a compiled loop whose strategy and risk gate are module globals, so for each
(strategy, gate) pair the code generator writes a copy of this file with its marked import lines
changed (the strategy, and the kernels of loop_kernels.py generated for the gate), and imports
that copy. As written here, the loop runs with no strategy and the pass-through gate (the
reference "no strategy" workload of the benchmarks).

Per local event, in this order:
1. the exchange catches up to the event's local time: market events by exchange time (the data's
   ``ts_exch``), actions arriving after their entry latency (an idle exchange, with nothing
   resting, nothing due and no take of ours pending at a touch, is read by nobody: it takes the
   market events it owes when it is next needed, in the same order, see ``_idle_rows``), and
2. responses reaching the strategy after their response latency (its order view and known
   position change, and its callback runs with ``reason == REASON_RESPONSE`` at the response's
   own local time), all merged in time order (on equal times: market event, arrival, response),
   with resting orders matched after each market event. The exchange never runs ahead of a
   response, so what a response callback sends is matched against the book of its own time;
3. the event updates the strategy's market view and the callback runs (``REASON_MARKET``): in
   ``_strategy_steps``, which goes on with the next events while the exchange stays idle and
   nothing else is due (a tight loop of its own, with only what it reads in registers);
4. requests pass the risk gate and leave with their entry latency;
5. equity is sampled on the configured clock.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from tickguard.engine.bundle import bundle
from tickguard.engine.exchange import on_market_nb, process_arrivals_nb
from tickguard.engine.idle import idle_strategy_nb as on_response  # @@STRATEGY@@
on_event = on_response  # @@STRATEGY_INLINE@@
from tickguard.engine.internal import code_offset, internal_njit, not_inlined
from tickguard.engine.layout import (
    C_CUR_ROW, C_ERR_ORDER, C_ERR_TS, C_ERR_VALUE, C_EVENTS_DONE, C_KILL, C_LAST_XTS,
    C_NEXT_ARRIVAL, C_NEXT_RESP, C_NEXT_SAMPLE_T, C_N_EQ, C_N_OE, C_N_OPEN, C_N_ORDERS, C_N_PEND,
    C_N_RISK, C_S_ARRIVALS, C_S_IDLE, C_S_LOOP, C_S_MATCH, C_S_REQUESTS, C_S_RESPONSES, C_S_SAMPLES,
    C_S_STEPS,
    C_SINCE_SAMPLE, C_STATUS, C_W_CROSSED, C_W_FROM, C_W_GAP, C_W_HOOKS, C_W_MARKED, C_W_MK,
    C_W_SAFE, C_XCURSOR, G_ACT_FILL, G_ACT_REJECT,
    G_FLATTEN, G_PREV_TS, G_TR_NONE,
    INT64_MAX, INT64_MIN, KERNEL_DONE, KERNEL_NEED_MORE, KERNEL_NEED_SPACE, KERNEL_OVERFLOW,
    KERNEL_STRATEGY_ERROR, K_SAMPLE_DT, K_SAMPLE_EVERY, REASON_MARKET, REASON_RESPONSE,
)
from tickguard.engine.loop_kernels import (  # @@KERNELS@@
    _CALLS_HOOKS, _CONTROL, _QUOTE, _RISK, _TRADE, _drop_working, _exchange_takes_row,
    _handle_requests, _has_room, _idle_rows, _kill_or_flatten, _kill_switch_actions,
    _risk_on_event, _sample_equity, _store_clocks, _takes_pending, _tick, _timed_activity, _tock,
    _transition, _wake_conditions, risk,
)
from tickguard.engine.market import apply_market_event_nb, catch_up_nb
from tickguard.engine.minmax import max2, min2
from tickguard.engine.nbtypes import LoopArrays, StepArrays, WatchArrays
from tickguard.engine.records import (
    OE_CANCEL_ACK, OE_CANCEL_REJECT, OE_FILL, OE_MODIFY_ACK, OE_MODIFY_REJECT, OE_REJECT,
    ST_IN_FLIGHT, ST_OPEN,
)
from tickguard.engine.unmanaged import unmanaged

# how _strategy_steps stopped
STOP_BEFORE = 0  # before the event it returns (not started: t_stop reached, i_max, or the end)
STOP_AFTER_CALLBACK = 1  # after that event's callback: the loop finishes it (requests, clock)
# the kill switch's wake-ups, checked by the loop: the steps stop before the next row that may
# meet one by its content (a CONTROL row or a crossed quote: ``marks``, see run_chunk_nb) or by
# time (the first event at or after the timer, or past the feed gap measured from the event they
# start with)
TIME_MARGIN = 4096  # ns: an int bound below a float time, whatever float64's rounding of ns times

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


@internal_njit(**_CALLS_HOOKS)
def _deliver(t, lp, blank, params, state, aux_blank, req):
    """Hand every response due by local time ``t`` to the strategy, in (time, creation) order
    (``lp``: the loop's arrays, see run_chunk_nb)."""
    resp, lorders, lwork, pos_local, cnt = lp.resp, lp.lorders, lp.lwork, lp.pos_local, lp.cnt
    mkt_l = lp.mkt_l
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
            tr = _timed_activity(now, what, lo["instrument"], lp)
            if tr != G_TR_NONE:
                _transition(tr, now, lo["instrument"], lp.rec_risk, cnt, lp.ks)
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
            _handle_requests(nreq, now, req, lp, False)
        if _RISK and (cnt[C_KILL] != 0 or lp.ks[G_FLATTEN] != 0.0):  # checked here: a call costs
            _kill_or_flatten(now, lp)
    nxt = INT64_MAX
    for k in range(cnt[C_N_PEND]):
        if resp[k]["ts_local"] < nxt:
            nxt = resp[k]["ts_local"]
    cnt[C_NEXT_RESP] = nxt


@internal_njit(_nrt=True)  # the strategy, inlined here, may allocate
def _strategy_steps(sp, i, i_max, t_due, i_clock, next_t):
    """Step 3 for events ``i`` to ``i_max - 1``, while nothing else is due: the strategy's view
    takes the event and the callback runs. It stops before an event at or after ``t_due``; after
    the callback of an event that sent requests or that the equity clock samples (event
    ``i_clock`` or local time ``>= next_t``, int ns). The loop finishes those.

    Returns (the event it stopped at, how: STOP_BEFORE or STOP_AFTER_CALLBACK, the requests that
    callback returned).

    A function of its own, with only the arrays this path reads: as part of the loop, whose
    other paths hold dozens of values, LLVM kept them in stack slots (the canonical workload's
    loop ran 189 instructions per event that way, 153 this way; benchmarks/PERFORMANCE.md). And
    never inlined into the loop (``not_inlined``): inlined, it shared the loop's register
    allocation, and every change to the loop's other paths moved its spills (the same steps ran
    122 to 130 instructions per event with the pass-through gate or the kill switch's hooks
    around them; out of line, 86–91 plus ~2 for the calls, either way). No test for the kill
    switch's wake-ups in here: any exit more, even a test of a flag that never changes, cost
    ~7 instructions per event; the loop lowers ``i_max`` and ``t_due`` to the next event that
    may wake it before the call instead (``_watched_bounds``, step 3 in run_chunk_nb), so that
    this function, and the call, are the same with a kill switch as without.
    """
    not_inlined()  # its own registers, whatever the loop around it holds (internal.py)
    # its arrays, from the bundle (sp: StepArrays): views with no owner, so the strategy inlined
    # below costs no reference counting (bundle.py)
    events, mkt_l, pos_local, lorders, cnt = sp.events, sp.mkt_l, sp.pos_local, sp.lorders, sp.cnt
    params, state, aux, req = sp.params, sp.state, sp.aux, sp.req
    n_orders = cnt[C_N_ORDERS]  # only a request adds an order
    cnt[C_ERR_ORDER] = -1  # (Backtest reports where a callback raised: a market event's)
    how = STOP_BEFORE
    nreq = 0
    # the clock's event ends the range (the count's, at least the first): the loop's bound; the
    # time clock's, a bound of the times, tested with t_due's
    clock_i = max2(i_clock, i)
    i_end = clock_i + 1 if clock_i < i_max else i_max
    t_lim = min2(t_due, next_t)
    while i < i_end:
        # unsigned indices: numba wraps a signed one that might be negative (a few instructions
        # per access); rows and instrument ids are not (Backtest checks the ids)
        ev = events[np.uint64(i)]
        t = ev["ts_local"]
        if t >= t_lim:
            if t >= t_due:
                break
            clock_i = i  # t >= next_t: the time clock samples after this event's callback
            i_end = i + 1
        tf = float(t)  # the view's quote clock
        # where a callback that raises raised: one store per event, the row (Backtest finds the
        # event's time and global number from the chunk; no store of the time, no count of the
        # events done carried here)
        cnt[C_CUR_ROW] = i
        apply_market_event_nb(mkt_l, np.uint64(ev["instrument"]), ev, tf, False)
        nreq = on_event(REASON_MARKET, ev, -1, t, mkt_l, pos_local, lorders, n_orders, params,
                        state, aux[i], req)
        if nreq != 0:
            how = STOP_AFTER_CALLBACK
            break
        i += 1
    if how == STOP_BEFORE and i > clock_i:  # past the clock's event: stopped after its callback
        i = clock_i
        how = STOP_AFTER_CALLBACK
    return i, how, nreq


@njit(cache=True, inline="always")
def _take_owed_rows(events, j, last_xts, until, mkt_x, book, book_meta, tick, deferred, cnt):
    """An idle exchange takes the rows it owes, up to exchange time ``until`` (_idle_rows), and its
    view applies the quotes it deferred (catch_up_nb): (its cursor, its clock)."""
    t0 = _tick()
    j, last_xts = _idle_rows(events, j, last_xts, until, mkt_x, book, book_meta, tick, deferred)
    catch_up_nb(events, deferred, mkt_x)
    _tock(cnt, C_S_IDLE, t0)
    return j, last_xts


@njit(cache=True, inline="always")
def _wakes(ev, tf, gap_from, wake_from, wake_gap, wake_crossed):
    """Whether the kill switch's monitor must see event ``ev`` (local time ``tf``), the previous
    event at ``gap_from`` (gate.py: its wake-up conditions)."""
    kind = ev["kind"]
    return ((kind & _CONTROL) != 0 or tf >= wake_from or tf - gap_from > wake_gap
            or (wake_crossed and (kind & _QUOTE) != 0 and ev["bid_px"] >= ev["ask_px"]))


@njit(cache=True, inline="always")
def _time_bound(t, wake_from, wake_gap):
    """The first local time (ns) at which an event after one at ``t`` may meet the timer or the
    feed gap, lowered by TIME_MARGIN against float rounding; at least ``t + 1``."""
    lim = min2(wake_from, float(t) + wake_gap) - TIME_MARGIN
    if not lim < 9.0e18:  # inf (or NaN): no bound
        return INT64_MAX
    if not lim > float(t):  # (-inf while every event wakes it)
        return t + 1
    return max2(np.int64(lim), t + 1)


@njit(cache=True, inline="always")
def _drawn_under(cnt, wake_from, wake_gap, wake_crossed, keep):
    """The wake-up conditions the bounds were drawn under, in ``cnt`` (C_W_FROM, C_W_GAP,
    C_W_CROSSED as float64 bits): ``keep`` stores these; else whether they are the ones stored."""
    drawn = cnt.view(np.float64)
    crossed = 1.0 if wake_crossed else 0.0
    if keep:
        drawn[C_W_FROM] = wake_from
        drawn[C_W_GAP] = wake_gap
        drawn[C_W_CROSSED] = crossed
        return True
    return wake_from == drawn[C_W_FROM] and wake_gap == drawn[C_W_GAP] and crossed == drawn[C_W_CROSSED]


@internal_njit(**_CALLS_HOOKS)
def _watch_bounds(wp, i, i_max, t_stop, prev_ts, lp):
    """Step 3's wake-up check of event ``i`` (the previous local event at ``prev_ts``), one the
    bounds drawn at the last check do not clear: (the steps' bounds, lowered to the next event
    that may wake the monitor), or (-1, -1) when the steps must take event ``i`` alone.

    If the event wakes the monitor, the strategy's view takes it and the monitor looks at it
    before the strategy does; then the steps take it again (the view's update repeats: it sets
    what the row says) and go on, as long as it wakes the monitor no more (the feed gap then
    measured from itself). If it still does, or the monitor acted (a transition, orders, a full
    buffer), they take it alone, whatever is now due, and leave it for the loop to finish.
    Otherwise the steps stop before the next marked row (``marks``: CONTROL rows and crossed
    quotes) and the first time that may meet the timer or the feed gap; that state, and the
    conditions it holds under, are kept in ``cnt`` (C_W_*).

    Out of line (``not_inlined``): it runs at a bound, or when a hook moved the conditions on,
    and rarely does more than draw the bounds."""
    not_inlined()
    events, marks = wp.events, wp.marks
    cnt, ks = lp.cnt, lp.ks
    ev = events[i]
    t = ev["ts_local"]
    tf = float(t)
    wake_from, wake_gap, wake_crossed = _wake_conditions(ks)
    if _wakes(ev, tf, prev_ts, wake_from, wake_gap, wake_crossed):
        apply_market_event_nb(lp.mkt_l, np.uint64(ev["instrument"]), ev, tf, False)
        n_risk = cnt[C_N_RISK]
        n_oe = cnt[C_N_OE]
        arrival = cnt[C_NEXT_ARRIVAL]
        ks[G_PREV_TS] = prev_ts
        _risk_on_event(t, ev["kind"], ev["instrument"], ev["side"], ev["level"], lp)
        wake_from, wake_gap, wake_crossed = _wake_conditions(ks)  # the hook moves them on
        if _wakes(ev, tf, tf, wake_from, wake_gap, wake_crossed) \
                or cnt[C_N_RISK] != n_risk or cnt[C_N_OE] != n_oe \
                or cnt[C_NEXT_ARRIVAL] != arrival or cnt[C_KILL] != 0 \
                or cnt[C_STATUS] != KERNEL_DONE:
            cnt[C_W_SAFE] = INT64_MIN
            return np.int64(-1), np.int64(-1)
    # event i wakes it no more: the steps take it and stop before the next that may
    marked = cnt[C_W_MARKED]
    mk = cnt[C_W_MK]
    while marked <= i:  # (marks ends with n > i)
        marked = marks[mk]
        mk += 1
    cnt[C_W_MARKED] = marked
    cnt[C_W_MK] = mk
    t_safe = _time_bound(t, wake_from, wake_gap)
    cnt[C_W_SAFE] = t_safe
    _drawn_under(cnt, wake_from, wake_gap, wake_crossed, True)  # for _watched_bounds
    return min2(i_max, marked), min2(t_stop, t_safe)


@njit(cache=True, inline="always")
def _watched_bounds(wp, lp, i, i_max, t_stop, i_clock, prev_ts, look):
    """Step 3's bounds with the kill switch watching (``look``), for the strategy's steps from
    event ``i``: (``i_max``, ``t_stop`` and ``i_clock``) lowered to the next event that may wake
    the monitor, event ``i`` checked if the bounds drawn at the last check do not clear it
    (_watch_bounds); when the monitor acted on event ``i``, bounds that take it alone. The bounds
    outlive the hooks that ran since they were drawn (``cnt[C_W_HOOKS]``, set by the loop) if the
    conditions are the ones they were drawn under, compared here; else event ``i`` is checked
    (an exact check after every hook cost ~135 instructions per order with the rulebook;
    benchmarks/PERFORMANCE.md, 4 December, late evening).

    Inlined into the loop, just before its call of the steps, which is then the engine's own
    call of the same function. Inlined into the steps' entry instead (4 December, night), the
    rulebook's loop ran ~1.8 ms slower per 10^7 canonical events, in each of twelve pairs of
    identical builds (benchmarks/PERFORMANCE.md, 5 December, morning)."""
    if look and i < i_max:
        cnt = lp.cnt
        if cnt[C_W_HOOKS] != 0:  # hooks ran since the bounds were drawn: they hold only under the
            cnt[C_W_HOOKS] = 0  # same conditions, else event i is checked
            wake_from, wake_gap, wake_crossed = _wake_conditions(lp.ks)
            if not _drawn_under(cnt, wake_from, wake_gap, wake_crossed, False):
                cnt[C_W_SAFE] = INT64_MIN
        marked = cnt[C_W_MARKED]
        t_safe = cnt[C_W_SAFE]
        t = wp.events[i]["ts_local"]
        if i < marked and t < min2(t_stop, t_safe):
            # event i before the next marked row and the time bound drawn at the last check (of
            # an event before or at it, under the same conditions) cannot wake the monitor: an
            # event after the checked one and before the bound is less than the gap from its
            # predecessor, which is the checked one or later (INT64_MIN: check this one)
            return min2(i_max, marked), min2(t_stop, t_safe), i_clock
        if t < t_stop:
            bound_i, bound_t = _watch_bounds(wp, i, i_max, t_stop, prev_ts, lp)
            if bound_i < 0:  # the steps take event i alone (the clock's count: its callback)
                return i + 1, np.int64(INT64_MAX), i
            return bound_i, bound_t, i_clock
    return i_max, t_stop, i_clock


# nogil: the GIL is free for the chunk reader thread (see prefetch.py); no C entry point (see internal.py)
@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def run_chunk_nb(events, final, blank, mkt_l, mkt_x, pf, pos_local, acct, orders, lorders, lwork,
                 open_idx, cnt, req, resp, cfg, lat, trace_ts, trace_lat, tick, lot, mult, rec_oe,
                 rec_fill, rec_eq, rec_risk, params, state, aux, aux_blank, rules, rstate, ks, kreq,
                 book, book_meta, deferred, marks):
    """Process ``events`` (one chunk); returns how many were consumed.

    ``blank`` is a one-row event array handed to the strategy on response callbacks (so it cannot
    peek at the next market event); ``aux`` holds per-event strategy inputs aligned to ``events``
    (e.g. a signal array) and ``aux_blank`` the NaN row given with responses. ``deferred``
    (int64[n_inst], all -1 between calls) is the exchange view's scratch (see below). ``marks``
    (int64, ascending, then ``len(events)``) lists the rows that may wake the kill switch's
    monitor by their content, every CONTROL row and every quote with bid >= ask (gate.py's
    ``marked_rows_nb``, run on each chunk in the reader thread); ``[len(events)]`` alone with the
    pass-through gate, which has no monitor.

    Sets ``cnt[C_STATUS]``: KERNEL_DONE (all consumed), KERNEL_NEED_MORE (the exchange clock needs
    the next chunk; the caller carries the unconsumed tail over), KERNEL_OVERFLOW (a buffer is
    full; the caller reruns with larger ones), KERNEL_STRATEGY_ERROR (bad request count).
    """
    code_offset(0)  # its slot (engine/internal.py)
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
    deferred = unmanaged(deferred)
    marks = unmanaged(marks)
    # the arrays the kernels below read, stored once: each call passes their address (bundle.py)
    lp = bundle(LoopArrays(orders, lorders, lwork, open_idx, cnt, cfg, lat, trace_ts, trace_lat, tick,
                           lot, mult, mkt_l, mkt_x, pf, acct, pos_local, resp, rec_oe, rec_fill,
                           rec_eq, rec_risk, rules, rstate, ks, kreq, book, book_meta))
    # and the strategy's steps' own: a call passes one address, not nine arrays' fields (~150
    # instructions of argument copies per call, ~1.75 calls per order; benchmarks/PERFORMANCE.md)
    sp = bundle(StepArrays(events, mkt_l, pos_local, lorders, cnt, params, state, aux, req))
    wp = bundle(WatchArrays(events, marks))  # the wake-up check's arrays, one pointer
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
    hooks_ran = False  # since the wake-up bound was drawn (only hooks change the conditions)
    # An idle exchange (nothing resting, nothing due, no take of ours pending at a touch) is read
    # by nobody: it takes the rows it owes (exchange time up to owed_until) only when it is next
    # needed (_idle_rows), and then its view (mkt_x) defers their quotes, the costliest part of
    # keeping it: deferred[inst] is the row of inst's latest quote not yet applied, which
    # catch_up_nb (market.py) applies before the view is read. A pending take (counted in takes)
    # is reset when the touch moves, which depends on every quote in between: the general merge
    # below takes each row in full until then (benchmarks/PERFORMANCE.md).
    owed = False
    # np.int64(0), not 0, here and for i below: numba would type a plain 0 as the literal 0 where it
    # first meets the variable, and compile a second copy of each callee taking it (a literal
    # argument is a type of its own): the strategy's steps twice, strategy inlined (~1 s)
    owed_until = np.int64(0)
    takes = _takes_pending(mkt_x)
    cnt[C_STATUS] = KERNEL_DONE
    every = cfg[K_SAMPLE_EVERY]
    # the time clock in integer ns: a float holds epoch times in ns to 256 ns only (it sampled
    # events up to that much before a multiple of dt, and again at every event until past it)
    dt_ns = np.int64(cfg[K_SAMPLE_DT])
    every_n = INT64_MAX if every <= 0.0 else np.int64(math.ceil(every))
    next_t = cnt[C_NEXT_SAMPLE_T] if dt_ns > 0 else INT64_MAX
    n_req = req.shape[0]
    n_levels = book.shape[2]
    n_inst = tick.shape[0]
    cap_oe, cap_fill, cap_resp = rec_oe.shape[0], rec_fill.shape[0], resp.shape[0]
    cap_orders, cap_risk, cap_eq = orders.shape[0], rec_risk.shape[0], rec_eq.shape[0]
    checked_oe = -1  # cnt[C_N_OE] when the room was last checked (nothing written since: still room)
    # one exit: every return site, and every edge leaving this loop, would release the arrays
    # again (numba's reference counting), ~300 lines of IR each to lower and optimize
    # (benchmarks/PERFORMANCE.md, "Compile"); so a stop sets `stop` and goes back to the loop's test
    stop = -1  # where the chunk stopped early (the status says why), -1 while running
    i = np.int64(0)
    watch = _RISK and n_rules > 0
    # the wake-up checks' state (_watch_bounds): no marked row looked up yet, and no time bound
    cnt[C_W_MARKED] = -1
    cnt[C_W_MK] = 0
    cnt[C_W_SAFE] = INT64_MIN
    cnt[C_W_HOOKS] = 0
    t_loop = _tick()  # (the sections' timing: nothing unless a build times them, codegen.py)
    while stop < 0 and i < n:  # one exit edge (numba releases the arrays there once)
        ev = events[i]
        t = ev["ts_local"]
        cnt[C_CUR_ROW] = i
        if cnt[C_N_OE] != checked_oe or cnt[C_N_EQ] + 4 > cap_eq:
            if not _has_room(cnt, cap_oe, cap_fill, cap_resp, cap_orders, cap_risk, cap_eq,
                             n_req, n_levels, n_inst):
                cnt[C_STATUS] = KERNEL_NEED_SPACE
                stop = i
                continue
            checked_oe = cnt[C_N_OE]
        # 1. the exchange catches up to local time t, and responses due by then reach the
        #    strategy, all in time order (on equal times: market event, arrival, response)
        # t_due: the next arrival or response, read again only after a step that can move it
        t_due = min2(cnt[C_NEXT_ARRIVAL], cnt[C_NEXT_RESP])
        exchange_idle = t_due > t and cnt[C_N_OPEN] == 0 and takes == 0
        # idle, it owes the rows up to t (the strategy's steps below note that): no matching, no
        # due times to compare; else the merge below matches against the exchange's view: bring
        # it up to date
        if not exchange_idle and owed:
            j, last_xts = _take_owed_rows(events, j, last_xts, owed_until, mkt_x, book,
                                          book_meta, tick, deferred, cnt)
            owed = False
        while not exchange_idle:
            if j < n:
                tx = max2(events[j]["ts_exch"], last_xts)
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
                    if not _has_room(cnt, cap_oe, cap_fill, cap_resp, cap_orders, cap_risk,
                                     cap_eq, n_req, n_levels, n_inst):
                        cnt[C_STATUS] = KERNEL_NEED_SPACE
                        stop = i
                        break
                    checked_oe = cnt[C_N_OE]
                xe = events[j]
                t0 = _tick()
                quoted, is_book = _exchange_takes_row(xe, tx, mkt_x, book, book_meta, tick)
                last_xts = tx
                if cnt[C_N_OPEN] > 0:  # only then is there anything to match
                    inst = xe["instrument"]
                    on_market_nb(inst, (xe["kind"] & _TRADE) != 0, quoted, is_book, xe["price"],
                                 xe["size"], xe["side"], tx, orders, open_idx, mkt_x, pf, acct,
                                 cfg, tick[inst], lot[inst], mult[inst], lat, trace_ts,
                                 trace_lat, rec_oe, rec_fill, resp, cnt)
                    t_due = min2(cnt[C_NEXT_ARRIVAL], cnt[C_NEXT_RESP])  # fills queue responses
                _tock(cnt, C_S_MATCH, t0)
                j += 1
            else:
                if t_due > t:
                    break
                ta = cnt[C_NEXT_ARRIVAL]
                tr = cnt[C_NEXT_RESP]
                if cnt[C_N_OE] != checked_oe:
                    if not _has_room(cnt, cap_oe, cap_fill, cap_resp, cap_orders, cap_risk,
                                     cap_eq, n_req, n_levels, n_inst):
                        cnt[C_STATUS] = KERNEL_NEED_SPACE
                        stop = i
                        break
                    checked_oe = cnt[C_N_OE]
                if ta <= tr:
                    t0 = _tick()
                    process_arrivals_nb(ta, orders, open_idx, mkt_x, pf, acct, cfg, tick, mult,
                                        lat, trace_ts, trace_lat, rec_oe, rec_fill, resp, cnt,
                                        book, book_meta)
                    _tock(cnt, C_S_ARRIVALS, t0)
                    t_due = min2(cnt[C_NEXT_ARRIVAL], cnt[C_NEXT_RESP])
                    continue
                # 2. a response reaches the strategy at its own local time tr (<= t): the
                # exchange has not run past tr, so whatever the callback sends is matched in
                # time order
                ks[G_PREV_TS] = prev_ts
                hooks_ran = True
                t0 = _tick()
                _deliver(tr, lp, blank, params, state, aux_blank, req)
                _tock(cnt, C_S_RESPONSES, t0)
                if cnt[C_STATUS] != KERNEL_DONE:
                    stop = i
                    break
                t_due = min2(cnt[C_NEXT_ARRIVAL], cnt[C_NEXT_RESP])
        if not exchange_idle:  # the merge may have taken at a touch, or a touch moved
            takes = _takes_pending(mkt_x)
        if stop >= 0:  # the merge stopped the chunk (status set: more rows, room, or an error)
            continue
        # 3. the strategy's view takes the event and the strategy sees it: this event and,
        #    while the exchange stays idle (so owes its rows), the next ones, in
        #    _strategy_steps; the kill switch's monitor sees the events its rules asked for
        #    (wake-ups, gate.py), and every event while it has positions left to flatten
        if _RISK and hooks_ran:  # only hooks change the wake-up conditions: the bounds drawn
            cnt[C_W_HOOKS] = 1  # before them hold if the conditions did not move (_watched_bounds)
            hooks_ran = False
        # while the exchange stays idle (t_due > t here), the strategy's steps take the events
        # that follow too; an event the exchange merged, they take alone and leave for the steps
        # below to finish (its requests, the clock, the kill switch): the clock stops them
        # (every 0 events). One call site per build (the other is pruned with its `if _RISK`):
        # each would compile a copy (numba types literal arguments apart).
        idle = cnt[C_N_OPEN] == 0 and takes == 0
        i_max = n if idle else i + 1
        t_stop = t_due if idle else INT64_MAX
        every_stop = every_n if idle else 0
        look = watch
        while True:
            i0 = i
            # the equity clock's count as the event whose callback it samples after (every_stop
            # 0: the first)
            left = every_stop - 1 - since  # events after i before the one the clock samples
            i_clock = i + left if left < i_max - i else i_max
            t0 = _tick()
            if _RISK:  # the bounds lowered first to the kill switch's wake-ups (_watched_bounds)
                b_max, b_stop, b_clock = _watched_bounds(wp, lp, i, i_max, t_stop, i_clock, prev_ts, look)
                i, how, nreq = _strategy_steps(sp, i, b_max, b_stop, b_clock, next_t)
            else:
                i, how, nreq = _strategy_steps(sp, i, i_max, t_stop, i_clock, next_t)
            _tock(cnt, C_S_STEPS, t0)
            done += i - i0
            since += i - i0
            last = i if how == STOP_AFTER_CALLBACK else i - 1
            if last >= i0:
                if watch:
                    prev_ts = float(events[last]["ts_local"])
                if idle:  # the exchange owes the rows up to then
                    owed = True
                    owed_until = events[last]["ts_local"]
            # on, past a bound of the wake-ups (the monitor's check of event i above), unless
            # the callback asked for more, or i_max, the end or what is due was reached
            if not (_RISK and look) or how == STOP_AFTER_CALLBACK or i >= i_max \
                    or events[i]["ts_local"] >= t_stop:
                break
        if how != STOP_AFTER_CALLBACK:
            continue
        ev = events[i]  # steps 1 to 3 of event i are done: on to its requests and the clock
        t = ev["ts_local"]
        # 4. its requests leave through the gate
        if nreq != 0:
            if nreq < 0 or nreq > req.shape[0]:
                cnt[C_STATUS] = KERNEL_STRATEGY_ERROR
                cnt[C_ERR_TS] = t
                cnt[C_ERR_ORDER] = -1
                cnt[C_ERR_VALUE] = nreq
                stop = i
                continue
            if _RISK and owed:
                # with a kill switch, an idle exchange takes the rows it owes before the gate (not
                # at the next event, after it): the same rows in the same order, as exact as at any
                # other point (nothing before the next event reads the exchange), and faster: the
                # rulebook's loop ran ~80 ns per order less, the catch-up ~43 ns of it and the gate
                # and the activity monitor after it ~50; the engine's own loop ran slower with it
                # (benchmarks/PERFORMANCE.md, 5 December, day)
                j, last_xts = _take_owed_rows(events, j, last_xts, owed_until, mkt_x, book,
                                              book_meta, tick, deferred, cnt)
                owed = False
            ks[G_PREV_TS] = prev_ts
            hooks_ran = True
            t0 = _tick()
            _handle_requests(nreq, t, req, lp, False)
            _tock(cnt, C_S_REQUESTS, t0)
        # 5. equity clock: every N events and/or on a grid of local time (multiples of dt)
        gidx = done
        done += 1
        since += 1
        if since >= every_n or t >= next_t:
            if dt_ns > 0 and t >= next_t:  # the next multiple of dt after t
                next_t = t - t % dt_ns + dt_ns if t <= INT64_MAX - dt_ns else INT64_MAX
            ks[G_PREV_TS] = prev_ts
            hooks_ran = True
            t0 = _tick()
            _sample_equity(t, gidx, lp)
            _tock(cnt, C_S_SAMPLES, t0)
            since = 0
        if _RISK and cnt[C_KILL] != 0:  # the gate's activity monitors or the equity clock tripped it
            hooks_ran = True
            _kill_switch_actions(t, lp)
        if cnt[C_STATUS] != KERNEL_DONE:
            stop = i + 1
            continue
        i += 1
    if stop < 0:  # every event consumed
        stop = n
        if final and n > 0:
            ks[G_PREV_TS] = prev_ts
            _sample_equity(events[n - 1]["ts_local"], done - 1, lp)
            since = 0
    if owed:  # rows owed beyond this chunk are taken in the next one, before anything reads them
        # (and the quotes its view deferred applied now: deferred[] holds rows of this chunk)
        j, last_xts = _take_owed_rows(events, j, last_xts, owed_until, mkt_x, book, book_meta,
                                      tick, deferred, cnt)
    _tock(cnt, C_S_LOOP, t_loop)
    _store_clocks(cnt, j, last_xts, done, since, next_t, dt_ns, ks, prev_ts)
    return stop
