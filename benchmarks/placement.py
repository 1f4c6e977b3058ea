"""The rulebook's cost on the canonical workload, averaged over where the loop's code sits.

One compile of a loop puts its machine code at one set of addresses, and that alone moves the
canonical run by up to ~4 % (5 December: identical copies of the same code, compiled under other
names, read up to ~4 ms apart of ~102; benchmarks/PERFORMANCE.md). benchmarks/engine.py times
one build per workload, so each of its runs reads one placement of each. This tool compiles
``--copies`` copies of each build (``Backtest(code_copy=k)``: the same source under another
module name; copy 0 is the usual build), each copy in a child process of its own, then times
them in ``--processes`` fresh children. Each child loads every copy from the cache, checks that
the copies of a build give the same result hash, runs ``--repeat`` rounds in which every copy of
every build runs once (the order rotated by one each round) and keeps each copy's best round.

Per child, a build's time is the median of its copies' best rounds, and the throughput the
rulebook loses is ``1 - engine / rulebook`` of those medians; the figure is the median over the
children, with their range. Each copy's own time is kept too: their spread is the placement's.

Builds: ``engine`` (pass-through gate) and ``rulebook`` (benchmarks/engine.py's relaxed default
rulebook), and with ``--specialize`` the same rulebook's shape-specialised gate.

    python -m tickguard.benchmarks.placement [--events N] [--copies K] [--processes P]
                                             [--repeat R] [--specialize] [--json PATH|-]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from typing import Any

from tickguard.benchmarks._measure import child_peak_rss, format_table, machine_info, write_json

__all__ = ["BUILDS", "compile_copies", "main", "run", "summarize", "time_copies"]

BUILDS = ("engine", "rulebook", "specialized")
_COMPILE_BODY = """
import sys
from tickguard.benchmarks.placement import compile_copies
result = compile_copies(int(sys.argv[1]), sys.argv[2].split(","))
"""
_TIME_BODY = """
import sys
from tickguard.benchmarks.placement import time_copies
result = time_copies(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split(","))
"""


def _gates(builds: list[str]) -> tuple[Any, dict[str, Any]]:
    """(the canonical instrument table, the risk argument of each build)."""
    from tickguard.benchmarks.engine import canonical_table, full_rulebook_gate

    table = canonical_table()
    gate = full_rulebook_gate(table)
    known = {"engine": None, "rulebook": gate, "specialized": dataclasses.replace(gate, specialize=True)}
    unknown = [b for b in builds if b not in known]
    if unknown:
        raise ValueError(f"placement: unknown builds {unknown}; choose from {list(BUILDS)}")
    return table, {b: known[b] for b in builds}


def compile_copies(code_copy: int, builds: list[str]) -> dict[str, float]:
    """Compile (or load) copy ``code_copy`` of each build: seconds per build. Runs in a child."""
    from tickguard.benchmarks.engine import _engine_once, quote_workload

    table, gates = _gates(builds)
    ev = quote_workload(2_000)
    return {b: _engine_once(ev, table, gates[b], code_copy=code_copy).timings["compile"] for b in builds}


def time_copies(events: int, copies: int, repeat: int, builds: list[str]) -> dict[str, Any]:
    """Every copy of every build on the canonical workload, rounds interleaved: each copy's best
    round (s, keyed ``build/copy``), the orders sent and each build's result hash. Runs in a child.

    Refuses copies of one build that disagree on the result hash, and builds that send other
    orders than the engine's (a denial would time other work)."""
    from tickguard.benchmarks.engine import _engine_once, quote_workload

    table, gates = _gates(builds)
    ev = quote_workload(events)
    runs = [(b, k) for b in builds for k in range(copies)]
    hashes: dict[str, str] = {}
    orders: dict[str, int] = {}
    best: dict[str, float] = {}
    for r in range(repeat):
        shift = r % len(runs)
        for b, k in runs[shift:] + runs[:shift]:
            res = _engine_once(ev, table, gates[b], code_copy=k)
            if hashes.setdefault(b, res.result_hash) != res.result_hash:
                raise RuntimeError(f"placement: copy {k} of the {b} build gave result hash "
                                   f"{res.result_hash[:12]}, its first run {hashes[b][:12]}: copies must "
                                   f"run the same code")
            orders[b] = len(res.orders)
            key = f"{b}/{k}"
            best[key] = min(best.get(key, float("inf")), res.timings["run"])
    if len(set(orders.values())) != 1:
        raise RuntimeError(f"placement: the builds sent different orders {orders}: a rule denied some, "
                           f"and the benchmark would time other work")
    return {"best_s": best, "orders": orders[builds[0]], "result_hash": hashes}


def _lost(engine_s: float, other_s: float) -> float:
    """The share of the engine's throughput another build loses: 1 - engine / other."""
    return 1.0 - engine_s / other_s


def summarize(children: list[dict[str, Any]], builds: list[str], copies: int) -> dict[str, Any]:
    """Per child, each build's median over its copies' best rounds, and each non-engine build's
    throughput lost against the engine's; then the median over children with the range, and the
    lost share copy by copy (copy k of a build against copy k of the engine, in the same child)."""
    if "engine" not in builds or len(builds) < 2:
        raise ValueError(f"placement: need the engine build and at least one other, got {builds}")
    per_child = []
    for child in children:
        med = {b: statistics.median(child["best_s"][f"{b}/{k}"] for k in range(copies)) for b in builds}
        lost = {b: _lost(med["engine"], med[b]) for b in builds if b != "engine"}
        per_copy = {b: [_lost(child["best_s"][f"engine/{k}"], child["best_s"][f"{b}/{k}"]) for k in range(copies)]
                    for b in builds if b != "engine"}
        per_child.append({"median_s": med, "lost": lost, "lost_per_copy": per_copy,
                          "best_s": child["best_s"]})
    figure = {}
    for b in builds:
        if b == "engine":
            continue
        values = [c["lost"][b] for c in per_child]
        figure[b] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return {"children": per_child, "lost": figure}


def run(events: int = 10**7, copies: int = 3, processes: int = 3, repeat: int = 5,
        specialize: bool = False) -> dict[str, Any]:
    for name, value, low in (("events", events, 1_000), ("copies", copies, 1), ("processes", processes, 1),
                             ("repeat", repeat, 1)):
        if value < low:
            raise ValueError(f"placement: {name} must be >= {low}, got {value}")
    builds = ["engine", "rulebook"] + (["specialized"] if specialize else [])
    compile_s = [child_peak_rss(_COMPILE_BODY, args=[str(k), ",".join(builds)]).result for k in range(copies)]
    children = [child_peak_rss(_TIME_BODY, args=[str(events), str(copies), str(repeat), ",".join(builds)]).result
                for _ in range(processes)]
    if len({c["orders"] for c in children}) != 1:
        raise RuntimeError(f"placement: the children sent {sorted({c['orders'] for c in children})} orders")
    return {"machine": machine_info(), "events": events, "copies": copies, "processes": processes,
            "repeat": repeat, "builds": builds, "orders": children[0]["orders"],
            "compile_s": compile_s, **summarize(children, builds, copies)}


def _report(fig: dict[str, Any]) -> str:
    builds, copies = fig["builds"], fig["copies"]
    head = [f"canonical workload, {fig['events']:,} events, {fig['orders']} orders: {copies} copies of "
            f"each build, best of {fig['repeat']} interleaved rounds, in {fig['processes']} processes (ms)"]
    rows = []
    for i, child in enumerate(fig["children"]):
        for b in builds:
            times = [1e3 * child["best_s"][f"{b}/{k}"] for k in range(copies)]
            lost = "" if b == "engine" else f"{100 * child['lost'][b]:.1f} %"
            per_copy = "" if b == "engine" else ", ".join(f"{100 * x:.1f}" for x in child["lost_per_copy"][b])
            rows.append([f"{i + 1} {b}", ", ".join(f"{t:.2f}" for t in times), f"{1e3 * child['median_s'][b]:.2f}",
                         lost, per_copy])
    table = format_table(["process, build", "copies' best rounds", "median", "lost (medians)",
                          "lost copy by copy (%)"], rows)
    tail = [f"{b}: {100 * v['median']:.1f} % of the engine's throughput lost (median of {fig['processes']}; "
            f"{100 * v['min']:.1f} to {100 * v['max']:.1f} %)" for b, v in fig["lost"].items()]
    return "\n".join(head + [table] + tail)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tickguard.benchmarks.placement", description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=10**7)
    ap.add_argument("--copies", type=int, default=3, help="copies of each build (copy 0 is the usual one)")
    ap.add_argument("--processes", type=int, default=3, help="timing processes, each loading every copy")
    ap.add_argument("--repeat", type=int, default=5, help="interleaved rounds per process (best kept)")
    ap.add_argument("--specialize", action="store_true", help="also the rulebook's shape-specialised gate")
    ap.add_argument("--json", help="write the figures as JSON to PATH ('-' for stdout)")
    args = ap.parse_args(argv)
    try:
        fig = run(args.events, args.copies, args.processes, args.repeat, args.specialize)
    except ValueError as exc:
        ap.error(str(exc))
    print(_report(fig))
    if args.json:
        write_json(args.json, fig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
