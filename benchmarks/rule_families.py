"""What each family of rules costs the loop, in the default build: ablations timed in one process.

The sections tool (benchmarks/sections.py) times the loop's parts in a build that reads the
time-stamp counter around each; the reads move the code, and differences of ~60 ns per order
between builds that do nearly the same work read differently there and in the default build
(5 December, morning: one pre-trade rule alone read 10 ns per order *below* the no-op hooks in
the timed build, 63 ns above them in the default one; benchmarks/PERFORMANCE.md). This tool
times only the default build's loop (``timings["run"]``), interleaved round by round, best of
the rounds, on the canonical workload (benchmarks/engine.py, with its relaxed default
rulebook, which denies nothing: every workload sends the same orders, checked).

Workloads: ``engine`` (pass-through gate), ``noop`` (the rulebook's rows through hooks that do
nothing), ``rulebook``, and for each family of rules present, the family alone and the rulebook
without it. Per family, ns per order: ``alone`` (the family alone, over the no-op hooks) and
``marginal`` (the rulebook over the rulebook without it). ``shared`` is the rulebook's cost over
the no-op hooks less the sum of the marginals: what the families cost together beyond each one's
marginal. It takes either sign within a run's noise (+117, +4 and -53 ns in three runs of 5
December; benchmarks/PERFORMANCE.md), so read it, like the marginals, over several runs.

    python -m tickguard.benchmarks.rule_families [--events N] [--repeat K] [--json PATH|-]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tickguard.benchmarks._measure import format_table, machine_info, write_json
from tickguard.benchmarks.engine import (
    _engine_once, canonical_table, full_rulebook_gate, quote_workload, without_rules,
)
from tickguard.risk import layout as L
from tickguard.risk.rulebook import METRICS

__all__ = ["FAMILIES", "family_of", "main", "run_families"]

#: The rule families, by the hook that evaluates their rules and the state they keep.
FAMILIES: dict[str, frozenset[int]] = {
    # checked against the gate's fast table (per instrument, each metric's tightest threshold,
    # and whether a restricted rule applies)
    "pre-trade, stateless": frozenset({*L.FT_METRICS, L.MT_RESTRICTED}),
    # the gate's rules with memory: sigma of mid, token buckets, order signatures
    "pre-trade, with state": frozenset({L.MT_PRICE_COLLAR_SIGMA, L.MT_MESSAGE_RATE,
                                        L.MT_REPEATED_EXECUTION, L.MT_DUPLICATE_ORDER}),
    # the activity monitor's, on every submit, cancel, modify, fill and reject
    "kill, on order activity": frozenset({L.MT_ORDER_TO_TRADE, L.MT_REJECT_RATE, L.MT_MESSAGE_RATE_KILL,
                                          L.MT_FILL_RATE}),
    # the equity clock's
    "kill, on equity samples": frozenset({L.MT_LOSS_OVER_WINDOW, L.MT_DRAWDOWN, L.MT_EWMA_VAR_BREACH}),
    # the market-event monitor's (the loop's wake-ups)
    "kill, on market events": frozenset({L.MT_CROSSED_DATA, L.MT_STALE_FEED, L.MT_EXTERNAL_KILL}),
}


def family_of(metric: str) -> str:
    """The family (a key of FAMILIES) of a rulebook metric name (a key of rulebook.METRICS)."""
    if metric not in METRICS:
        raise ValueError(f"family_of: unknown metric {metric!r}; known metrics: {sorted(METRICS)}")
    code = METRICS[metric].code
    for name, codes in FAMILIES.items():
        if code in codes:
            return name
    raise ValueError(f"family_of: metric {metric!r} (code {code}) is in no family; add its code to "
                     "one of FAMILIES (benchmarks/rule_families.py)")


def run_families(events: int = 10**7, repeat: int = 5) -> dict[str, Any]:
    """Interleaved rounds of every workload (module doc); the best round of each, in ns per order
    of the engine's run, and per family its ``alone`` and ``marginal`` costs."""
    if repeat < 1 or events < 1000:
        raise ValueError(f"run_families: need repeat >= 1 and events >= 1000, got {repeat} and {events}")
    ev = quote_workload(events)
    table = canonical_table()
    gate = full_rulebook_gate(table)
    from tickguard.benchmarks.noop_risk import NoOpHooksGate

    ids = gate.rulebook.ids
    members = {fam: [rid for rid, m in zip(ids, gate.rulebook.metrics) if family_of(m) == fam]
               for fam in FAMILIES}
    members = {fam: rids for fam, rids in members.items() if rids}
    risks: dict[str, Any] = {"engine": None, "noop": NoOpHooksGate(gate.rulebook, source="no-op hooks"),
                             "rulebook": gate}
    for fam, rids in members.items():
        risks[f"{fam}: alone"] = without_rules(gate, [r for r in ids if r not in rids])
        risks[f"{fam}: without"] = without_rules(gate, rids)
    for risk in risks.values():  # compile (or load) outside the rounds
        _engine_once(ev[:1000], table, risk)
    best: dict[str, float] = {}
    flow: dict[str, tuple[int, int, int]] = {}  # (orders, fills, risk events) of each workload
    for _ in range(repeat):
        for name, risk in risks.items():
            res = _engine_once(ev, table, risk)
            best[name] = min(best.get(name, float("inf")), res.timings["run"])
            flow[name] = (len(res.orders), len(res.fills), len(res.risk_events))
        odd = {name: f for name, f in flow.items() if f != flow["engine"]}
        if odd:  # a workload that denies or trips would time other work than the engine's
            raise RuntimeError(f"run_families: workloads whose (orders, fills, risk events) differ "
                               f"from the engine's {flow['engine']}: {odd}")
    per = flow["engine"][0]
    ns = {name: s * 1e9 / per for name, s in best.items()}
    fams = {fam: {"rules": rids,
                  "alone": ns[f"{fam}: alone"] - ns["noop"],
                  "marginal": ns["rulebook"] - ns[f"{fam}: without"]}
            for fam, rids in members.items()}
    total = ns["rulebook"] - ns["noop"]
    return {"machine": machine_info(), "events": events, "repeat": repeat, "orders": per,
            "ns_per_order": ns, "families": fams,
            "rulebook_over_noop": total, "noop_over_engine": ns["noop"] - ns["engine"],
            "shared": total - sum(f["marginal"] for f in fams.values()),
            "throughput_loss": 1.0 - best["engine"] / best["rulebook"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tickguard.benchmarks.rule_families",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10**7)
    ap.add_argument("--repeat", type=int, default=5, help="interleaved rounds (the best is kept)")
    ap.add_argument("--json", help="write the figures as JSON to PATH ('-' for stdout)")
    ns = ap.parse_args(argv)
    out = run_families(ns.events, ns.repeat)
    t = out["ns_per_order"]
    print(f"ns per order ({out['orders']} orders, {ns.events:,} events, best of {ns.repeat} "
          f"interleaved rounds, default build): engine {t['engine']:.0f}, no-op hooks "
          f"+{out['noop_over_engine']:.0f}, rulebook +{out['rulebook_over_noop']:.0f} over the no-op "
          f"hooks ({out['throughput_loss']:.1%} of the engine's throughput lost)")
    rows = [[fam, len(f["rules"]), f"{f['alone']:+.0f}", f"{f['marginal']:+.0f}"]
            for fam, f in out["families"].items()]
    rows.append(["shared (rulebook - noop - sum of marginals)", "", "", f"{out['shared']:+.0f}"])
    print(format_table(["family", "rules", "alone over noop", "marginal in rulebook"], rows))
    if ns.json:
        write_json(ns.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
