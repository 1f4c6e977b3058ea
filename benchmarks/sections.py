"""Where the loop's time goes per order, in time: the canonical workload with its sections timed.

callgrind counts instructions, and the rulebook's cost does not follow them (about 0.1 ns per
instruction removed from the gate; benchmarks/PERFORMANCE.md, 4 December). This times the
loop's own sections instead, with the CPU's time-stamp counter, in a build of the loop that
reads it around each (``Backtest(sections=True)``, x86-64; see ``loop_plain`` below for what the
reads cost): step 3 (the strategy's steps), the idle exchange's catch-up,
matching, arrivals, responses, requests (the gate and the activity monitor within them) and the
equity samples; the rest of the loop is its own bookkeeping. The ticks are scaled to ns by each
run's wall time.

Workloads (benchmarks/engine.py's canonical one, interleaved rounds, the round with the least
loop time kept): ``engine`` (pass-through gate), ``noop`` (the rulebook's rows through hooks that
do nothing: benchmarks/noop_risk.py) and ``rulebook`` (the default rulebook, relaxed as in
benchmarks/engine.py; ``--without RULE_ID ...`` leaves rules out). Figures are ns per order of the
engine's run (the same orders in all: the relaxed rulebook denies none), and each workload's
difference from the engine's. ``loop_plain`` is the same workload's loop in the default build, in
the same rounds: the timed build's ``loop`` over it is what the counter reads cost, which is not
the same in every build (70 to 130 ns per order here, 5 December): read differences between
builds to that precision.

    python -m tickguard.benchmarks.sections [--events N] [--repeat K] [--only NAME ...]
                                            [--without RULE_ID ...] [--json PATH|-]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tickguard.benchmarks._measure import machine_info, write_json
from tickguard.benchmarks.engine import (
    _engine_once, canonical_table, full_rulebook_gate, quote_workload, without_rules,
)
from tickguard.engine.layout import SECTION_SLOTS

__all__ = ["WORKLOADS", "main", "run_sections", "section_table"]

WORKLOADS = ("engine", "noop", "rulebook")
# the sections the loop's time is split into (engine/layout.py); gate and activity lie within
# requests and responses, so they are listed apart and not summed
_TOP = ("steps", "idle_exchange", "matching", "arrivals", "responses", "requests", "samples")
_INNER = ("gate", "activity")


def section_table(sections: dict[str, float], per: int) -> dict[str, float]:
    """A run's sections (Result.sections, ns) per order (``per``: the orders), with ``other``: the
    loop's time outside the named top-level sections."""
    if per <= 0:
        raise ValueError(f"section_table: per must be > 0 (the orders to divide by), got {per}")
    row = {name: sections[name] / per for name in SECTION_SLOTS}
    row["other"] = row["loop"] - sum(row[name] for name in _TOP)
    row["gate_calls"] = sections["gate_calls"] / per
    row["activity_calls"] = sections["activity_calls"] / per
    return row


def run_sections(events: int = 10**7, repeat: int = 5, only: tuple[str, ...] = WORKLOADS,
                 without: tuple[str, ...] = ()) -> dict[str, Any]:
    """Interleaved rounds of each workload; per workload the round with the least loop time, its
    sections per order (:func:`section_table`)."""
    unknown = sorted(set(only) - set(WORKLOADS))
    if unknown or not only:
        raise ValueError(f"run_sections: only must name some of {', '.join(WORKLOADS)}, got {list(only)}")
    if repeat < 1 or events < 1000:
        raise ValueError(f"run_sections: need repeat >= 1 and events >= 1000, got {repeat} and {events}")
    ev = quote_workload(events)
    table = canonical_table()
    gate = full_rulebook_gate(table)
    if without:
        gate = without_rules(gate, without)
    from tickguard.benchmarks.noop_risk import NoOpHooksGate

    risks = {"engine": None, "noop": NoOpHooksGate(gate.rulebook, source="no-op hooks"), "rulebook": gate}
    for name in only:  # compile (or load) each build outside the rounds
        _engine_once(ev[:1000], table, risks[name], sections=True)
        _engine_once(ev[:1000], table, risks[name])
    best: dict[str, Any] = {}
    plain: dict[str, float] = {}  # the build without the counter reads: what they cost
    for _ in range(repeat):
        for name in only:
            res = _engine_once(ev, table, risks[name], sections=True)
            if name not in best or res.sections["loop"] < best[name].sections["loop"]:
                best[name] = res
            run_s = _engine_once(ev, table, risks[name]).timings["run"]
            plain[name] = min(plain.get(name, run_s), run_s)
    per = len(best[only[0]].orders)
    rows = {name: section_table(res.sections, per) for name, res in best.items()}
    for name, row in rows.items():
        row["loop_plain"] = plain[name] * 1e9 / per
    return {"machine": machine_info(), "events": events, "repeat": repeat, "orders": per,
            "without": list(without), "ns_per_order": rows,
            "orders_per_workload": {name: len(res.orders) for name, res in best.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tickguard.benchmarks.sections",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10**7)
    ap.add_argument("--repeat", type=int, default=5, help="interleaved rounds (the best is kept)")
    ap.add_argument("--only", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    ap.add_argument("--without", nargs="+", default=[], metavar="RULE_ID",
                    help="leave these rules out of the rulebook (an ablation)")
    ap.add_argument("--json", help="write the figures as JSON to PATH ('-' for stdout)")
    ns = ap.parse_args(argv)
    out = run_sections(ns.events, ns.repeat, tuple(ns.only), tuple(ns.without))
    rows = out["ns_per_order"]
    names = list(rows)
    print(f"ns per order ({out['orders']} orders, {ns.events:,} events, "
          f"best of {ns.repeat} interleaved rounds)")
    head = f"{'section':<14}" + "".join(f"{n:>10}" for n in names)
    if "engine" in rows:
        head += "".join(f"{n + ' - eng':>16}" for n in names if n != "engine")
    print(head)
    for sec in ("loop_plain", "loop", *_TOP, "other", *_INNER, "gate_calls", "activity_calls"):
        line = f"{sec:<14}" + "".join(f"{rows[n][sec]:>10.1f}" for n in names)
        if "engine" in rows:
            line += "".join(f"{rows[n][sec] - rows['engine'][sec]:>+16.1f}" for n in names if n != "engine")
        print(line)
    if ns.json:
        write_json(ns.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
