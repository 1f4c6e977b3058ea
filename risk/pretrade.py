"""Pre-trade gate: every submit and modify passes here before it leaves; cancels always pass.

:func:`pretrade_nb` returns 0 (pass), ``rule index + 1`` of the first denying rule (rulebook
order; the rules are checked metric by metric, each metric's code over its own rules, and the
smallest failing index wins), or a negative PSEUDO_* code when the kill switch refuses the
request:

- HALTED refuses every submit and modify (``PSEUDO_HALTED``; observed / threshold repeat the
  values of the trigger that latched the switch, ``ks[KS_OBSERVED]`` / ``ks[KS_THRESHOLD]``).
- REDUCING accepts a submit only when it moves |position| strictly toward zero without crossing
  it, counting the strategy's open orders on that instrument and side as if filled: with position
  ``p`` and same-side open remaining ``O``, an order of side ``s`` and size ``q`` passes iff
  ``p != 0``, ``s == -sign(p)`` and ``O + q <= |p|``; so from flat everything is refused
  (``PSEUDO_REDUCING``; observed: the projected position ``p + s (O + q)``, threshold: ``p``).
  A modify passes if it does not grow the order's remaining size, or if it meets that test.

Cancels are never blocked, throttled nor counted (SEC 15c3-5 systems never stand between a firm
and pulling its orders). On a denial, ``ks[KS_LAST_OBSERVED]`` / ``ks[KS_LAST_THRESHOLD]`` receive
the observed value and the threshold; throttles and the repeat/duplicate memories are updated only
for requests that pass, so denied retries cost a runaway strategy nothing but do not refill it
(the gate charges each as its rule passes, and undoes the charges when a later rule denies).

Units: quantities in units, prices in quote currency, notionals ``qty * price * mult``; the gate
fails closed (observed = inf) when a value it needs is missing (no mid for a collar or exposure).
Position and exposure limits deny only requests that would raise the measure above the limit: a
position already over its limit can always be reduced. Exposures take the worst case over fills of
every open order: per instrument ``max(|pos + open buys|, |pos - open sells|)`` for gross, and
``max(|sum (pos + buys) v|, |sum (pos - sells) v|)`` for net, with ``v = mid * mult``.
Market orders (NaN price) are not collared; their notional uses the touch they would take.
The stateless metrics (size, notional, fixed collar, position, exposure, restricted, stale data)
are checked first against a fast table (``RS_FAST``, built by ``new_risk_state``): per instrument,
each metric's tightest threshold over the rules that apply to it. An order within all of them
passes every such rule; only one that is not takes the rule-by-rule pass, which names the first
denying rule. The rules with state (k-sigma collar, throttle, repeat and duplicate memories) are
checked rule by rule. Same answers either way (tests/risk/test_pretrade.py compares the two on
random rulebooks and streams); the fast table cut the gate from 1 233 to 1 019 instructions per
passing order on the default rulebook.
Open orders are the rows of ``orders`` (LOCAL_ORDER_DTYPE) listed in ``working``, the loop's
ascending list of the strategy's orders in flight or open: the cost is one pass over the working
orders (not over every order ever sent), and only when a position/exposure rule applies or the
switch is REDUCING.
"""

from __future__ import annotations

import math

from numba import njit

from tickguard.engine.internal import internal_njit, not_inlined
from tickguard.engine.layout import M_ASK, M_BID, M_MID, M_TS_QUOTE
from tickguard.engine.records import ACTION_CANCEL, ACTION_MODIFY, ST_IN_FLIGHT, ST_OPEN

from .layout import (
    FT_COLLAR_PCT, FT_GROSS, FT_NET, FT_NF, FT_NOTIONAL, FT_POSITION, FT_POSITION_NOTIONAL, FT_QTY,
    FT_RESTRICTED, FT_STALE, KS_HALTED, KS_LAST_OBSERVED, KS_LAST_THRESHOLD, KS_OBSERVED, KS_REDUCING,
    KS_STATE,
    KS_THRESHOLD, MT_DUPLICATE_ORDER, MT_MAX_GROSS_EXPOSURE, MT_MAX_NET_EXPOSURE,
    MT_MAX_ORDER_NOTIONAL, MT_MAX_ORDER_QTY, MT_MAX_POSITION, MT_MAX_POSITION_NOTIONAL,
    MT_MESSAGE_RATE, MT_PRICE_COLLAR_PCT, MT_PRICE_COLLAR_SIGMA, MT_REPEATED_EXECUTION,
    MT_RESTRICTED, MT_STALE_DATA, PSEUDO_HALTED, PSEUDO_REDUCING, R_P0, R_P1, R_P2,
    R_SCOPE, R_THRESHOLD, R_WINDOW, RS_FAST, RS_HEADER, RS_N_INST,
    RS_N_RULES, RS_PRE_TABLE, SIG_N, SIG_NF, SIG_ROWS,
    SIG_VAR, TB_SAVED_LAST, TB_SAVED_TOKENS, TB_TOKENS_MODIFY, TB_TOKENS_SUBMIT,
)
from .signatures import signature_check_nb, signature_unpush_nb
from .slots import int_nb, slot_nb

__all__ = ["gate_rule_index", "pretrade_nb"]


def gate_rule_index(code: int) -> int:
    """The rulebook row (0-based) behind a gate code, or the PSEUDO_* code as is (0: no denial)."""
    return code - 1 if code > 0 else code


# The gate's helpers on its common path stay inlined by numba (inline="always"): inlined by LLVM
# instead (forceinline, engine/internal.py) they cost the gate ~50 more instructions per order.
# _stateless_rules, off that path, is inlined by LLVM: the same instructions, and a cold rulebook
# build ~4 s shorter (benchmarks/PERFORMANCE.md, 5 December, afternoon).
@njit(cache=True, inline="always")
def _open_sums(orders, working, skip, rstate, so, n_inst):
    """Remaining size of working orders per instrument: buys at ``so + j``, sells at ``so + n + j``.

    The sums start at -0.0, not 0.0: LLVM turns a loop storing a value of identical bytes into a
    call of libc's memset, around which the gate saved and restored a dozen registers on every
    order. Every reader adds a size (``+ 0.0`` at least) to a sum, so -0.0 never reaches a result."""
    for k in range(2 * n_inst):
        rstate[so + k] = -0.0
    for w in range(working.shape[0]):
        i = working[w]
        o = orders[i]
        st = o["status"]
        j = o["instrument"]
        rem = o["qty"] - o["filled"]
        if i == skip or (st != ST_IN_FLIGHT and st != ST_OPEN) or not rem > 0.0 or j < 0 or j >= n_inst:
            continue
        rstate[so + (j if o["side"] > 0 else n_inst + j)] += rem


@njit(cache=True, inline="always")
def _exposures(pos, mkt, mult, rstate, so, n_inst, inst, side, extra_before, extra_after):
    """Worst-case gross and |net| exposures with ``extra_before``, then with ``extra_after``, more
    on (inst, side): (gross before, gross after, net before, net after), in one pass over the
    instruments for both kinds of rule (a pass per rule: the two rules cost 290 instructions an
    order, now 202).
    Each is inf when an instrument it holds has no value (no mid): the gate fails closed."""
    gross_b = gross_a = hi_b = lo_b = hi_a = lo_a = 0.0
    bad_b = bad_a = False
    for j in range(n_inst):
        buys = rstate[so + j]
        sells = rstate[so + n_inst + j]
        hb = pos[j] + (buys + (extra_before if j == inst and side > 0 else 0.0))
        lb = pos[j] - (sells + (extra_before if j == inst and side < 0 else 0.0))
        ha = pos[j] + (buys + (extra_after if j == inst and side > 0 else 0.0))
        la = pos[j] - (sells + (extra_after if j == inst and side < 0 else 0.0))
        held_b = hb != 0.0 or lb != 0.0
        held_a = ha != 0.0 or la != 0.0
        if not (held_b or held_a):
            continue
        v = mkt[j, M_MID] * mult[j]
        valued = v > 0.0 and v < math.inf
        if held_b:
            bad_b = bad_b or not valued
            gross_b += max(abs(hb), abs(lb)) * v
            hi_b += hb * v
            lo_b += lb * v
        if held_a:
            bad_a = bad_a or not valued
            gross_a += max(abs(ha), abs(la)) * v
            hi_a += ha * v
            lo_a += la * v
    if bad_b:
        gross_b = hi_b = lo_b = math.inf
    if bad_a:
        gross_a = hi_a = lo_a = math.inf
    return gross_b, gross_a, max(abs(hi_b), abs(lo_b)), max(abs(hi_a), abs(lo_a))


@njit(cache=True, inline="always")
def _collar_distance(price, mid):
    """|price / mid - 1|, the fixed collar's measure; inf without a mid (fail closed)."""
    return abs(price / mid - 1.0) if mid > 0.0 else math.inf


@njit(cache=True, inline="always")
def _collar(m, r, inst, price, mkt, rules, rstate):
    """(observed distance, allowed width) of a limit price from mid under collar rule ``r``.

    It reads mid itself: given the gate's copy (loop-invariant), LLVM hoisted the division and
    the log out of the rule loop, above the market-order test, so every order paid for them; a
    load after the loop's stores cannot move there. Inlined, as _stateless_rules is (its doc)."""
    mid = mkt[inst, M_MID]
    if m == MT_PRICE_COLLAR_PCT:
        return _collar_distance(price, mid), rules[r, R_THRESHOLD]
    obs = abs(math.log(price / mid)) if mid > 0.0 and price > 0.0 else math.inf
    o = slot_nb(rstate, RS_HEADER + r) + SIG_ROWS + inst * SIG_NF
    sigma = math.sqrt(rstate[o + SIG_VAR]) if rstate[o + SIG_N] > 0.0 else 0.0
    return obs, min(max(rules[r, R_THRESHOLD] * sigma, rules[r, R_P1]), rules[r, R_P2])


@njit(cache=True, inline="always")
def _rules_of(rstate, tab, m):
    """(offset of the list, count) of the pre-trade rules of metric ``m`` (RS_PRE_TABLE)."""
    return slot_nb(rstate, tab + 2 * (m - 1)), slot_nb(rstate, tab + 2 * (m - 1) + 1)


@njit(cache=True, inline="always")
def _applies(rstate, rules, at, best, inst):
    """The rule listed at ``rstate[at]``, or -1 when it is not to be checked: it comes after the
    first denial found so far (``best``), or it is scoped to another instrument."""
    r = slot_nb(rstate, at)
    scope = rules[r, R_SCOPE]  # compared as a float: no conversion
    return -1 if r > best or (scope >= 0.0 and scope != inst) else r


@njit(cache=True, inline="always")
def _collar_rules(m, inst, price, mkt, rules, rstate, tab, best, best_obs, best_thr):
    """The collar rules of metric ``m`` one by one, for a limit price: the first denial so far,
    updated (as the gate carries it: rule, observed, threshold)."""
    first, count = _rules_of(rstate, tab, m)
    for e in range(count):
        r = _applies(rstate, rules, first + e, best, inst)
        if r >= 0:
            obs, width = _collar(m, r, inst, price, mkt, rules, rstate)
            if not obs <= width:
                best, best_obs, best_thr = r, obs, width
    return best, best_obs, best_thr


@njit(cache=True, inline="always")
def _over(before, after, thr):
    """A position or exposure limit denies only what would raise the measure above it."""
    return after > thr and (after > before or after == math.inf)


@njit(cache=True, inline="always")
def _deny(ks, observed, threshold, code):
    ks[KS_LAST_OBSERVED] = observed
    ks[KS_LAST_THRESHOLD] = threshold
    return code


@njit(cache=True, inline="always")
def _order_notional(price, side, qty, inst, mkt, mult, mid):
    """An order's notional at its limit price, or at the touch a market order would take (mid
    without one); inf without either: the gate fails closed."""
    ref = price
    if math.isnan(ref):
        ref = mkt[inst, M_ASK] if side > 0 else mkt[inst, M_BID]
        ref = mid if math.isnan(ref) else ref
    return math.inf if math.isnan(ref) else qty * abs(ref) * mult[inst]


@njit(cache=True, inline="always")
def _positions(p, side, same, old_rem, rem, mid, price, mult_i):
    """|position| before and after the request, open orders counted as filled (``same``: the
    side's open remaining size), in units and in currency at mid (the limit price without a mid;
    inf without either: fail closed)."""
    before = abs(p + side * (same + old_rem))
    after = abs(p + side * (same + rem))
    ref = mid if mid > 0.0 else (abs(price) if price == price else math.nan)
    v = ref * mult_i if ref == ref else math.inf
    before_v = before * v
    after_v = after * v
    before_v = 0.0 if before_v != before_v else before_v  # 0 * inf: nothing held
    after_v = 0.0 if after_v != after_v else after_v
    return before, after, before_v, after_v


@njit(cache=True, forceinline=True)
def _stateless_rules(inst, side, qty, price, rem, old_rem, skip, now, mkt, pos, orders, working, mult,
                     rules, rstate):
    """The stateless pre-trade rules one by one, for an order the fast table did not pass:
    (first denying rule, observed, threshold), ``n_rules`` for none. Inlined (by LLVM), though
    it runs for few orders: called out of line, it took every array's whole structure, which the
    gate then loaded on entry and kept on the stack for every order (~60 instructions per order
    on the default rulebook; benchmarks/PERFORMANCE.md, 4 December, late night)."""
    n_inst = slot_nb(rstate, RS_N_INST)
    so = RS_HEADER + slot_nb(rstate, RS_N_RULES)
    tab = slot_nb(rstate, RS_PRE_TABLE)
    best = slot_nb(rstate, RS_N_RULES)
    best_obs = best_thr = 0.0
    mid = mkt[inst, M_MID]
    p = pos[inst]
    if (_rules_of(rstate, tab, MT_MAX_POSITION)[1] + _rules_of(rstate, tab, MT_MAX_POSITION_NOTIONAL)[1]
            + _rules_of(rstate, tab, MT_MAX_GROSS_EXPOSURE)[1]
            + _rules_of(rstate, tab, MT_MAX_NET_EXPOSURE)[1]):
        _open_sums(orders, working, skip, rstate, so, n_inst)  # open orders counted as filled
    first, count = _rules_of(rstate, tab, MT_MAX_ORDER_QTY)
    for e in range(count):
        r = _applies(rstate, rules, first + e, best, inst)
        if r >= 0 and qty > rules[r, R_THRESHOLD]:
            best, best_obs, best_thr = r, qty, rules[r, R_THRESHOLD]
    first, count = _rules_of(rstate, tab, MT_MAX_ORDER_NOTIONAL)
    for e in range(count):
        r = _applies(rstate, rules, first + e, best, inst)
        if r >= 0:
            obs = _order_notional(price, side, qty, inst, mkt, mult, mid)
            if obs > rules[r, R_THRESHOLD]:
                best, best_obs, best_thr = r, obs, rules[r, R_THRESHOLD]
    if not math.isnan(price):  # market orders carry no price to collar (k sigma: with state)
        best, best_obs, best_thr = _collar_rules(MT_PRICE_COLLAR_PCT, inst, price, mkt, rules, rstate,
                                                 tab, best, best_obs, best_thr)
    first, count = _rules_of(rstate, tab, MT_MAX_POSITION)
    first_n, count_n = _rules_of(rstate, tab, MT_MAX_POSITION_NOTIONAL)
    if count + count_n > 0:  # |position| before and after
        same = rstate[so + (inst if side > 0 else n_inst + inst)]
        before, after, before_v, after_v = _positions(p, side, same, old_rem, rem, mid, price,
                                                      mult[inst])
        for e in range(count):
            r = _applies(rstate, rules, first + e, best, inst)
            if r >= 0 and _over(before, after, rules[r, R_THRESHOLD]):
                best, best_obs, best_thr = r, after, rules[r, R_THRESHOLD]
        for e in range(count_n):
            r = _applies(rstate, rules, first_n + e, best, inst)
            if r >= 0 and _over(before_v, after_v, rules[r, R_THRESHOLD]):
                best, best_obs, best_thr = r, after_v, rules[r, R_THRESHOLD]
    first, count = _rules_of(rstate, tab, MT_MAX_GROSS_EXPOSURE)
    first_n, count_n = _rules_of(rstate, tab, MT_MAX_NET_EXPOSURE)
    if count + count_n > 0:
        gross_b, gross_a, net_b, net_a = _exposures(pos, mkt, mult, rstate, so, n_inst, inst, side,
                                                    old_rem, rem)
        for e in range(count + count_n):  # gross, then net
            net = e >= count
            r = _applies(rstate, rules, (first_n + e - count) if net else (first + e), best, inst)
            if r >= 0:
                before = net_b if net else gross_b
                after = net_a if net else gross_a
                if _over(before, after, rules[r, R_THRESHOLD]):
                    best, best_obs, best_thr = r, after, rules[r, R_THRESHOLD]
    first, count = _rules_of(rstate, tab, MT_RESTRICTED)
    for e in range(count):
        r = _applies(rstate, rules, first + e, best, inst)
        if r >= 0:
            best, best_obs, best_thr = r, 1.0, 0.0
    first, count = _rules_of(rstate, tab, MT_STALE_DATA)
    for e in range(count):
        r = _applies(rstate, rules, first + e, best, inst)
        if r >= 0:
            age = now - mkt[inst, M_TS_QUOTE]
            if not age <= rules[r, R_THRESHOLD]:  # never quoted: NaN age, refused
                best, best_obs, best_thr = r, (math.inf if age != age else age), rules[r, R_THRESHOLD]
    return best, best_obs, best_thr


@njit(cache=True, inline="always")
def _request_order(req, action, orders):
    """What a submit or modify asks for: (order to leave out of the open sums, -1 for a submit;
    instrument, side +-1, order type, remaining size asked, remaining size now). The order id of
    a modify out of range gives instrument -1: the request passes, the loop rejects it."""
    if action == ACTION_MODIFY:
        skip = req["order_id"]
        if skip < 0 or skip >= orders.shape[0]:
            return skip, -1, 1, req["order_type"], 0.0, 0.0
        o = orders[skip]
        old_rem = 0.0
        if o["status"] == ST_IN_FLIGHT or o["status"] == ST_OPEN:
            old_rem = max(o["qty"] - o["filled"], 0.0)
        return (skip, o["instrument"], 1 if o["side"] > 0 else -1, o["order_type"],
                max(req["qty"] - o["filled"], 0.0), old_rem)
    return -1, req["instrument"], 1 if req["side"] > 0 else -1, req["order_type"], req["qty"], 0.0


@njit(cache=True, inline="always")
def _bucket_tokens(rules, r, rstate, o, now):
    """Throttle rule ``r``'s tokens at ``now``: its bucket (``rstate[o]``, refilled last at
    ``rstate[o + 1]``, NaN: untouched) refilled at threshold per window, up to the burst."""
    tokens = rstate[o]
    if rstate[o + 1] == rstate[o + 1]:  # refilled since the last pass
        tokens = min(rules[r, R_P0], tokens + (now - rstate[o + 1]) * rules[r, R_THRESHOLD]
                     / rules[r, R_WINDOW])
    return tokens


@njit(cache=True, inline="always")
def _bucket(off, action):
    """Where, in a throttle's block at ``off``, the bucket the request's action draws on starts
    (submits and modifies have one each; TB_LAST_* follows its tokens)."""
    return off + (TB_TOKENS_MODIFY if action == ACTION_MODIFY else TB_TOKENS_SUBMIT)


@njit(cache=True, inline="always")
def _charge_bucket(rstate, off, o, tokens, now):
    """Take a token from the bucket at ``o`` (refilled to ``tokens`` at ``now``), keeping what it
    held for :func:`_undo_charges`."""
    rstate[off + TB_SAVED_TOKENS] = rstate[o]
    rstate[off + TB_SAVED_LAST] = rstate[o + 1]
    rstate[o] = tokens - 1.0
    rstate[o + 1] = now


@njit(cache=True, inline="always")
def _uncharge_bucket(rstate, off, o):
    """Put back what the bucket at ``o`` held before :func:`_charge_bucket`."""
    rstate[o] = rstate[off + TB_SAVED_TOKENS]
    rstate[o + 1] = rstate[off + TB_SAVED_LAST]


@internal_njit
def _undo_charges(action, inst, charged, rules, rstate):
    """Undo the first ``charged`` charges pretrade_nb made for a request it then denied: the rules
    it charges (throttles, then repeats, then duplicates), in the order it visits them, are every
    rule of those metrics that applies to the instrument, up to the first denial (out of line:
    it runs only for such a denial)."""
    not_inlined()
    tab = slot_nb(rstate, RS_PRE_TABLE)
    for m in (MT_MESSAGE_RATE, MT_REPEATED_EXECUTION, MT_DUPLICATE_ORDER):
        if m != MT_MESSAGE_RATE and action == ACTION_MODIFY:
            break
        first, count = _rules_of(rstate, tab, m)
        for e in range(count):
            if charged == 0:
                return
            r = _applies(rstate, rules, first + e, rules.shape[0], inst)
            if r < 0:
                continue
            off = slot_nb(rstate, RS_HEADER + r)
            if m == MT_MESSAGE_RATE:
                _uncharge_bucket(rstate, off, _bucket(off, action))
            else:
                signature_unpush_nb(rstate, off)
            charged -= 1


@njit(cache=True, inline="always")
def _reducing_refuses(action, p, side, rem, old_rem, same):
    """REDUCING accepts what moves |position| strictly toward zero without crossing it, open
    orders on that side (``same``) counted as filled, and a modify that does not grow the order."""
    shrinks = p != 0.0 and side * p < 0.0 and same + rem <= abs(p)
    return not (shrinks or (action == ACTION_MODIFY and rem <= old_rem))


@internal_njit
def pretrade_nb(req, now, mkt, pos, orders, working, mult, rules, rstate, ks):
    """Gate one request (a REQUEST_DTYPE record) at local time ``now`` (ns).

    ``mkt``: the strategy's market view float64[n_inst, M_NF]; ``pos``: its positions
    float64[n_inst]; ``orders``: its LOCAL_ORDER_DTYPE table; ``working``: int64 ids (ascending)
    of its orders in flight or open, which are the only ones counted as open; ``mult``:
    contract multipliers float64[n_inst]. A modify takes instrument, side and type from
    ``orders[req.order_id]`` and its new total size and price from ``req``; unknown ids pass (the
    loop rejects them). Returns 0, ``rule index + 1`` or a PSEUDO_* code (see the module doc).
    """
    action = req["action"]
    if action == ACTION_CANCEL:
        return 0
    state = ks[KS_STATE]
    if state == KS_HALTED:
        return _deny(ks, ks[KS_OBSERVED], ks[KS_THRESHOLD], PSEUDO_HALTED)
    n_inst = slot_nb(rstate, RS_N_INST)
    so = RS_HEADER + slot_nb(rstate, RS_N_RULES)
    skip, inst, side, otype, rem, old_rem = _request_order(req, action, orders)
    if inst < 0 or inst >= n_inst:
        return 0  # the loop rejects unknown orders and instruments before the gate
    qty = req["qty"]
    price = req["price"]
    sums_done = False
    p = pos[inst]
    if state == KS_REDUCING:
        _open_sums(orders, working, skip, rstate, so, n_inst)
        sums_done = True
        same = rstate[so + (inst if side > 0 else n_inst + inst)]
        if _reducing_refuses(action, p, side, rem, old_rem, same):
            return _deny(ks, p + side * (same + rem), p, PSEUDO_REDUCING)
    mid = mkt[inst, M_MID]
    n_rules = slot_nb(rstate, RS_N_RULES)
    best = n_rules  # the first denying rule so far (none: n_rules)
    best_obs = best_thr = 0.0
    # The stateless metrics first, against the fast table: per instrument, each metric's
    # tightest threshold. An order within all of them passes all their rules (each rule denies
    # only past its threshold, position and exposure rules only a rise past it), which is what
    # nearly every order does; the rule-by-rule pass runs only for an order that is not, and
    # names the first denying rule (it may find none: the fast checks fail closed on NaN).
    fast = int_nb(rstate, RS_FAST) >= 0
    if fast:
        ft = slot_nb(rstate, RS_FAST) + inst * FT_NF
        fast = (not qty > rstate[ft + FT_QTY]
                and not _order_notional(price, side, qty, inst, mkt, mult, mid) > rstate[ft + FT_NOTIONAL]
                and now - mkt[inst, M_TS_QUOTE] <= rstate[ft + FT_STALE]
                and rstate[ft + FT_RESTRICTED] == 0.0)
        if fast and not math.isnan(price):  # market orders carry no price to collar
            fast = _collar_distance(price, mid) <= rstate[ft + FT_COLLAR_PCT]
        thr_pos, thr_pos_v = rstate[ft + FT_POSITION], rstate[ft + FT_POSITION_NOTIONAL]
        thr_gross, thr_net = rstate[ft + FT_GROSS], rstate[ft + FT_NET]
        if fast and min(min(thr_pos, thr_pos_v), min(thr_gross, thr_net)) < math.inf:
            if not sums_done:  # (REDUCING summed them above)
                _open_sums(orders, working, skip, rstate, so, n_inst)
            same = rstate[so + (inst if side > 0 else n_inst + inst)]
            before, after, before_v, after_v = _positions(p, side, same, old_rem, rem, mid, price,
                                                          mult[inst])
            fast = not _over(before, after, thr_pos) and not _over(before_v, after_v, thr_pos_v)
            if fast and min(thr_gross, thr_net) < math.inf:
                gross_b, gross_a, net_b, net_a = _exposures(pos, mkt, mult, rstate, so, n_inst, inst,
                                                            side, old_rem, rem)
                fast = not _over(gross_b, gross_a, thr_gross) and not _over(net_b, net_a, thr_net)
    if not fast:
        best, best_obs, best_thr = _stateless_rules(inst, side, qty, price, rem, old_rem, skip, now,
                                                    mkt, pos, orders, working, mult, rules, rstate)
    # Then the rules with state, rule by rule. Each metric's code runs over its own rules
    # (RS_PRE_TABLE), with no dispatch per rule: a switch on the metric, rule after rule, cost a
    # mispredicted branch per rule. Every rule is checked (an order that passes is checked by
    # all anyway) and the denial reported is the first in rulebook order, the smallest failing
    # index, as in a pass in that order; what a check leaves behind (expired signatures) does not
    # depend on the order.
    tab = slot_nb(rstate, RS_PRE_TABLE)
    if not math.isnan(price):
        best, best_obs, best_thr = _collar_rules(MT_PRICE_COLLAR_SIGMA, inst, price, mkt, rules, rstate,
                                                 tab, best, best_obs, best_thr)
    # The throttles are charged and the order remembered as each rule passes it, while no rule
    # has denied the order; a later denial undoes them (_undo_charges, out of line). A pass over
    # the rules after the verdict, reading each rule's state again, cost ~230 instructions per
    # order on the default rulebook (benchmarks/PERFORMANCE.md, 4 December, late night).
    charged = 0  # charges made so far, in the order the rules are visited
    first, count = _rules_of(rstate, tab, MT_MESSAGE_RATE)
    for e in range(count):
        r = _applies(rstate, rules, first + e, best, inst)
        if r >= 0:
            off = slot_nb(rstate, RS_HEADER + r)
            o = _bucket(off, action)
            tokens = _bucket_tokens(rules, r, rstate, o, now)
            if tokens < 1.0:
                best, best_obs, best_thr = r, tokens, 1.0
            elif best == n_rules:
                _charge_bucket(rstate, off, o, tokens, now)
                charged += 1
    if action != ACTION_MODIFY:  # the signatures remember submits only
        first, count = _rules_of(rstate, tab, MT_REPEATED_EXECUTION)
        first_n, count_n = _rules_of(rstate, tab, MT_DUPLICATE_ORDER)
        for e in range(count + count_n):  # repeats, then duplicates (which match the type too)
            dup = e >= count
            r = _applies(rstate, rules, (first_n + e - count) if dup else (first + e), best, inst)
            if r >= 0:
                # this order and its twins, counted only if the window holds enough orders to
                # pass the threshold; remembered if it passes and nothing denied it so far
                remember = best == n_rules
                n_same = 1.0 + signature_check_nb(rstate, slot_nb(rstate, RS_HEADER + r),
                                                  now - rules[r, R_WINDOW], now, float(inst), float(side),
                                                  float(otype), price, qty, dup,
                                                  rules[r, R_THRESHOLD] - 1.0, remember)
                if n_same > rules[r, R_THRESHOLD]:
                    best, best_obs, best_thr = r, n_same, rules[r, R_THRESHOLD]
                elif remember:
                    charged += 1
    if best < n_rules:
        if charged:
            _undo_charges(action, inst, charged, rules, rstate)
        return _deny(ks, best_obs, best_thr, best + 1)
    return 0
