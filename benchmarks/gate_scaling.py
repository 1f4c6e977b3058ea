"""The pre-trade gate's cost per order as a rulebook grows with the instruments it covers.

    python -m tickguard.benchmarks.gate_scaling [--instruments 1 10 50] [--json PATH]

A risk desk writes limits per instrument: here each instrument has its own max order size, max
position, max position notional and stale-quote rule (four rules per instrument), and one gross
exposure limit covers them all. One-lot market orders cycle over the instruments, every one
passing (the common case; a denial takes another path). Each size is timed twice in one process,
rounds interleaved: the gate as the loop runs it (the stateless rules against the fast table of
each metric's tightest threshold per instrument) and the same gate with the table switched off
(``RS_FAST = -1``: every rule visited, its scope tested), so the ratio between them comes from one
run on one machine. What stays linear in the instruments either way is the exposure, a pass over
the instruments' positions.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np
from numba import njit

from tickguard.engine.layout import M_ASK, M_BID, M_MID, M_NF, M_TS_QUOTE
from tickguard.engine.records import ACTION_SUBMIT, LOCAL_ORDER_DTYPE, OT_MARKET, REQUEST_DTYPE
from tickguard.risk.layout import RS_FAST
from tickguard.risk.slots import int_view
from tickguard.risk.pretrade import pretrade_nb

from ._measure import best_of, write_json

__all__ = ["main", "per_instrument_rulebook", "time_gate"]


def per_instrument_rulebook(n_instruments: int) -> str:
    """Four limits per instrument, loose enough that the benchmark's orders pass, and one gross cap."""
    rules = []
    for k in range(n_instruments):
        for metric, threshold in (("max_order_qty", 100 + k), ("max_position", 1_000 + k),
                                  ("max_position_notional", 1e6 + k), ("stale_data", '"5s"')):
            rules.append(f'[[rule]]\nid = "{metric}-{k}"\nmetric = "{metric}"\nscope = {k}\n'
                         f'threshold = {threshold}\naction = "deny"\n')
    rules.append('[[rule]]\nid = "gross"\nmetric = "max_gross_exposure"\nscope = "all"\n'
                 'threshold = 1e12\naction = "deny"\n')
    return "".join(rules)


# not cached: numba keys a cached function on its own file, so a cached copy could keep an old
# gate inlined against a new state layout (as benchmarks/engine.py's _gate_calls_nb)
@njit(cache=False)
def _cycle_nb(n, req, mkt, pos, orders, working, mult, rules, rstate, ks):
    passed = 0
    n_inst = mkt.shape[0]
    for i in range(n):
        now = i * 100_000_000
        inst = i % n_inst
        mkt[inst, M_TS_QUOTE] = float(now)  # a fresh quote (else the stale rule denies)
        req[0]["instrument"] = inst
        req[0]["side"] = 1 if (i // n_inst) % 2 == 0 else -1  # flat, long one, flat, ...
        passed += pretrade_nb(req[0], now, mkt, pos, orders, working, mult, rules, rstate, ks) == 0
    return passed


def time_gate(n_instruments: int, orders: int = 200_000, rounds: int = 7) -> dict[str, Any]:
    """ns per passing order with and without the fast table, for ``n_instruments`` instruments."""
    from tickguard.risk import RiskGate

    gate = RiskGate.load(per_instrument_rulebook(n_instruments))
    req = np.zeros(1, REQUEST_DTYPE)
    req[0]["action"], req[0]["order_type"] = ACTION_SUBMIT, OT_MARKET
    req[0]["price"], req[0]["qty"] = np.nan, 1.0
    mkt = np.zeros((n_instruments, M_NF))
    mkt[:, M_BID], mkt[:, M_ASK], mkt[:, M_MID] = 99.99, 100.01, 100.0
    args = (mkt, np.zeros(n_instruments), np.zeros(1, LOCAL_ORDER_DTYPE), np.zeros(0, np.int64),
            np.ones(n_instruments), gate.rules)

    def state(fast: bool) -> tuple[np.ndarray, np.ndarray]:
        rstate, ks = gate.new_state(n_instruments)
        if not fast:
            int_view(rstate)[RS_FAST] = -1  # an integer slot (risk/slots.py)
        return rstate, ks

    _cycle_nb(10, req, *args, *state(True))  # compile outside the timing
    out: dict[str, Any] = {"instruments": n_instruments, "rules": int(gate.rules.shape[0])}
    best = {True: [], False: []}
    for _ in range(rounds):  # interleaved, so a noisy spell hits both
        for fast in (True, False):
            rstate, ks = state(fast)

            def once(rstate: np.ndarray = rstate, ks: np.ndarray = ks) -> None:
                passed = _cycle_nb(orders, req, *args, rstate, ks)
                if passed != orders:
                    raise RuntimeError(f"gate_scaling: {orders - passed} of {orders} orders denied")

            best[fast].append(best_of(once, 1).best / orders * 1e9)
    out["fast_table_ns"] = min(best[True])
    out["rule_by_rule_ns"] = min(best[False])
    out["speedup"] = out["rule_by_rule_ns"] / out["fast_table_ns"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tickguard.benchmarks.gate_scaling",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--instruments", type=int, nargs="+", default=[1, 10, 50], metavar="N")
    ap.add_argument("--orders", type=int, default=200_000, help="orders per timed round")
    ap.add_argument("--json", default=None, metavar="PATH", help="write the figures as JSON ('-': stdout)")
    ns = ap.parse_args(argv)
    if any(n < 1 for n in ns.instruments) or ns.orders < 1:
        ap.error(f"--instruments and --orders must be >= 1, got {ns.instruments} and {ns.orders}")
    rows = [time_gate(n, ns.orders) for n in ns.instruments]
    print(f"{'instruments':>11}  {'rules':>5}  {'fast table':>10}  {'rule by rule':>12}  ratio")
    for r in rows:
        print(f"{r['instruments']:>11}  {r['rules']:>5}  {r['fast_table_ns']:>7.1f} ns  "
              f"{r['rule_by_rule_ns']:>9.1f} ns  {r['speedup']:.2f}x")
    if ns.json:
        write_json(ns.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
