"""A pre-trade gate and activity monitor generated for one rulebook shape: each rule's check
inlined, its row a constant.

The generic gate (:func:`.pretrade.pretrade_nb`) reads per order which rules of each metric
apply, from tables in ``rstate``, and dispatches rule by rule; about half of what the rulebook
adds per order is that structure (benchmarks/PERFORMANCE.md, 3 December, evening). The gate
written here for a *shape* (each rule's metric and whether it is scoped to one instrument, in
rulebook order) checks the same rules in straight code: thresholds, windows and scopes are still
read from ``rules`` and the state from ``rstate``, so one module serves every rulebook of that
shape, whatever its numbers.

Same answers as the generic gate, by construction and by test (tests/risk/test_gate_codegen.py
compares codes, observed values, thresholds and the whole state after each request on random
rulebooks): the rules are checked in the generic gate's metric order (the stateless ones, then
the k-sigma collar, the throttle, repeats, duplicates), each only while no rule before it in the
rulebook has denied (its ``_applies``), so the rules checked, what they leave behind (expired
signatures, charges made and undone) and the denial reported, the first in rulebook order, are the same.

The activity monitor (:func:`.killswitch.monitor_activity_nb`) is written out the same way: per
activity code, the triggers that count it, in the generic monitor's order (rulebook order), with
their class (numerator or denominator) a constant; same returns and state, by test.

Opt-in (``RiskGate(..., specialize=True)``): a risk module is compiled into the loop's kernels,
so each new shape compiles the kernels and the loop again (seconds); the generic gate runs any
rulebook on the cached engine. Worth it where one shape runs many times (a scenario grid, a
benchmark).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np

from tickguard.engine.codegen import load_generated

from . import layout as L
from .killswitch import _activity_class

__all__ = ["gate_module", "gate_source", "rulebook_shape"]

_RISK_DIR = Path(__file__).resolve().parent
# the sources the generated code reaches (numba's cache trusts only the generated file's stamp)
_RISK_SOURCES = ("pretrade.py", "signatures.py", "slots.py", "killswitch.py", "layout.py")
_ENGINE_SOURCES = ("internal.py", "layout.py", "nbtypes.py", "records.py")

# the stateless metrics in the generic gate's order (_stateless_rules)
_STATELESS = (L.MT_MAX_ORDER_QTY, L.MT_MAX_ORDER_NOTIONAL, L.MT_PRICE_COLLAR_PCT, L.MT_MAX_POSITION,
              L.MT_MAX_POSITION_NOTIONAL, L.MT_MAX_GROSS_EXPOSURE, L.MT_MAX_NET_EXPOSURE,
              L.MT_RESTRICTED, L.MT_STALE_DATA)
_POSITION = (L.MT_MAX_POSITION, L.MT_MAX_POSITION_NOTIONAL)
_EXPOSURE = (L.MT_MAX_GROSS_EXPOSURE, L.MT_MAX_NET_EXPOSURE)
_SIGNATURE = (L.MT_REPEATED_EXECUTION, L.MT_DUPLICATE_ORDER)
_CHARGED = (L.MT_MESSAGE_RATE, *_SIGNATURE)

Shape = tuple[tuple[int, bool], ...]


def rulebook_shape(rules: np.ndarray) -> Shape:
    """(metric, scoped to one instrument) of each rule, in rulebook order."""
    rules = np.asarray(rules, dtype=np.float64)
    return tuple((int(r[L.R_METRIC]), bool(r[L.R_SCOPE] >= 0)) for r in rules)


def _check(k: int, scoped: bool, body: list[str]) -> list[str]:
    """``body`` run for rule ``k`` while no rule before it denied, on its instrument if scoped."""
    cond = f"{k} < best" + (f" and rules[{k}, R_SCOPE] == inst" if scoped else "")  # (a float: no conversion)
    return [f"    if {cond}:  # rule {k}", *("        " + line for line in body)]


def _on_rule(k: int, scoped: bool, body: list[str], indent: str) -> list[str]:
    """``body`` run for rule ``k`` (on its instrument if scoped), its lines at ``indent``."""
    if scoped:
        return [f"{indent}if rules[{k}, R_SCOPE] == inst:  # rule {k}", *(f"{indent}    " + b for b in body)]
    return [f"{indent}# rule {k}", *(indent + b for b in body)]


def _deny_if(k: int, cond: str, observed: str, threshold: str) -> list[str]:
    return [f"if {cond}:", f"    best, best_obs, best_thr = {k}, {observed}, {threshold}"]


def _stateless(k: int, m: int) -> list[str]:
    thr = f"rules[{k}, R_THRESHOLD]"
    if m == L.MT_MAX_ORDER_QTY:
        return _deny_if(k, f"qty > {thr}", "qty", thr)
    if m == L.MT_MAX_ORDER_NOTIONAL:
        return _deny_if(k, f"notional > {thr}", "notional", thr)
    if m == L.MT_PRICE_COLLAR_PCT:
        return ["if not math.isnan(price):  # market orders carry no price to collar",
                f"    obs, width = _collar(MT_PRICE_COLLAR_PCT, np.int64({k}), inst, price, mkt, rules, rstate)",
                *("    " + line for line in _deny_if(k, "not obs <= width", "obs", "width"))]
    if m == L.MT_MAX_POSITION:
        return _deny_if(k, f"_over(before, after, {thr})", "after", thr)
    if m == L.MT_MAX_POSITION_NOTIONAL:
        return _deny_if(k, f"_over(before_v, after_v, {thr})", "after_v", thr)
    if m == L.MT_MAX_GROSS_EXPOSURE:
        return _deny_if(k, f"_over(gross_b, gross_a, {thr})", "gross_a", thr)
    if m == L.MT_MAX_NET_EXPOSURE:
        return _deny_if(k, f"_over(net_b, net_a, {thr})", "net_a", thr)
    if m == L.MT_RESTRICTED:
        return [f"best, best_obs, best_thr = {k}, 1.0, 0.0"]
    if m == L.MT_STALE_DATA:
        return ["age = now - mkt[inst, M_TS_QUOTE]",
                *_deny_if(k, f"not age <= {thr}", "math.inf if age != age else age", thr)]
    raise AssertionError(m)


def _tokens(k: int) -> list[str]:
    """The throttle's bucket refilled to ``now``, as the generic gate computes it."""
    return [f"off = slot_nb(rstate, RS_HEADER + {k})",
            "o = _bucket(off, action)",
            f"tokens = _bucket_tokens(rules, {k}, rstate, o, now)"]


def _activity_source(shape: Shape) -> list[str]:
    """``monitor_activity_nb`` written out for ``shape``: per activity code, the rules that count
    it (as numerator or denominator) in rulebook order, as the generic monitor's table lists
    them, each trigger inlined with its row and class constants. A shape without activity
    triggers keeps the generic monitor (it returns at once)."""
    codes = {what: [(k, m, sc, c) for k, (m, sc) in enumerate(shape) for c in [_activity_class(m, what)] if c >= 0]
             for what in range(1, L.AC_NCODES + 1)}
    if not any(codes.values()):
        return ["from tickguard.risk.killswitch import monitor_activity_nb"]
    out = ["# explicit: one copy, as the generic monitor's (engine/nbtypes.py)",
           "@internal_njit(_t.int64(_t.int64, _t.int64, _t.int64, F64_2D, F64_1D, F64_1D))",
           "def monitor_activity_nb(now, what, inst, rules, rstate, ks):",
           "    code_offset(5)  # its slot (engine/internal.py)",
           "    tr = 0"]
    first = True
    for what, rules in codes.items():
        if not rules:
            continue
        out.append(f"    {'if' if first else 'elif'} what == {what}:")
        first = False
        for k, m, scoped, cls in rules:
            if m in (L.MT_MESSAGE_RATE_KILL, L.MT_FILL_RATE):
                trigger = f"obs, hit = _count_trigger_nb(rstate, off, now, now - rules[{k}, R_WINDOW])"
            else:
                trigger = (f"obs, hit = _ratio_trigger_nb(rstate, off, now, now - rules[{k}, R_WINDOW], "
                           f"{float(cls)!r}, {m == L.MT_ORDER_TO_TRADE}, rules[{k}, R_P0], rules[{k}, R_THRESHOLD])")
            body = [f"off = slot_nb(rstate, RS_HEADER + {k})", trigger, "if hit:",
                    f"    tr = max(tr, escalate_nb(now, np.int64({k}), rules[{k}, R_ACTION], obs, "
                    f"rules[{k}, R_THRESHOLD], ks))"]
            out += _on_rule(k, scoped, body, "        ")
    out.append("    return tr")
    return out


def gate_source(shape: Shape) -> str:
    """The source of a risk module (engine/gate.py's four hooks) whose pre-trade gate and activity
    monitor are written out for ``shape``; the per-event and per-sample monitors are the generic
    ones."""
    n = len(shape)
    of = {m: [(k, sc) for k, (mm, sc) in enumerate(shape) if mm == m] for m in {m for m, _ in shape}}
    has = lambda *ms: any(of.get(m) for m in ms)  # noqa: E731
    out = [
        '"""Generated by tickguard.risk.gate_codegen for one rulebook shape; do not edit."""',
        "import math",
        "import numpy as np",
        "from tickguard.engine.internal import internal_njit",
        "from tickguard.engine.layout import M_MID, M_TS_QUOTE",
        "from tickguard.engine.records import ACTION_CANCEL, ACTION_MODIFY",
        "from numba import types as _t",
        "from tickguard.engine.internal import code_offset",
        "from tickguard.engine.nbtypes import F64_1D, F64_2D",
        "from tickguard.risk.killswitch import (_count_trigger_nb, _ratio_trigger_nb, escalate_nb,",
        "    monitor_event_nb, monitor_sample_nb)",
        "from tickguard.risk.layout import (KS_HALTED, KS_OBSERVED, KS_REDUCING, KS_STATE, KS_THRESHOLD,",
        "    MT_PRICE_COLLAR_PCT, MT_PRICE_COLLAR_SIGMA, PSEUDO_HALTED, PSEUDO_REDUCING, R_ACTION, R_P0,",
        "    R_SCOPE, R_THRESHOLD, R_WINDOW, RS_HEADER, RS_N_INST)",
        "from tickguard.risk.pretrade import (_collar, _deny, _exposures, _open_sums, _order_notional,",
        "    _over, _positions, _reducing_refuses, _request_order, _bucket, _bucket_tokens, _charge_bucket,",
        "    _uncharge_bucket)",
        "from tickguard.risk.signatures import signature_check_nb, signature_unpush_nb",
        "from tickguard.risk.slots import slot_nb",
        "",
        "HOOKS_ALLOCATE = False",
        f"SHAPE = {shape!r}",
        "",
        "",
        "@internal_njit",
        "def pretrade_nb(req, now, mkt, pos, orders, working, mult, rules, rstate, ks):",
        "    action = req['action']",
        "    if action == ACTION_CANCEL:",
        "        return 0",
        "    state = ks[KS_STATE]",
        "    if state == KS_HALTED:",
        "        return _deny(ks, ks[KS_OBSERVED], ks[KS_THRESHOLD], PSEUDO_HALTED)",
        "    n_inst = slot_nb(rstate, RS_N_INST)",
        f"    so = RS_HEADER + {n}",
        "    skip, inst, side, otype, rem, old_rem = _request_order(req, action, orders)",
        "    if inst < 0 or inst >= n_inst:",
        "        return 0",
        "    qty = req['qty']",
        "    price = req['price']",
        "    p = pos[inst]",
        "    if state == KS_REDUCING:",
        "        _open_sums(orders, working, skip, rstate, so, n_inst)",
        "        same = rstate[so + (inst if side > 0 else n_inst + inst)]",
        "        if _reducing_refuses(action, p, side, rem, old_rem, same):",
        "            return _deny(ks, p + side * (same + rem), p, PSEUDO_REDUCING)",
        "    mid = mkt[inst, M_MID]",
        f"    best = {n}",
        "    best_obs = best_thr = 0.0",
    ]
    if has(*_POSITION, *_EXPOSURE):  # open orders counted as filled
        out.append("    _open_sums(orders, working, skip, rstate, so, n_inst)")
    if has(*_POSITION):
        out += ["    same = rstate[so + (inst if side > 0 else n_inst + inst)]",
                "    before, after, before_v, after_v = _positions(p, side, same, old_rem, rem, mid, "
                "price, mult[inst])"]
    if has(*_EXPOSURE):
        out.append("    gross_b, gross_a, net_b, net_a = _exposures(pos, mkt, mult, rstate, so, n_inst, "
                   "inst, side, old_rem, rem)")
    if has(L.MT_MAX_ORDER_NOTIONAL):
        out.append("    notional = _order_notional(price, side, qty, inst, mkt, mult, mid)")
    for m in _STATELESS:
        for k, scoped in of.get(m, []):
            out += _check(k, scoped, _stateless(k, m))
    if has(L.MT_PRICE_COLLAR_SIGMA):
        out.append("    if not math.isnan(price):  # the k-sigma collar: market orders carry no price")
        for k, scoped in of[L.MT_PRICE_COLLAR_SIGMA]:
            body = [f"obs, width = _collar(MT_PRICE_COLLAR_SIGMA, np.int64({k}), inst, price, mkt, rules, "
                    "rstate)", *_deny_if(k, "not obs <= width", "obs", "width")]
            out += ["    " + line for line in _check(k, scoped, body)]
    # charged as each rule passes while nothing has denied, undone on a later denial (as the
    # generic gate does): charged_k says which were
    out += [f"    charged_{k} = False" for k, (m, _) in enumerate(shape) if m in _CHARGED]
    for k, scoped in of.get(L.MT_MESSAGE_RATE, []):
        out += _check(k, scoped, [*_tokens(k), *_deny_if(k, "tokens < 1.0", "tokens", "1.0"),
                                  f"elif best == {n}:", "    _charge_bucket(rstate, off, o, tokens, now)",
                                  f"    charged_{k} = True"])
    if has(*_SIGNATURE):
        out.append("    if action != ACTION_MODIFY:  # the signatures remember submits only")
        for m in _SIGNATURE:
            dup = m == L.MT_DUPLICATE_ORDER
            for k, scoped in of.get(m, []):
                body = [f"remember = best == {n}",
                        f"n_same = 1.0 + signature_check_nb(rstate, slot_nb(rstate, RS_HEADER + {k}), "
                        f"now - rules[{k}, R_WINDOW], now, float(inst), float(side), float(otype), price, qty, "
                        f"{dup}, rules[{k}, R_THRESHOLD] - 1.0, remember)",
                        *_deny_if(k, f"n_same > rules[{k}, R_THRESHOLD]", "n_same", f"rules[{k}, R_THRESHOLD]"),
                        "elif remember:", f"    charged_{k} = True"]
                out += ["    " + line for line in _check(k, scoped, body)]
    out.append(f"    if best < {n}:")
    for k, (m, _) in enumerate(shape):
        if m == L.MT_MESSAGE_RATE:
            out += [f"        if charged_{k}:", f"            off = slot_nb(rstate, RS_HEADER + {k})",
                    "            _uncharge_bucket(rstate, off, _bucket(off, action))"]
        elif m in _SIGNATURE:
            out += [f"        if charged_{k}:",
                    f"            signature_unpush_nb(rstate, slot_nb(rstate, RS_HEADER + {k}))"]
    out += ["        return _deny(ks, best_obs, best_thr, best + 1)", "    return 0", "", ""]
    out += _activity_source(shape)
    return "\n".join(out) + "\n"


def gate_module(rules: np.ndarray) -> ModuleType:
    """The generated risk module for the shape of ``rules`` (written and imported once per
    process; its name keyed by the source and the risk and engine modules it reaches)."""
    source = gate_source(rulebook_shape(rules))
    return load_generated("_tickguard_gate_", source, _ENGINE_SOURCES,
                          tuple(_RISK_DIR / name for name in _RISK_SOURCES))
