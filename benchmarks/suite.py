"""tickguard's benchmark suite: throughput, memory, compile time, reference loops and peers.

``run_suite(QUICK)`` (under a minute on two cores) or ``run_suite(FULL)`` (many minutes) returns
one JSON-able dict with the keys :data:`RESULT_KEYS`:

* ``workloads``: each workload of :mod:`tickguard.benchmarks.workloads` held in memory, run by
  the engine with each strategy: (a) ``none`` (idle), (b) ``ema`` (EMA crossover 50/200, +-1),
  (c) ``mm`` (market maker with resting limit orders, :mod:`tickguard.strategies.market_maker`,
  imported lazily), (d) ``mm_risk`` ((c) behind the full risk rulebook, given as ``gate=``).
  Constant 100 us entry and response latency; strategies trade instrument 0. ``events_per_s``
  is events / kernel time (``Result.timings["run"]``: compile excluded), ``wall_events_per_s``
  events / the whole ``run()`` call. A strategy that cannot run is a row whose ``status`` says
  why ("unavailable: ..."), never a number.
* ``reference``: on ``l1_quotes`` with (b), the engine against the bare numba loop
  (:func:`~tickguard.benchmarks.engine.bare_ema_loop_nb`) in the same process, and the pure-Python
  loop (:mod:`.pyloop`, timed on a prefix and extrapolated per event); the engine with zero
  latency must make exactly the bare loop's trades.
* ``scaling``: ``l1_quotes`` streamed from Parquet (written once into ``workdir``), one fresh
  process per size: seconds, events/s and peak RSS (VmHWM, see :mod:`._measure`).
* ``compile``: fresh interpreters; cold (empty numba and loop caches, full suite) and cached.
* ``peers``: :mod:`.peers` on prefixes of ``l1_quotes``, next to tickguard with zero latency and
  the bare loop on the same prefix, with the trade-count check.
* ``goals``: PASS / MISS / N/A lines (never assertions).

Figures from a shared machine are noisy: best of ``repeat`` where it is cheap, one run elsewhere.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tickguard.benchmarks._measure import best_of, child_peak_rss, machine_info
from tickguard.benchmarks.engine import CANONICAL_SPANS, bare_ema_loop_nb
from tickguard.benchmarks.peers import PEERS, run_peer
from tickguard.benchmarks.pyloop import measure_pyloop
from tickguard.benchmarks.workloads import SEED, WORKLOADS, l1_quotes, make_events, parquet_for

__all__ = ["FULL", "QUICK", "RESULT_KEYS", "STRATEGIES", "SuiteParams", "evaluate_goals", "run_suite"]

RESULT_KEYS = ("benchmark", "suite", "started_utc", "wall_s", "machine", "versions", "params", "notes",
               "workloads", "reference", "scaling", "compile", "peers", "goals")
STRATEGIES = {"none": "(a) none (idle)", "ema": "(b) EMA crossover 50/200", "mm": "(c) market maker",
              "mm_risk": "(d) market maker + risk rulebook"}
(FAST, SLOW), SIZE = CANONICAL_SPANS, 1.0  # the engine benchmark's canonical workload
LATENCY_NS = 100_000.0
_VERSIONED = ("llvmlite", "hftbacktest", "vectorbt", "backtesting", "backtrader")
#: the risk hook of strategy (d): keyword arguments for ``run()`` that put the full rulebook in the
#: loop, or a callable(InstrumentTable) returning them (the engine's risk API is still settling)
GateSpec = Any


@dataclass(frozen=True)
class SuiteParams:
    """What a suite runs; sizes are events."""

    name: str
    events: int  #: in-memory workload size
    workloads: tuple[tuple[str, tuple[str, ...]], ...]  #: (workload, strategy keys)
    repeat: int  #: best of, for the headline row and the bare loop
    scaling: tuple[int, ...]
    scaling_strategies: tuple[str, ...]
    pyloop_events: int
    peer_events: tuple[tuple[str, int], ...]
    compile_cold: bool
    chunk_rows: int = 1 << 18
    seed: int = SEED


QUICK = SuiteParams(
    "quick", 10**6, (("l1_quotes", tuple(STRATEGIES)), ("l1_trades", ("ema",)), ("l2_depth5", ("ema",))),
    repeat=3, scaling=(10**5, 10**6), scaling_strategies=("ema",), pyloop_events=10**5,
    peer_events=(("hftbacktest", 10**5), ("vectorbt", 10**5), ("backtesting", 2 * 10**4),
                 ("backtrader", 2 * 10**4)),
    compile_cold=False)
FULL = SuiteParams(
    "full", 10**7, tuple((w, tuple(STRATEGIES)) for w in WORKLOADS), repeat=3,
    scaling=(10**5, 10**6, 10**7, 10**8), scaling_strategies=("none", "ema"), pyloop_events=10**6,
    peer_events=(("hftbacktest", 10**6), ("vectorbt", 10**6), ("backtesting", 10**5), ("backtrader", 10**5)),
    compile_cold=True)


# --- strategies and one engine run ---------------------------------------------------------------


def _strategy(key: str, tick: float) -> tuple[Any, str | None]:
    """(NumbaStrategy, None) or (None, why it is unavailable)."""
    from tickguard.engine.strategy import NumbaStrategy

    if key == "none":
        from tickguard.engine.idle import idle_strategy_nb

        return NumbaStrategy(idle_strategy_nb, name="idle"), None
    if key == "ema":
        from tickguard.strategies.ema_crossover import ema_crossover

        return ema_crossover(instrument=0, fast=FAST, slow=SLOW, size=SIZE), None
    if key in ("mm", "mm_risk"):
        try:
            mm = importlib.import_module("tickguard.strategies.market_maker")
        except ModuleNotFoundError as exc:
            if exc.name in ("tickguard.strategies.market_maker", "tickguard.strategies", "tickguard"):
                return None, "unavailable: strategies.market_maker not installed"
            return None, f"unavailable: strategies.market_maker failed to import ({exc})"
        except ImportError as exc:
            return None, f"unavailable: strategies.market_maker failed to import ({exc})"
        factory = getattr(mm, "market_maker", None)
        if factory is None:
            return None, "unavailable: strategies.market_maker has no market_maker() factory"
        return factory(tick, instrument=0), None
    raise ValueError(f"unknown strategy {key!r}; use one of {sorted(STRATEGIES)}")


def _gate_kwargs(gate: GateSpec, instruments: Any) -> dict[str, Any]:
    spec = gate(instruments) if callable(gate) else gate
    if not isinstance(spec, dict):
        raise TypeError(f"gate must be a dict of run() keyword arguments or a callable(instruments) returning "
                        f"one, got {type(spec).__name__}: {spec!r}")
    return spec


def engine_once(data: Any, strategy: Any, instruments: Any, *, book_levels: int = 0,
                latency_ns: float = LATENCY_NS, chunk_rows: int | None = None,
                gate_kwargs: dict[str, Any] | None = None) -> tuple[Any, float]:
    """One ``run()`` with constant entry/response latency; returns (Result, wall seconds).
    In-memory data runs as one chunk unless ``chunk_rows`` is given."""
    from tickguard.engine.backtest import run
    from tickguard.engine.config import EngineConfig, Latency, LatencyConfig

    rows = chunk_rows or (len(data) + 1 if isinstance(data, np.ndarray) else 1 << 20)
    cfg = EngineConfig(latency=LatencyConfig(submit=Latency(entry_ns=latency_ns, response_ns=latency_ns)),
                       chunk_rows=rows, book_levels=book_levels)
    t0 = time.perf_counter()
    res = run(data, strategy, instruments=instruments, config=cfg, **(gate_kwargs or {}))
    return res, time.perf_counter() - t0


def _final_position(res: Any) -> float:
    f = res.fills[res.fills["instrument"] == 0]
    return float(f["position"][-1]) if len(f) else 0.0


def _measure_engine(events: np.ndarray, strategy: Any, instruments: Any, repeat: int, **kw: Any) -> dict[str, Any]:
    engine_once(events[:2000], strategy, instruments, **kw)  # compile or load the loop: not timed
    runs = [engine_once(events, strategy, instruments, **kw) for _ in range(repeat)]
    res = runs[0][0]
    run_s = min(r.timings["run"] for r, _ in runs)
    wall_s = min(w for _, w in runs)
    return {"status": "ok", "events": len(events), "repeat": repeat, "run_s": run_s, "wall_s": wall_s,
            "events_per_s": len(events) / run_s, "wall_events_per_s": len(events) / wall_s,
            "orders": int(len(res.orders)), "fills": int(len(res.fills)), "final_position": _final_position(res)}


def _workload_rows(p: SuiteParams, gate: GateSpec, say: Callable[[str], None]) -> list[dict[str, Any]]:
    rows = []
    for wname, keys in p.workloads:
        w = WORKLOADS[wname]
        say(f"workload {wname}: generating {p.events} events")
        events, table = make_events(w, p.events, p.seed)
        for key in keys:
            row: dict[str, Any] = {"workload": wname, "description": w.description, "strategy": key,
                                   "label": STRATEGIES[key], "book_levels": w.book_levels,
                                   "n_instruments": w.n_instruments, "latency_ns": LATENCY_NS}
            strat, why = _strategy(key, table[0].tick_size)
            if strat is not None and key == "mm_risk" and gate is None:
                strat, why = None, ("unavailable: the full risk rulebook is not wired into the engine yet "
                                    "(pass run_suite(gate=...) the run() arguments that load it)")
            if strat is None:
                rows.append({**row, "status": why, "events": p.events})
                continue
            say(f"  {wname} x {key}")
            gk = _gate_kwargs(gate, table) if key == "mm_risk" else None
            repeat = p.repeat if (wname, key) == ("l1_quotes", "ema") else 1
            try:
                rows.append({**row, **_measure_engine(events, strat, table, repeat, book_levels=w.book_levels,
                                                      gate_kwargs=gk)})
            except Exception as exc:  # one failing combination is a finding; the rest still run
                rows.append({**row, "status": f"failed: {type(exc).__name__}: {str(exc)[:300]}", "events": p.events})
        del events
    return rows


# --- reference loops -----------------------------------------------------------------------------


def _reference(p: SuiteParams, headline: dict[str, Any] | None, say: Callable[[str], None]) -> dict[str, Any]:
    say("reference loops")
    events = l1_quotes(p.events, p.seed)
    table = WORKLOADS["l1_quotes"].instruments()
    bare_ema_loop_nb(events[:1000], FAST, SLOW, SIZE)  # compile outside the timing
    bare = best_of(lambda: bare_ema_loop_nb(events, FAST, SLOW, SIZE), p.repeat)
    cash, pos, trades = bare.result
    strat, _ = _strategy("ema", 0.01)
    engine = headline or _measure_engine(events, strat, table, p.repeat)
    zero, _ = engine_once(events, strat, table, latency_ns=0.0)
    m = min(p.pyloop_events, len(events))
    py = measure_pyloop(events, m, fast=FAST, slow=SLOW, size=SIZE, extrapolate_to=len(events))
    same = bare_ema_loop_nb(events[:m], FAST, SLOW, SIZE)  # the bare loop on the prefix the Python loop ran
    bare_rate = len(events) / bare.best
    return {
        "workload": "l1_quotes", "strategy": "ema", "events": len(events),
        "bare_loop": {"loop": "bare numba loop", "seconds": bare.best, "seconds_all": list(bare.times),
                      "events_per_s": bare_rate, "trades": int(trades), "final_position": float(pos),
                      "final_cash": float(cash)},
        "engine": {"loop": "tickguard engine (100 us latency)", "seconds": engine["run_s"],
                   "events_per_s": engine["events_per_s"], "wall_events_per_s": engine["wall_events_per_s"],
                   "fills": engine["fills"]},
        "engine_zero_latency": {"fills": int(len(zero.fills)), "final_position": _final_position(zero),
                                "agrees_with_bare": len(zero.fills) == trades and _final_position(zero) == pos},
        "python_loop": {**py, "agrees_with_bare": (py["trades"], py["final_position"], py["final_cash"])
                        == (same[2], same[1], same[0])},
        "ratio_engine_to_bare": engine["events_per_s"] / bare_rate,
        "ratio_python_to_bare": py["events_per_s"] / bare_rate,
    }


# --- scaling and compile time (fresh processes) --------------------------------------------------


def _child_stream(path: str, key: str, chunk_rows: int) -> dict[str, Any]:
    """Run in a fresh process: stream ``path`` through the engine (called by the suite's child)."""
    table = WORKLOADS["l1_quotes"].instruments()
    strat, _ = _strategy(key, 0.01)
    res, wall = engine_once(path, strat, table, chunk_rows=chunk_rows)
    t = res.timings
    return {"events": res.n_events, "run_s": t["run"], "compile_s": t["compile"], "total_s": t["total"],
            "wall_s": wall, "fills": int(len(res.fills))}


def _child_compile() -> dict[str, Any]:
    strat, _ = _strategy("ema", 0.01)
    res, wall = engine_once(l1_quotes(1000), strat, WORKLOADS["l1_quotes"].instruments())
    return {"compile_s": res.timings["compile"], "wall_s": wall}


def _child_compile_other() -> dict[str, Any]:
    """A second strategy once the engine's kernels are cached: only its own loop compiles."""
    from tickguard.strategies.microprice import microprice

    res, wall = engine_once(l1_quotes(1000), microprice(), WORKLOADS["l1_quotes"].instruments())
    return {"compile_s": res.timings["compile"], "wall_s": wall}


_SETUP = "import sys\nfrom tickguard.benchmarks.suite import _child_stream\n"
_STREAM_BODY = "result = _child_stream(sys.argv[1], sys.argv[2], int(sys.argv[3]))\n"
_COMPILE_BODY = "from tickguard.benchmarks.suite import _child_compile\nresult = _child_compile()\n"
_COMPILE_OTHER_BODY = "from tickguard.benchmarks.suite import _child_compile_other\nresult = _child_compile_other()\n"


def _scaling(p: SuiteParams, workdir: Path, say: Callable[[str], None]) -> list[dict[str, Any]]:
    rows = []
    for n in p.scaling:
        t0 = time.perf_counter()
        path, written = parquet_for("l1_quotes", n, workdir, seed=p.seed, chunk_rows=p.chunk_rows)
        gen_s = time.perf_counter() - t0 if written else None
        for key in p.scaling_strategies:
            say(f"scaling: {n} events from Parquet, strategy {key} (fresh process)")
            mem = child_peak_rss(_STREAM_BODY, _SETUP, args=[str(path), key, str(p.chunk_rows)])
            r = mem.result
            if r["events"] != n:
                raise RuntimeError(f"streamed {r['events']} events from {path}, expected {n}")
            stream_s = r["total_s"] - r["compile_s"]
            rows.append({"workload": "l1_quotes", "strategy": key, "events": n, "source": "parquet",
                         "chunk_rows": p.chunk_rows, "file_bytes": path.stat().st_size, "generate_s": gen_s,
                         "run_s": r["run_s"], "stream_s": stream_s, "wall_s": r["wall_s"],
                         "events_per_s": n / r["run_s"], "stream_events_per_s": n / stream_s,
                         "peak_rss_bytes": mem.peak_bytes, "baseline_rss_bytes": mem.baseline_bytes,
                         "fills": r["fills"]})
    return rows


def _compile(p: SuiteParams, say: Callable[[str], None]) -> dict[str, Any]:
    out: dict[str, Any] = {"strategy": "ema", "cold_s": None, "cold_start_to_result_s": None,
                           "new_strategy_s": None}
    if p.compile_cold:
        say("compile: cold and cached, empty caches (fresh processes)")
        with tempfile.TemporaryDirectory(prefix="tickguard-cache-") as cache:
            env = {**os.environ, "NUMBA_CACHE_DIR": cache, "TICKGUARD_CACHE_DIR": os.path.join(cache, "loops")}
            cold = child_peak_rss(_COMPILE_BODY, env=env)
            warm = child_peak_rss(_COMPILE_BODY, env=env)
            other = child_peak_rss(_COMPILE_OTHER_BODY, env=env)
        out.update(cold_s=cold.result["compile_s"], cold_start_to_result_s=cold.seconds,
                   new_strategy_s=other.result["compile_s"], cache="fresh temporary cache")
    else:
        say("compile: cached (fresh process, the caches this run already filled)")
        warm = child_peak_rss(_COMPILE_BODY)
        out["cache"] = "default caches"
    out.update(cached_s=warm.result["compile_s"], cached_start_to_result_s=warm.seconds)
    return out


# --- peers ---------------------------------------------------------------------------------------


def _peers(p: SuiteParams, names: tuple[str, ...] | None, say: Callable[[str], None]) -> list[dict[str, Any]]:
    todo = [(n, k) for n, k in p.peer_events if names is None or n in names]
    if not todo:
        return []
    events = l1_quotes(max(k for _, k in todo), p.seed)
    table = WORKLOADS["l1_quotes"].instruments()
    strat, _ = _strategy("ema", 0.01)
    refs: dict[int, dict[str, Any]] = {}
    rows = []
    for name, n in todo:
        part = events[:n]
        if n not in refs:
            _, pos, trades = bare_ema_loop_nb(part, FAST, SLOW, SIZE)
            engine_once(part[:2000], strat, table, latency_ns=0.0)
            res, wall = engine_once(part, strat, table, latency_ns=0.0)
            refs[n] = {"bare_trades": int(trades), "bare_final_position": float(pos),
                       "tickguard_fills": int(len(res.fills)), "tickguard_events_per_s": n / res.timings["run"],
                       "tickguard_wall_events_per_s": n / wall}
        say(f"peer {name}: {n} events")
        row = {**run_peer(name, part, fast=FAST, slow=SLOW, size=SIZE), **refs[n]}
        ok = row["status"] == "ok"
        row["trades_agree"] = (ok and row["orders"] == row["bare_trades"] == row["tickguard_fills"]
                               and row["fills"] + row["pending_at_end"] == row["orders"]) if ok else None
        rows.append(row)
    return rows


# --- goals ---------------------------------------------------------------------------------------


def _goal(goal: str, target: str, measured: float | None, passed: bool | None, detail: str) -> dict[str, Any]:
    status = "N/A" if passed is None else ("PASS" if passed else "MISS")
    return {"goal": goal, "target": target, "measured": measured, "status": status, "detail": detail}


def evaluate_goals(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The suite's goals as PASS / MISS / N/A rows (they report; they never assert)."""
    ref = res.get("reference") or {}
    eng = ref.get("engine", {}).get("events_per_s")
    ratio = ref.get("ratio_engine_to_bare")
    ema = {r["events"]: r for r in res.get("scaling", []) if r["strategy"] == "ema"}
    idle = {r["events"]: r for r in res.get("scaling", []) if r["strategy"] == "none"}
    big = ema[max(ema)] if ema else None
    m6, m8 = idle.get(10**6), idle.get(10**8)
    # flatness on the idle run: what streaming costs; the EMA run's records grow with its trades
    flat = m8["peak_rss_bytes"] / m6["peak_rss_bytes"] if m6 and m8 else None
    e8 = ema.get(10**8)
    gib = e8["peak_rss_bytes"] / 2**30 if e8 else None
    return [
        _goal("in-memory throughput, l1_quotes + (b)", ">= 100 M events/s", eng,
              None if eng is None else eng >= 100e6, "kernel time (compile excluded)"),
        _goal("engine vs bare loop, same run", ">= 25 %", ratio, None if ratio is None else ratio >= 0.25,
              "engine kernel events/s / bare numba loop events/s"),
        _goal("streaming from Parquet", ">= 20 M events/s", big and big["stream_events_per_s"],
              None if big is None else big["stream_events_per_s"] >= 20e6,
              f"read + run, compile excluded, at {big['events'] if big else '-'} events"),
        _goal("flat memory at 10^8 events, no strategy", "peak RSS(10^8) <= 1.2 x peak RSS(10^6)", flat,
              None if flat is None else flat <= 1.2,
              "needs scaling sizes 10^6 and 10^8 (full suite)" if flat is None else "fresh process per size"),
        _goal("10^8 events under 1 GiB, EMA (records included)", "peak RSS <= 1 GiB", gib,
              None if gib is None else gib <= 1.0,
              "needs scaling size 10^8 (full suite)" if gib is None else
              f"GiB; {e8['fills']} fills held in memory as records"),
    ]


# --- the suite -----------------------------------------------------------------------------------


def _versions() -> dict[str, str | None]:
    out = {}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _default_gate(instruments: Any) -> dict[str, Any]:
    """Strategy (d)'s risk layer: the shipped default rulebook in the loop."""
    from tickguard.risk import RiskGate

    return {"risk": RiskGate.load(instruments=instruments)}


def run_suite(params: SuiteParams = QUICK, *, workdir: str | os.PathLike[str] | None = None,
              gate: GateSpec = None, peers: tuple[str, ...] | None = None,
              progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the suite; returns the JSON-able result (:data:`RESULT_KEYS`).

    ``workdir``: cache folder for the Parquet files (kept; default a temporary folder, removed);
    ``gate``: the risk hook of strategy (d): a dict of keyword arguments for
    :func:`~tickguard.engine.backtest.run` that put the full rulebook in the loop, or a callable
    taking the InstrumentTable and returning that dict (default: the shipped rulebook,
    ``tickguard.risk.RiskGate.load(instruments=table)``);
    ``peers``: names from :data:`~tickguard.benchmarks.peers.PEERS` to run (None: all).
    """
    if not isinstance(params, SuiteParams):
        raise TypeError(f"params must be a SuiteParams (QUICK, FULL or dataclasses.replace of one), "
                        f"got {type(params).__name__}")
    if peers is not None and not set(peers) <= set(PEERS):
        raise ValueError(f"peers: unknown {sorted(set(peers) - set(PEERS))}; use names from {sorted(PEERS)}")
    emit = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        emit(f"[{time.perf_counter() - t0:6.1f} s] {msg}")

    res: dict[str, Any] = {
        "benchmark": "tickguard.benchmarks.suite", "suite": params.name,
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(), "versions": _versions(), "params": dataclasses.asdict(params),
        "notes": ["figures from a shared machine are noisy; compare within one run",
                  f"latency {LATENCY_NS / 1e3:g} us entry and response unless stated; strategies trade "
                  "instrument 0; events/s = events / kernel time unless named wall or stream"],
    }
    if gate is None:
        gate = _default_gate
    res["workloads"] = _workload_rows(params, gate, say)
    headline = next((r for r in res["workloads"] if (r["workload"], r["strategy"]) == ("l1_quotes", "ema")
                     and r["status"] == "ok" and r["events"] == params.events), None)
    res["reference"] = _reference(params, headline, say)
    with tempfile.TemporaryDirectory(prefix="tickguard-bench-") as tmp:
        folder = Path(workdir) if workdir is not None else Path(tmp)
        res["scaling"] = _scaling(params, folder, say)
    res["compile"] = _compile(params, say)
    res["peers"] = _peers(params, peers, say)
    res["goals"] = evaluate_goals(res)
    res["wall_s"] = time.perf_counter() - t0
    return res
