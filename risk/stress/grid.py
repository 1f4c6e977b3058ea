"""Stress grids on Dask: every cell one real engine run, results written as they arrive, resumable.

``run_grid("stress.toml")`` expands the grid (:mod:`.grid_config`) into cells, skips the cells
whose result file already exists in ``OUT/cells/`` (a killed grid resumes where it stopped), and
sends the rest to a Dask cluster: a :class:`distributed.LocalCluster` sized to the machine (one
single-threaded worker process per core) unless ``client=`` names an existing one (a ``Client`` or
a scheduler address). Each finished cell is written at once, atomically (temp file + rename), as
``OUT/cells/KEY.parquet`` (``KEY.failed.parquet`` when it failed: failed cells run again on the
next start). At the end ``OUT/results.parquet`` holds one row per cell (columns: :data:`ROW_SCHEMA`)
and ``OUT/summary.json`` the counts, the grid hash and the wall time.

A cell's row (money in the quote currency, times int64 ns UTC):

* ``pnl`` final equity - initial cash; ``max_drawdown`` fraction of the running peak (>= 0) and
  ``max_drawdown_abs`` in currency (:func:`tickguard.reports.metrics.max_drawdown`, initial cash first);
* ``var_99`` / ``es_99``: historical 99 % VaR/ES (positive losses, currency) of the PnL increments
  between equity samples (:mod:`tickguard.risk.var`); null with ``var_note`` saying why when there
  are fewer than 100 increments (the 1 % tail would hold no observation);
* ``ks_state``: the kill-switch state at the end (null without a rulebook); ``ks_first_ts``,
  ``ks_first_rule``, ``ks_first_state``: its first transition (null if none);
* ``ring_overflows``: JSON ``{rule id: entries still inside its window that its full ring dropped}``
  (``Result.risk_ring_overflows``; ``{}`` when none, null without a rulebook): those rules judged
  shorter windows than their rows say, which a worker's warning alone would leave in its log;
* ``n_denied``: orders the risk gate refused; ``worst_fill_bps``: the most adverse fill,
  ``1e4 * side * (price - mid) / mid`` with the exchange mid at the fill (positive = paid over mid);
* ``n_fills``, ``n_orders``, ``n_events``, ``result_hash``, ``wall_s`` (seconds in the worker);
  ``status`` "ok" or "failed" with the traceback in ``error``.

Workers get the parent's ``NUMBA_CACHE_DIR`` and ``TICKGUARD_CACHE_DIR`` so kernels compile once.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .core import Scenario, Transform, apply, scenario_latency
from .grid_config import Cell, GridSpec, load_grid

__all__ = ["GridResult", "ROW_SCHEMA", "run_grid", "run_stressed", "stress_metrics"]

VAR_LEVEL = 0.99
VAR_MIN_INCREMENTS = 100  # at 99 % fewer points leave the 1 % tail empty

ROW_SCHEMA = pa.schema([
    ("key", pa.string()), ("data", pa.string()), ("scenario", pa.string()), ("strategy", pa.string()),
    ("params", pa.string()), ("status", pa.string()),
    ("pnl", pa.float64()), ("max_drawdown", pa.float64()), ("max_drawdown_abs", pa.float64()),
    ("var_99", pa.float64()), ("es_99", pa.float64()), ("var_note", pa.string()),
    ("ks_state", pa.string()), ("ks_first_ts", pa.int64()), ("ks_first_rule", pa.string()),
    ("ks_first_state", pa.string()), ("ring_overflows", pa.string()), ("n_denied", pa.int64()),
    ("worst_fill_bps", pa.float64()),
    ("n_fills", pa.int64()), ("n_orders", pa.int64()), ("n_events", pa.int64()),
    ("result_hash", pa.string()), ("wall_s", pa.float64()), ("error", pa.string()),
])


def run_stressed(events: np.ndarray, scenario: Scenario | Transform, strategy: Any, *, instruments: Any = None,
                 config: Any = None, risk: Any = None, seed: int = 0) -> Any:
    """One engine run on ``events`` under ``scenario``: the transformed events and the scenario's
    latency (:func:`~tickguard.risk.stress.scenario_latency` on ``config.latency``). Returns the
    engine :class:`~tickguard.engine.backtest.Result`."""
    from tickguard.engine.backtest import run
    from tickguard.engine.config import EngineConfig

    config = config or EngineConfig()
    sc = scenario if isinstance(scenario, Scenario) else Scenario((scenario,))
    if sc.transforms:
        stressed = apply(events, sc, seed=seed, instruments=instruments)
        latency = scenario_latency(config.latency, events, sc, seed=seed)
        if latency is not config.latency:
            config = replace(config, latency=latency)
    else:
        stressed = events
    return run(stressed, strategy, instruments=instruments, config=config, risk=risk)


def stress_metrics(result: Any) -> dict[str, Any]:
    """The risk columns of a grid row for an engine ``Result`` (see the module docstring)."""
    from tickguard.engine.records import OE_DENIED, RISK_STATE_NAMES, RK_TRANSITION
    from tickguard.reports.metrics import max_drawdown
    from tickguard.risk.var import historical_es, historical_var

    initial = float(result.config.initial_cash)
    eq = result.equity
    path = np.concatenate([[initial], eq["equity"]])
    out: dict[str, Any] = {"pnl": float(path[-1] - initial)}
    if np.all(np.isfinite(path)) and initial > 0:
        dd = max_drawdown(path)
        out.update(max_drawdown=dd.depth, max_drawdown_abs=dd.depth_abs)
    else:
        out.update(max_drawdown=None, max_drawdown_abs=None)
    inc = np.diff(path)
    out.update(var_99=None, es_99=None, var_note=None)
    if not np.all(np.isfinite(inc)):
        out["var_note"] = "the equity path has non-finite values"
    elif len(inc) < VAR_MIN_INCREMENTS:
        out["var_note"] = f"{len(inc)} PnL increments; 99% historical VaR/ES needs >= {VAR_MIN_INCREMENTS}"
    else:
        out.update(var_99=historical_var(inc, VAR_LEVEL), es_99=historical_es(inc, VAR_LEVEL))
    rk = result.risk_events
    out.update(ks_state=None, ks_first_ts=None, ks_first_rule=None, ks_first_state=None, ring_overflows=None)
    if result.risk is not None:
        out["ring_overflows"] = json.dumps(result.risk_ring_overflows, sort_keys=True)
        out["ks_state"] = RISK_STATE_NAMES[int(rk["state"][-1])] if len(rk) else "ACTIVE"
        tr = rk[rk["kind"] == RK_TRANSITION]
        if len(tr):
            out.update(ks_first_ts=int(tr["ts"][0]), ks_first_rule=result.risk.rule_name(int(tr["rule"][0])),
                       ks_first_state=RISK_STATE_NAMES[int(tr["state"][0])])
    f = result.fills
    with np.errstate(invalid="ignore", divide="ignore"):
        slip = 1e4 * f["side"] * (f["price"] - f["mid"]) / f["mid"]
    slip = slip[np.isfinite(slip)]
    out.update(
        n_denied=int((result.order_events["event"] == OE_DENIED).sum()),
        worst_fill_bps=float(slip.max()) if len(slip) else None,
        n_fills=int(len(f)), n_orders=int(len(result.orders)), n_events=int(result.n_events),
        result_hash=result.result_hash,
    )
    return out


@dataclass(frozen=True)
class _Task:
    cell: Cell
    scenario: Scenario
    engine: Any
    rulebook: str | None  # the text: workers need not see the parent's files
    seed: int
    specialize: bool = False  # the gate written for the rulebook's shape (RiskGate.specialize)


def _base_row(cell: Cell) -> dict[str, Any]:
    return {"key": cell.key, "data": cell.data, "scenario": cell.scenario, "strategy": cell.strategy,
            "params": cell.params_json}


def _failed(cell: Cell, error: str, wall_s: float | None = None) -> dict[str, Any]:
    return {**_base_row(cell), "status": "failed", "error": error, "wall_s": wall_s}


def _run_task(task: _Task, payload: tuple[np.ndarray, Any]) -> dict[str, Any]:
    """Worker side: one cell, never raising (a failure is a row with its traceback)."""
    t0 = time.perf_counter()
    events, instruments = payload
    try:
        from tickguard.engine.strategy import load_strategy
        from tickguard.risk.inloop import RiskGate

        strategy = load_strategy(task.cell.strategy)(**task.cell.params)
        risk = (RiskGate.load(task.rulebook, instruments, specialize=task.specialize)
                if task.rulebook is not None else None)
        result = run_stressed(events, task.scenario, strategy, instruments=instruments, config=task.engine,
                              risk=risk, seed=task.seed)
        row = {**_base_row(task.cell), "status": "ok", **stress_metrics(result), "error": None}
    except Exception:
        return _failed(task.cell, traceback.format_exc(), time.perf_counter() - t0)
    row["wall_s"] = time.perf_counter() - t0
    return row


def _write_atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)  # readers see the old file or the whole new one, never a part
    finally:
        tmp.unlink(missing_ok=True)


def _write_row(cells_dir: Path, row: dict[str, Any]) -> None:
    ok = row["status"] == "ok"
    name = f"{row['key']}.parquet" if ok else f"{row['key']}.failed.parquet"
    table = pa.Table.from_pylist([row], schema=ROW_SCHEMA)
    _write_atomic(cells_dir / name, lambda p: pq.write_table(table, p))
    if ok:
        (cells_dir / f"{row['key']}.failed.parquet").unlink(missing_ok=True)


def _cache_env() -> dict[str, str]:
    """The parent's kernel caches, pinned (the loop cache resolved here, so every worker agrees)."""
    from tickguard.engine.codegen import loop_cache_dir

    env = {"TICKGUARD_CACHE_DIR": str(loop_cache_dir())}
    if os.environ.get("NUMBA_CACHE_DIR"):
        env["NUMBA_CACHE_DIR"] = os.environ["NUMBA_CACHE_DIR"]
    return env


def _set_cache_env(env: dict[str, str]) -> None:
    """On a worker of a cluster we did not start: take the parent's cache folders (numba re-reads)."""
    os.environ.update(env)
    from numba.core import config

    config.reload_config()


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@contextmanager
def _connect(client: Any, n_workers: int | None, processes: bool) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    if isinstance(client, Client):
        yield client
        return
    if isinstance(client, str):
        with Client(client) as c:
            c.run(_set_cache_env, _cache_env())  # the workers there now; later ones keep their own
            yield c
        return
    if client is not None:
        raise TypeError(f"client: got {type(client).__name__}; pass a distributed.Client, a scheduler "
                        "address like 'tcp://host:8786', or None for a local cluster")
    n = n_workers or _cpus()
    extra = {"env": _cache_env()} if processes else {}
    # ":0": a free port for the status page (None still takes 8787, which another cluster may hold)
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=processes, dashboard_address=":0",
                      **extra) as cluster, Client(cluster) as c:
        yield c


@dataclass
class GridResult:
    """What :func:`run_grid` returns: the table, the summary, and which cells ran or were reused."""

    results: pd.DataFrame
    summary: dict[str, Any]
    ran: list[str]
    skipped: list[str]
    out: Path

    @property
    def failures(self) -> pd.DataFrame:
        return self.results[self.results["status"] != "ok"]


class _Progress:
    """One stderr line: rewritten in place on a terminal, else a line per tenth of the grid."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total, self.quiet, self.done, self.failed, self.t0 = total, quiet, 0, 0, time.perf_counter()
        self.tty = sys.stderr.isatty()

    def tick(self, ok: bool) -> None:
        self.done += 1
        self.failed += not ok
        step = max(self.total // 10, 1)
        if self.quiet or not (self.tty or self.done % step == 0 or self.done == self.total):
            return
        line = (f"stress grid: {self.done}/{self.total} cells, {self.failed} failed, "
                f"{time.perf_counter() - self.t0:.0f}s")
        print(f"\r{line}" if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty and not self.quiet and self.total:
            print(file=sys.stderr)


def run_grid(grid: GridSpec | str | os.PathLike[str], *, out: str | os.PathLike[str] | None = None,
             client: Any = None, n_workers: int | None = None, processes: bool = True,
             quiet: bool = False) -> GridResult:
    """Run every cell of ``grid`` (a :class:`GridSpec` or a grid TOML path) not already done in
    ``out`` (default: the grid's ``[output] dir``, else ``./tickguard_stress``).

    ``client``: None starts a LocalCluster of ``n_workers`` (default: the cores this process may
    use) single-threaded workers (``processes=False``: threads of this process); a
    ``distributed.Client`` or a scheduler address uses that cluster. ``quiet`` silences the
    progress line on stderr. A failing cell becomes a ``status="failed"`` row with its traceback.
    """
    t0 = time.perf_counter()
    spec = grid if isinstance(grid, GridSpec) else load_grid(grid)
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1):
        raise ValueError(f"n_workers: got {n_workers!r}; use an int >= 1 or None (one per core)")
    out_dir = Path(out or spec.out or "tickguard_stress")
    cells_dir = out_dir / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    cells = spec.cells()
    skipped = [c.key for c in cells if (cells_dir / f"{c.key}.parquet").exists()]
    done = set(skipped)
    todo = [c for c in cells if c.key not in done]
    rulebook = spec.rulebook.read_text() if spec.rulebook is not None else None
    progress = _Progress(len(todo), quiet)
    ran: list[str] = []
    if todo:
        from distributed import as_completed

        with _connect(client, n_workers, processes) as cl:
            payload = {}
            for label in dict.fromkeys(c.data for c in todo):
                # hash=False: a fresh key per run. With the default content hash, a second grid on the
                # same client re-scatters under the key the first one is still releasing, and the
                # scheduler can drop the new copy ("computation on lost data"), failing cells at random.
                [payload[label]] = cl.scatter([spec.data_item(label).load()], hash=False)
            token = uuid.uuid4().hex[:8]
            futures = {cl.submit(_run_task, _Task(c, spec.scenario(c.scenario), spec.engine, rulebook, spec.seed,
                                                         spec.specialize),
                                 payload[c.data], key=f"stress-{c.key}-{token}", pure=False): c for c in todo}
            for fut in as_completed(futures):
                cell = futures[fut]
                try:
                    row = fut.result()
                except Exception as exc:  # the worker itself died or could not run the task
                    row = _failed(cell, "".join(traceback.format_exception(exc)))
                _write_row(cells_dir, row)
                ran.append(cell.key)
                progress.tick(row["status"] == "ok")
                fut.release()
        progress.close()
    return _finish(spec, cells, cells_dir, out_dir, ran, skipped, time.perf_counter() - t0)


def _finish(spec: GridSpec, cells: list[Cell], cells_dir: Path, out_dir: Path, ran: list[str],
            skipped: list[str], wall_s: float) -> GridResult:
    tables = []
    for c in cells:
        ok, bad = cells_dir / f"{c.key}.parquet", cells_dir / f"{c.key}.failed.parquet"
        if ok.exists() or bad.exists():
            tables.append(pq.read_table(ok if ok.exists() else bad, schema=ROW_SCHEMA))
    table = pa.concat_tables(tables) if tables else ROW_SCHEMA.empty_table()
    _write_atomic(out_dir / "results.parquet", lambda p: pq.write_table(table, p))
    results = table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)  # ints stay ints with nulls
    failed = results[results["status"] != "ok"]
    summary = {
        "grid": spec.source, "grid_hash": spec.grid_hash(), "cells": len(cells),
        "ok": int((results["status"] == "ok").sum()), "failed": int(len(failed)),
        "ran": len(ran), "skipped": len(skipped), "wall_s": wall_s,
        "failed_cells": [{"key": k, "error": (e or "").strip().splitlines()[-1] if e else ""}
                         for k, e in zip(failed["key"], failed["error"])],
    }
    _write_atomic(out_dir / "summary.json", lambda p: p.write_text(json.dumps(summary, indent=2)))
    return GridResult(results, summary, ran, skipped, out_dir)
