"""Engine throughput against a bare numba loop, in one process, plus compile times.

Workload (the engine issue's canonical one): N seeded L1 quote events for one instrument, a
random-walk mid on a 0.01 grid with a one-tick spread; EMA-crossover momentum on the mid
(fast 50, slow 200 events) trading +-1 lot with market orders; constant 100 us entry and response
latency; pass-through risk gate. The bare loop does only that strategy plus cash/position
accounting over the same structured array (fills at the touch, no latency, no records): it is
the ceiling the engine is measured against, and both run here so the ratio holds on a noisy box.
The same engine run with orders rare (EMA spans 5 000 / 20 000 events, ~600 orders against
~63 000) splits the engine's time into a cost per event and a cost per order beyond it.

Compile time is measured in fresh interpreters: cold (empty numba and loop caches; the best of
three, each in its own fresh cache, all three reported) and cached.

    python -m tickguard.benchmarks.engine [--events N] [--repeat K] [--json PATH|-]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from typing import Any

import numpy as np
from numba import njit

from tickguard.benchmarks._measure import best_of, child_peak_rss, format_table, machine_info, write_json
from tickguard.data.schema import KIND_QUOTE, InstrumentTable, empty_events
from tickguard.engine.layout import M_ASK, M_BID, M_MID, M_NF, M_TS_QUOTE
from tickguard.risk.pretrade import pretrade_nb

__all__ = ["bare_ema_loop_nb", "depth_workload", "gate_inputs", "gate_ns_per_order", "main", "quote_workload", "run"]


def quote_workload(n: int, seed: int = 7) -> np.ndarray:
    """``n`` L1 quotes, one instrument, 1-1000 us apart, 50 us feed latency."""
    rng = np.random.default_rng(seed)
    ev = empty_events(n)
    ts = 1_704_205_800_000_000_000 + np.cumsum(rng.integers(1_000, 1_000_000, n))
    ev["ts_exch"] = ts
    ev["ts_local"] = ts + 50_000
    ev["kind"] = KIND_QUOTE
    mid = np.round(100.0 + np.cumsum(rng.choice([-0.01, 0.0, 0.01], n)), 2)
    ev["bid_px"] = mid - 0.005
    ev["ask_px"] = mid + 0.005
    ev["bid_sz"] = 100.0
    ev["ask_sz"] = 100.0
    return ev


def canonical_table() -> InstrumentTable:
    """The canonical workload's instrument table: ``SYN``, ticks of 0.005 (the quotes sit half a
    cent either side of a mid on the cent grid), lots of 1."""
    return InstrumentTable.single("SYN", tick_size=0.005, lot_size=1)


def depth_workload(n: int, seed: int = 7) -> tuple[np.ndarray, InstrumentTable]:
    """``n`` synthetic events with 5 levels of depth rows, and their instrument table: data on
    which the loop is built with the L2 book (engine/codegen.py)."""
    from tickguard.data.synth import SynthConfig, synthesize

    return synthesize(n, seed=seed, config=SynthConfig(depth_levels=5))


@njit(cache=True)
def bare_ema_loop_nb(events, fast, slow, size):
    """The strategy and accounting alone: returns (final cash, final position, trades)."""
    a_fast = 2.0 / (fast + 1.0)
    a_slow = 2.0 / (slow + 1.0)
    b_fast = 1.0 - a_fast  # the strategy's recursion, its arithmetic (strategies/ema_crossover.py)
    b_slow = 1.0 - a_slow
    ema_f = 0.0
    ema_s = 0.0
    cash = 0.0
    pos = 0.0
    trades = 0
    for i in range(events.shape[0]):
        ev = events[i]
        mid = 0.5 * (ev["bid_px"] + ev["ask_px"])
        if i == 0:
            ema_f = mid
            ema_s = mid
        else:
            ema_f = b_fast * ema_f + a_fast * mid
            ema_s = b_slow * ema_s + a_slow * mid
        if i + 1 < slow:
            continue
        target = size if ema_f > ema_s else -size
        diff = target - pos
        if diff != 0.0:
            price = ev["ask_px"] if diff > 0.0 else ev["bid_px"]
            cash -= diff * price
            pos = target
            trades += 1
    return cash, pos, trades


# EMA spans (events) of the canonical workload, and of the same run with orders rare (~600 in 10^7
# events, against ~63 000): what the engine's time is per event, and per order beyond that
CANONICAL_SPANS = (50.0, 200.0)
RARE_ORDER_SPANS = (5_000.0, 20_000.0)


def _engine_once(events: np.ndarray, table: InstrumentTable, risk: Any = None,
                 spans: tuple[float, float] = CANONICAL_SPANS, sections: bool = False,
                 code_copy: int = 0) -> Any:
    """One canonical backtest (``sections``: the build that times its sections; ``code_copy``: a
    copy of the build, compiled again elsewhere; both Backtest's)."""
    from tickguard.engine.backtest import run as run_backtest
    from tickguard.engine.config import EngineConfig, Latency, LatencyConfig
    from tickguard.strategies.ema_crossover import ema_crossover

    lat = Latency(entry_ns=100_000, response_ns=100_000)
    cfg = EngineConfig(latency=LatencyConfig(submit=lat), chunk_rows=len(events) + 1)
    return run_backtest(events, ema_crossover(fast=spans[0], slow=spans[1], size=1), instruments=table,
                        config=cfg, risk=risk, sections=sections, code_copy=code_copy)


def full_rulebook_gate(table: InstrumentTable) -> Any:
    """The shipped default rulebook (every pre-trade control and kill-switch trigger), with the two
    rules that would refuse the canonical strategy's legitimate flow relaxed: it sends the same
    one-lot market order again at every crossover (repeat-throttle: 20 per 10 s -> 1 000, within
    the 1 024 orders its memory holds: a threshold above that could never deny, and the rulebook
    refuses it) and may do so twice within 50 ms (no-duplicates: window 50 ms -> 1 us). The
    benchmark measures what evaluating the rules costs, not a strategy fighting them."""
    from tickguard.risk import RiskGate
    from tickguard.risk.layout import R_THRESHOLD, R_WINDOW

    gate = RiskGate.load(instruments=table)
    rules = gate.rulebook.rules.copy()
    rules[gate.rulebook.index("repeat-throttle"), R_THRESHOLD] = 1_000.0
    rules[gate.rulebook.index("no-duplicates"), R_WINDOW] = 1_000.0
    return RiskGate(dataclasses.replace(gate.rulebook, rules=rules), source="default, relaxed for EMA")


def without_rules(gate: Any, rule_ids: list[str] | tuple[str, ...]) -> Any:
    """The same RiskGate with the rules named ``rule_ids`` left out (an ablation: what those rules
    cost, `python -m tickguard.benchmarks.instructions --without ID ...`)."""
    from tickguard.risk import RiskGate

    rb = gate.rulebook
    drop = set(rule_ids)
    unknown = sorted(drop - set(rb.ids))
    if unknown:
        raise ValueError(f"without_rules: no rule {', '.join(map(repr, unknown))} in the rulebook; "
                         f"its rule ids are {', '.join(rb.ids)}")
    keep = [k for k, rule_id in enumerate(rb.ids) if rule_id not in drop]

    def rows(names: tuple) -> tuple:
        return tuple(names[k] for k in keep) if names else names

    sub = dataclasses.replace(rb, rules=rb.rules[keep].copy(), ids=rows(rb.ids), metrics=rows(rb.metrics),
                              actions=rows(rb.actions), scopes=rows(rb.scopes),
                              descriptions=rows(rb.descriptions), params=rows(rb.params))
    return RiskGate(sub, source=f"{gate.source} without {', '.join(rule_ids)}")


# not cached: numba keys a cached function on its own file only, so after an edit to risk/ a
# cached copy kept the old gate's code inlined, against the new state layout (it crashed)
@njit(cache=False)
def _gate_calls_nb(n, req, mkt, pos, orders, working, mult, rules, rstate, ks):
    passed = 0
    for i in range(n):
        now = i * 100_000_000
        mkt[0, M_TS_QUOTE] = float(now)  # a fresh quote, as in the loop (else stale-quote denies)
        req[0]["side"] = 1 if i % 2 == 0 else -1  # the EMA's flow: alternating one-lot market orders
        passed += pretrade_nb(req[0], now, mkt, pos, orders, working, mult, rules, rstate, ks) == 0
    return passed


def gate_inputs(gate: Any) -> tuple[np.ndarray, tuple[Any, ...]]:
    """(request, the market, position, order and rule arguments) for ``_gate_calls_nb``: a one-lot
    market order on one instrument quoted 99.99 / 100.01, flat, no open orders."""
    from tickguard.engine.records import ACTION_SUBMIT, LOCAL_ORDER_DTYPE, OT_MARKET, REQUEST_DTYPE

    req = np.zeros(1, REQUEST_DTYPE)
    req[0]["action"], req[0]["order_type"], req[0]["price"], req[0]["qty"] = ACTION_SUBMIT, OT_MARKET, np.nan, 1.0
    mkt = np.zeros((1, M_NF))
    mkt[0, [M_BID, M_ASK, M_MID, M_TS_QUOTE]] = 99.99, 100.01, 100.0, 0.0
    return req, (mkt, np.zeros(1), np.zeros(1, LOCAL_ORDER_DTYPE), np.zeros(0, np.int64), np.ones(1),
                 gate.rules)


def gate_ns_per_order(gate: Any, n: int = 200_000) -> float:
    """Nanoseconds per pre-trade check of ``gate`` (a RiskGate): one instrument, one order every
    100 ms of simulated time (the canonical workload sends one per ~80 ms), no open orders, every
    order passing (as the canonical flow does; a denial takes another path, so a figure timed on
    denials says nothing about the loop's cost: refused)."""
    req, args = gate_inputs(gate)
    _gate_calls_nb(10, req, *args, *gate.new_state(1))  # compile outside the timing

    def once() -> None:
        passed = _gate_calls_nb(n, req, *args, *gate.new_state(1))
        if passed != n:
            raise RuntimeError(f"gate_ns_per_order: the gate denied {n - passed} of {n} orders; "
                               "the timing is meant for orders that pass (relax the rule)")
    return best_of(once, 5).best / n * 1e9


# The gate alone, in a fresh interpreter. Run twice on one cache: the first run compiles
# pretrade_nb in-process, so LLVM may inline the gate into the timing loop; the second loads it
# from the cache and makes a real call, as the event loop does (the loop never inlines it). The
# timing loop itself, _gate_calls_nb, compiles in every run (not cached, see there). Four runs
# on one cache read 128, 149, 144, 146 ns: both figures are reported.
_GATE_BODY = """
from tickguard.benchmarks.engine import canonical_table, full_rulebook_gate, gate_ns_per_order
result = {"ns": gate_ns_per_order(full_rulebook_gate(canonical_table()))}
"""
_COMPILE_BODY = """
from tickguard.benchmarks.engine import canonical_table, quote_workload, _engine_once
import time
t = time.perf_counter()
r = _engine_once(quote_workload(1000), canonical_table())
result = {"wall_s": time.perf_counter() - t, "compile_s": r.timings["compile"]}
"""
# The same strategy on data with depth rows (the synthetic generator's L2 levels): the loop is
# then built with the L2 book's upkeep (engine/codegen.py), which the canonical L1 workload
# leaves out, so an L2 user's first run compiles more; reported beside it, one fresh cache.
_COMPILE_DEPTH_BODY = """
from tickguard.benchmarks.engine import _engine_once, depth_workload
from tickguard.data.schema import KIND_DEPTH
ev, table = depth_workload(1000)
r = _engine_once(ev, table)
result = {"compile_s": r.timings["compile"], "depth_rows": int(((ev["kind"] & KIND_DEPTH) != 0).sum())}
"""
# The LLVM IR numba generates for that cold compile, counted in one more fresh cache (the count
# itself costs time, so not in a timed run): unlike seconds on this VM, it does not move between
# runs, so it shows what a change to the kernels does to the compile's work.
_IR_BODY = """
from numba.core import codegen
from tickguard.benchmarks.engine import canonical_table, quote_workload, _engine_once
sizes = {}
_add = codegen.CPUCodeLibrary.add_ir_module
def _counting(self, ir_module):
    sizes[self.name] = sizes.get(self.name, 0) + len(str(ir_module))
    return _add(self, ir_module)
codegen.CPUCodeLibrary.add_ir_module = _counting
_engine_once(quote_workload(1000), canonical_table())
result = {"total": sum(sizes.values()), "loop": sizes.get("run_chunk_nb", 0), "libraries": len(sizes)}
"""
# A second strategy in a fresh interpreter once the engine's own kernels are cached: what a quant
# waits for after editing a strategy (only its loop compiles).
_COMPILE_OTHER_BODY = """
from tickguard.benchmarks.engine import canonical_table, quote_workload
from tickguard.engine.backtest import run
from tickguard.strategies.microprice import microprice
r = run(quote_workload(1000), microprice(), instruments=canonical_table())
result = {"compile_s": r.timings["compile"]}
"""


COLD_COMPILE_RUNS = 3


def _cache_env(cache: str) -> dict[str, str]:
    """The environment of a child interpreter whose numba cache and generated loops live in ``cache``."""
    return {**os.environ, "NUMBA_CACHE_DIR": cache, "TICKGUARD_CACHE_DIR": os.path.join(cache, "loops")}


def run(events: int = 10**7, repeat: int = 3) -> dict[str, Any]:
    ev = quote_workload(events)
    table = canonical_table()
    bare_ema_loop_nb(ev[:1000], *CANONICAL_SPANS, 1.0)  # compile outside the timing
    _engine_once(ev[:1000], table)
    gate = full_rulebook_gate(table)
    _engine_once(ev[:1000], table, gate)
    # imported here: engine/gate.py compiles a hook on import, which the cold-compile children
    # (which import this module before their timer) must not find already compiled
    from tickguard.benchmarks.noop_risk import NoOpHooksGate

    noop = NoOpHooksGate(gate.rulebook, source="full rulebook, no-op hooks")
    # the same rulebook with the pre-trade gate written for its shape (opt-in, risk/gate_codegen.py)
    special = dataclasses.replace(gate, specialize=True)
    _engine_once(ev[:1000], table, special)
    _engine_once(ev[:1000], table, noop)
    # Interleaved rounds: this box's speed drifts by tens of percent within a minute, so timing
    # all bare runs, then all engine runs, then all rulebook runs biased the ratios by the drift.
    bare_times: list[float] = []
    engine_runs, risk_runs, noop_runs, special_runs, rare_runs = [], [], [], [], []
    for _ in range(repeat):
        bare = best_of(lambda: bare_ema_loop_nb(ev, *CANONICAL_SPANS, 1.0), 1)
        bare_times.append(bare.best)
        engine_runs.append(_engine_once(ev, table))
        risk_runs.append(_engine_once(ev, table, gate))
        noop_runs.append(_engine_once(ev, table, noop))
        special_runs.append(_engine_once(ev, table, special))
        rare_runs.append(_engine_once(ev, table, spans=RARE_ORDER_SPANS))
    bare_s = min(bare_times)
    engine_times = [r.timings["run"] for r in engine_runs]
    risk_times = [r.timings["run"] for r in risk_runs]
    noop_times = [r.timings["run"] for r in noop_runs]
    special_times = [r.timings["run"] for r in special_runs]
    special_s = min(special_times)
    engine_s, risk_s, noop_s = min(engine_times), min(risk_times), min(noop_times)
    total_s = min(r.timings["total"] - r.timings["compile"] for r in engine_runs)
    rare_times = [r.timings["run"] for r in rare_runs]
    rare_s = min(rare_times)
    extra_orders = len(engine_runs[0].orders) - len(rare_runs[0].orders)
    # the cold compile three times, each in a fresh cache: one sample moved by ±20 % with the VM
    colds = []
    for _ in range(COLD_COMPILE_RUNS - 1):
        with tempfile.TemporaryDirectory() as cache:
            colds.append(child_peak_rss(_COMPILE_BODY, env=_cache_env(cache)))
    with tempfile.TemporaryDirectory() as cache:
        env = _cache_env(cache)
        colds.append(child_peak_rss(_COMPILE_BODY, env=env))
        warm = child_peak_rss(_COMPILE_BODY, env=env)
        other = child_peak_rss(_COMPILE_OTHER_BODY, env=env)
        gate_fresh = child_peak_rss(_GATE_BODY, env=env)
        gate_cached = child_peak_rss(_GATE_BODY, env=env)
    with tempfile.TemporaryDirectory() as cache:
        ir = child_peak_rss(_IR_BODY, env=_cache_env(cache)).result
    with tempfile.TemporaryDirectory() as cache:
        depth = child_peak_rss(_COMPILE_DEPTH_BODY, env=_cache_env(cache)).result
    cold_s = [c.result["compile_s"] for c in colds]
    cold = colds[int(np.argmin(cold_s))]
    return {
        "machine": machine_info(),
        "events": events,
        "bare_loop_events_per_s": events / bare_s,
        "engine_events_per_s": events / engine_s,
        "ratio_engine_to_bare": bare_s / engine_s,
        "engine_end_to_end_events_per_s": events / total_s,
        # the engine's time split: per event with orders rare (the same run, EMA spans
        # RARE_ORDER_SPANS), and per order beyond that (the canonical run's extra time over it,
        # per extra order; everything an order brings: the request, the exchange's wake-up,
        # the fill, the response and its callback; the rare run's exchange catches up every row
        # too, so that catch-up counts per event)
        "engine_rare_orders_events_per_s": events / rare_s,
        "engine_rare_orders_ns_per_event": 1e9 * rare_s / events,
        "engine_orders": len(engine_runs[0].orders),
        "engine_rare_orders_orders": len(rare_runs[0].orders),
        "engine_ns_per_order": 1e9 * (engine_s - rare_s) / extra_orders if extra_orders > 0 else float("nan"),
        "engine_per_order_share": (engine_s - rare_s) / engine_s,
        "engine_with_rulebook_events_per_s": events / risk_s,
        "rulebook_cost": risk_s / engine_s - 1.0,  # the extra time, a share of the engine's
        # the measure ("cost <= 15 % of engine throughput"): the share of the engine's
        # events per second lost, 1 - rulebook/engine throughput (a time cost c loses c / (1 + c))
        "rulebook_throughput_loss": 1.0 - engine_s / risk_s,
        # the same from each round's adjacent pair of runs: a second estimate, less exposed to drift
        "rulebook_cost_paired_median": float(np.median([r / e - 1.0 for r, e in zip(risk_times, engine_times)])),
        # the same rulebook's rows through hooks that do nothing: the kill switch's structure alone
        "noop_hooks_events_per_s": events / noop_s,
        "noop_hooks_cost": noop_s / engine_s - 1.0,
        "noop_hooks_cost_paired_median": float(np.median([r / e - 1.0 for r, e in zip(noop_times, engine_times)])),
        # The no-op hooks run the engine's per-event code and more, so their best round cannot
        # truly beat the engine's: when it does, every engine round read slow, and the engine's
        # figure and the rulebook's cost against it are this VM's noise (3 December: 13.2 % in
        # such a run, 22-23 % in the runs around it)
        "engine_best_suspect": bool(noop_s < engine_s),
        # the gate written per rulebook shape (RiskGate(specialize=True)): same records, less work
        "rulebook_specialized_events_per_s": events / special_s,
        "rulebook_specialized_throughput_loss": 1.0 - engine_s / special_s,
        # every round's seconds, in run order, so the spread behind each best-of is visible
        "seconds_per_round": {"bare": bare_times, "engine": engine_times, "rulebook": risk_times,
                              "noop_hooks": noop_times, "rulebook_specialized": special_times,
                              "engine_rare_orders": rare_times},
        "rulebook_gate_ns_per_order": gate_cached.result["ns"],  # a call, as in the loop
        "rulebook_gate_ns_per_order_compiled_in_process": gate_fresh.result["ns"],  # may be inlined
        "rulebook_risk_events": int(len(risk_runs[0].risk_events)),
        "rulebook_fills": int(len(risk_runs[0].fills)),
        "engine_fills": int(len(engine_runs[0].fills)),
        "bare_trades": int(bare.result[2]),
        "compile_cold_s": min(cold_s),  # the best of the fresh-cache runs; all of them below
        "compile_cold_s_runs": cold_s,
        # one fresh cache, data with depth rows: the loop with the L2 book's upkeep
        "compile_cold_depth_data_s": depth["compile_s"],
        "compile_ir_bytes": ir["total"],  # LLVM IR text numba generated for the cold compile
        "compile_ir_bytes_loop": ir["loop"],
        "compile_libraries": ir["libraries"],
        "compile_cached_s": warm.result["compile_s"],
        "compile_new_strategy_s": other.result["compile_s"],
        "start_to_result_cold_s": cold.seconds,
        "start_to_result_cached_s": warm.seconds,
        "engine_peak_rss_bytes_cold_child": cold.peak_bytes,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tickguard.benchmarks.engine", description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10**7)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="write the figures as JSON to PATH ('-' for stdout)")
    ns = ap.parse_args(argv)
    t0 = time.perf_counter()
    out = run(ns.events, ns.repeat)
    rows = [
        ["bare numba loop", f"{out['bare_loop_events_per_s'] / 1e6:.1f} M/s", "1.00"],
        ["engine (EMA, latency, records)", f"{out['engine_events_per_s'] / 1e6:.1f} M/s",
         f"{out['ratio_engine_to_bare']:.3f}"],
        ["  end to end (+ input hash, chunking)", f"{out['engine_end_to_end_events_per_s'] / 1e6:.1f} M/s",
         f"{out['engine_end_to_end_events_per_s'] / out['bare_loop_events_per_s']:.3f}"],
    ]
    print(format_table(["workload", "events/s", "ratio to bare"], rows))
    print(f"events {out['events']}, engine fills {out['engine_fills']}, bare trades {out['bare_trades']}")
    print(f"the engine's time, split: {out['engine_rare_orders_ns_per_event']:.2f} ns per event with "
          f"orders rare ({out['engine_rare_orders_events_per_s'] / 1e6:.1f} M/s, EMA "
          f"{RARE_ORDER_SPANS[0]:g}/{RARE_ORDER_SPANS[1]:g}: {out['engine_rare_orders_orders']} orders), "
          f"and {out['engine_ns_per_order']:.0f} ns per order beyond that ({out['engine_orders']} orders: "
          f"{out['engine_per_order_share']:.0%} of the engine's time)")
    print(f"full rulebook in the loop: {out['engine_with_rulebook_events_per_s'] / 1e6:.1f} M/s, "
          f"{out['rulebook_throughput_loss']:.1%} below the engine's throughput (goal <= 15 %), "
          f"{out['rulebook_cost']:.1%} more time; {out['rulebook_risk_events']} "
          f"risk events, {out['rulebook_fills']} fills; the gate alone in a tight loop: "
          f"{out['rulebook_gate_ns_per_order']:.0f} ns per order called as the loop calls it "
          f"(from the cache), {out['rulebook_gate_ns_per_order_compiled_in_process']:.0f} ns when "
          "compiled in the same process (LLVM may inline it)")
    print(f"  of which the kill switch's structure (same rows, hooks that do nothing, no wake-ups): "
          f"{out['noop_hooks_events_per_s'] / 1e6:.1f} M/s, cost {out['noop_hooks_cost']:.1%} "
          f"(median of pairs {out['noop_hooks_cost_paired_median']:.1%})")
    print(f"  with the gate and activity monitor written for the rulebook's shape (specialize=True, opt-in): "
          f"{out['rulebook_specialized_events_per_s'] / 1e6:.1f} M/s, "
          f"{out['rulebook_specialized_throughput_loss']:.1%} below the engine's throughput")
    print("  (each build compiled once: one code placement each, which alone moves these shares by up to "
          "~4 points; python -m tickguard.benchmarks.placement averages over copies of each build)")
    if out["engine_best_suspect"]:
        print("  NOTE: the no-op hooks' best round beat the engine's, which runs less per event: every "
              "engine round read slow, so the engine's figure and the rulebook's cost against it are "
              "the VM's noise in this run; rerun (more --repeat) before quoting them")
    rounds = out["seconds_per_round"]
    print(f"spread over {len(rounds['engine'])} interleaved rounds: engine "
          f"{out['events'] / max(rounds['engine']) / 1e6:.1f}-{out['engine_events_per_s'] / 1e6:.1f} M/s; rulebook "
          f"cost from each round's pair, median {out['rulebook_cost_paired_median']:.1%}")
    runs = ", ".join(f"{x:.1f}" for x in out["compile_cold_s_runs"])
    print(f"compile: cold {out['compile_cold_s']:.1f} s (best of {runs}), a new strategy with the "
          f"engine cached {out['compile_new_strategy_s']:.1f} s, cached {out['compile_cached_s']:.2f} s "
          f"(fresh interpreter, start to result: cold {out['start_to_result_cold_s']:.1f} s, "
          f"cached {out['start_to_result_cached_s']:.1f} s)")
    print(f"  cold on data with depth rows (the loop keeps the L2 book; one fresh cache): "
          f"{out['compile_cold_depth_data_s']:.1f} s")
    print(f"  LLVM IR generated by the cold compile: {out['compile_ir_bytes'] / 1e6:.2f} MB in "
          f"{out['compile_libraries']} functions, the loop {out['compile_ir_bytes_loop'] / 1e6:.2f} MB "
          "(the same in every run: the compile's work, free of the VM's noise)")
    print(f"benchmark wall time {time.perf_counter() - t0:.0f} s")
    if ns.json:
        write_json(ns.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
