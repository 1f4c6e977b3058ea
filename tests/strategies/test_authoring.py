"""The strategy author's experience: example configs for every built-in, the two minimal templates,
an external plugin package found through its entry point, and errors that name the strategy, where
it went wrong (event / local time) and the value it produced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
import uuid
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from numba import njit

from tickguard.benchmarks.ml_walkforward import main as bench_main
from tickguard.benchmarks.ml_walkforward import run_benchmark
from tickguard.data.synth import synthesize
from tickguard.engine.backtest import StrategyError, run
from tickguard.engine.config import EngineConfig, Latency, LatencyConfig
from tickguard.engine.layout import M_MID
from tickguard.engine.records import OE_REJECT, OE_SUBMIT, RJ_BAD_QTY
from tickguard.engine.strategy import NumbaStrategy, SignalStrategy, submit_market_nb
from tickguard.reports.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "strategies"
TEMPLATES = ROOT / "examples" / "templates"
LOBSTER_DIR = ROOT.parent / "shared" / "data" / "lobster"
SAMPLE = ROOT / "data" / "samples" / "synthetic_l1.parquet"
CONFIGS = sorted(EXAMPLES.glob("*.toml"))


def _builtin_plugins() -> set[str]:
    # read from pyproject.toml, not from discover(): the oracle is the declaration itself
    doc = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(doc["project"]["entry-points"]["tickguard.strategies"])


def _is_lobster(cfg: Path) -> bool:
    return "lobster" in tomllib.loads(cfg.read_text()).get("data", {})


# --- 1. one example config per built-in -------------------------------------------------------

def test_every_builtin_plugin_has_a_sample_config_and_a_lobster_one():
    on_sample, on_lobster = {}, {}
    for cfg in CONFIGS:
        doc = tomllib.loads(cfg.read_text())
        (on_lobster if _is_lobster(cfg) else on_sample)[doc["strategy"]["name"]] = doc
    assert set(on_sample) == _builtin_plugins()
    assert all(doc["data"] == {"sample": "synthetic_l1"} for doc in on_sample.values())
    assert set(on_lobster) == _builtin_plugins()  # each built-in runs on the real AMZN day too


@pytest.mark.slow
@pytest.mark.parametrize("cfg", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_example_config_runs_and_trades(cfg, tmp_path):
    if _is_lobster(cfg) and not LOBSTER_DIR.is_dir():
        pytest.skip(f"LOBSTER sample folder not found: {LOBSTER_DIR}")
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--quiet", "--no-report"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fills"] > 0
    assert summary["fills"] == pq.read_metadata(out / "fills.parquet").num_rows
    if not _is_lobster(cfg):  # the bundled sample, whole: its row count from the file itself
        assert summary["events"] == pq.read_metadata(SAMPLE).num_rows


# --- 2. the minimal templates -----------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", ["min_numba_strategy.py", "min_signal_strategy.py"])
def test_template_is_short_and_runs_as_a_script(name, tmp_path):
    path = TEMPLATES / name
    assert len(path.read_text().splitlines()) < 40
    proc = subprocess.run([sys.executable, str(path)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = dict(line.split(":", 1) for line in proc.stdout.splitlines() if ":" in line)
    values = {k.strip(): v.strip() for k, v in lines.items()}
    assert int(values["events"]) == pq.read_metadata(SAMPLE).num_rows
    assert int(values["fills"]) > 0


# --- 3. an external plugin package ------------------------------------------------------------

_PLUGIN_SOURCE = '''\
"""A third-party tickguard strategy: buy ``size`` units at the first two-sided quote, then hold."""
import numpy as np
from numba import njit

from tickguard.engine.layout import M_MID
from tickguard.engine.strategy import NumbaStrategy, submit_market_nb


@njit(cache=True)
def buy_once_nb(reason, ev, order, now, mkt, pos, orders, n_orders, params, state, aux, req):
    if reason != 0 or n_orders > 0 or mkt[0, M_MID] != mkt[0, M_MID]:
        return 0
    return submit_market_nb(req, 0, 0, params[0])


def buy_once(size=1.0):
    return NumbaStrategy(buy_once_nb, params=np.array([float(size)]), name="buy_once", max_requests=1)
'''


def _pip_install(src: Path, target: Path) -> None:
    """``pip install --no-deps`` the package at ``src`` into ``target``; skip if pip cannot build
    it here (no build backend offline)."""
    base = [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check",
            "--target", str(target)]
    # without build isolation first (no network); setuptools < 70.1 needs the `wheel` package for
    # that, else fall back to pip's isolated build (which may fetch setuptools from the index)
    proc = subprocess.run(base + ["--no-build-isolation", str(src)], capture_output=True, text=True,
                          timeout=300)
    if proc.returncode != 0:
        proc = subprocess.run(base + [str(src)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.skip("pip could not build the plugin package here (no setuptools+wheel in the venv "
                    f"and no index reachable?):\n{(proc.stdout + proc.stderr)[-1500:]}")


@pytest.mark.slow
def test_external_plugin_is_listed_and_runs_from_a_config(tmp_path):
    # A unique distribution installed with --target into a private folder put on PYTHONPATH: the
    # same entry-point discovery as an install into the venv, without touching the shared venv
    # (a concurrent test run never sees a half-installed plugin, and nothing is left to uninstall).
    mod = f"tg_ext_{uuid.uuid4().hex[:10]}"
    plugin = f"{mod}_buy_once"
    src = tmp_path / "src"
    src.mkdir()
    (src / "pyproject.toml").write_text(textwrap.dedent(f'''\
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{mod.replace('_', '-')}"
        version = "0.0.1"

        [project.entry-points."tickguard.strategies"]
        {plugin} = "{mod}:buy_once"

        [tool.setuptools]
        py-modules = ["{mod}"]
        '''))
    (src / f"{mod}.py").write_text(_PLUGIN_SOURCE)
    site = tmp_path / "site"
    _pip_install(src, site)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "TICKGUARD_CACHE_DIR": str(tmp_path / "loops")}
    cli = Path(sys.executable).with_name("tickguard")

    listed = subprocess.run([str(cli), "strategies"], env=env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    rows = dict(line.split(None, 1) for line in listed.stdout.splitlines())
    assert rows[plugin].strip() == f"{mod}:buy_once"
    assert _builtin_plugins() <= set(rows)

    cfg = tmp_path / "ext.toml"
    cfg.write_text(f'[data]\nsample = "synthetic_l1"\n\n[strategy]\nname = "{plugin}"\n'
                   'params = { size = 3 }\n')
    out = tmp_path / "out"
    ran = subprocess.run([str(cli), "run", str(cfg), "--out", str(out), "--quiet"], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["strategy"] == "buy_once" and summary["orders"] == 1 and summary["fills"] > 0
    fills = pq.read_table(out / "fills.parquet").to_pandas()
    assert (fills["qty"] * fills["side"]).sum() == 3.0  # one buy of 3 units, however it filled


# --- 4. clear errors ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small():
    """2 000 seeded synthetic events and their instrument table."""
    return synthesize(2_000, seed=7)


@njit(cache=True)
def raise_at_nb(reason, ev, order, now, mkt, pos, orders, n_orders, params, state, aux, req):
    """Raises on its ``params[0]``-th market event (0-based); sends nothing."""
    if reason == 0:
        state[0] += 1.0
        if state[0] > params[0]:
            raise ValueError("price feed looks broken")
    return 0


@njit(cache=True)
def raise_on_response_nb(reason, ev, order, now, mkt, pos, orders, n_orders, params, state, aux, req):
    """One market buy at the first two-sided quote; raises when its first response arrives."""
    if reason != 0:
        raise RuntimeError("cannot handle a response")
    if n_orders > 0 or mkt[0, M_MID] != mkt[0, M_MID]:
        return 0
    return submit_market_nb(req, 0, 0, 1.0)


@njit(cache=True)
def bad_count_at_nb(reason, ev, order, now, mkt, pos, orders, n_orders, params, state, aux, req):
    """Returns ``params[1]`` (a bad request count) on its ``params[0]``-th market event."""
    if reason == 0:
        state[0] += 1.0
        if state[0] > params[0]:
            return int(params[1])
    return 0


@njit(cache=True)
def submit_qty_nb(reason, ev, order, now, mkt, pos, orders, n_orders, params, state, aux, req):
    """One market buy of ``params[0]`` units at the first two-sided quote."""
    if reason != 0 or n_orders > 0 or mkt[0, M_MID] != mkt[0, M_MID]:
        return 0
    return submit_market_nb(req, 0, 0, params[0])


@pytest.mark.parametrize("chunk_rows", [None, 37])
def test_exception_inside_numba_callback_names_strategy_event_and_time(small, chunk_rows):
    # the loop keeps only the row it is on; the event's number and time come from the chunk
    # (in chunks of 37 rows, event 99 is row 25 of the third)
    events, table = small
    k = 99
    strat = NumbaStrategy(raise_at_nb, params=np.array([k]), state=np.zeros(1), name="raiser")
    ts = int(events["ts_local"][k])
    config = EngineConfig() if chunk_rows is None else EngineConfig(chunk_rows=chunk_rows)
    with pytest.raises(StrategyError, match=(
            rf"strategy 'raiser' raised ValueError: price feed looks broken in its market-event "
            rf"callback at local time {ts} ns \(after {k} events\)")) as info:
        run(events, strat, instruments=table, config=config)
    assert isinstance(info.value.__cause__, ValueError)


def test_exception_inside_response_callback_names_strategy_order_and_time(small):
    # the order leaves at the first two-sided quote (t0) and arrives at once; its first response
    # reaches the strategy one response latency later
    events, table = small
    t0 = int(events["ts_local"][np.flatnonzero(np.isfinite(events["bid_px"]) &
                                               np.isfinite(events["ask_px"]))[0]])
    config = EngineConfig(latency=LatencyConfig(submit=Latency(entry_ns=0, response_ns=250)))
    strat = NumbaStrategy(raise_on_response_nb, name="deaf", max_requests=1)
    with pytest.raises(StrategyError, match=(
            rf"strategy 'deaf' raised RuntimeError: cannot handle a response in its response "
            rf"callback for order 0 at local time {t0 + 250} ns")):
        run(events, strat, instruments=table, config=config)


@pytest.mark.parametrize("count", [5, -1])
def test_bad_request_count_names_strategy_value_and_time(small, count):
    events, table = small
    k = 10
    strat = NumbaStrategy(bad_count_at_nb, params=np.array([k, count]), state=np.zeros(1),
                          name="liar", max_requests=1)
    ts = int(events["ts_local"][k])
    with pytest.raises(StrategyError, match=(
            rf"strategy 'liar' returned {count} requests from its market-event callback at local "
            rf"time {ts} ns \(after {k} events\).*max_requests=1")):
        run(events, strat, instruments=table)


@pytest.mark.parametrize("qty", [np.inf, np.nan])
def test_non_finite_order_qty_is_a_reject_record_not_a_crash(small, qty):
    # an order is the exchange's business: a bad one is rejected and recorded (time, qty, reason)
    events, table = small
    res = run(events, NumbaStrategy(submit_qty_nb, params=np.array([qty]), name="bad_qty"),
              instruments=table)
    oe = res.order_events
    assert list(oe["event"]) == [OE_SUBMIT, OE_REJECT] and oe["reason"][1] == RJ_BAD_QTY
    assert len(res.fills) == 0 and np.array_equal(oe["qty"], [qty, qty], equal_nan=True)
    first_quote = int(np.flatnonzero(np.isfinite(events["bid_px"]) & np.isfinite(events["ask_px"]))[0])
    assert oe["ts_local"][0] == events["ts_local"][first_quote]


def _signal(values, name):
    """A SignalStrategy whose target function returns ``values`` (whatever the events)."""
    def target(events):
        return values
    return SignalStrategy(target, name=name)


def test_signal_of_the_wrong_shape_names_strategy_and_both_shapes(small):
    events, table = small
    n = len(events)
    with pytest.raises(ValueError, match=rf"signal strategy 'short' returned shape \({n - 1},\); it "
                                         rf"must return one target per event, shape \({n},\)"):
        run(events, _signal(np.zeros(n - 1), "short"), instruments=table)
    with pytest.raises(ValueError, match=rf"'column' returned shape \({n}, 1\)"):
        run(events, _signal(np.zeros((n, 1)), "column"), instruments=table)


def _spiky(events, bad):
    values = np.ones(len(events))
    values[7] = bad
    return _signal(values, "spiky"), int(events["ts_local"][7])


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_infinite_signal_names_strategy_event_and_time(small, bad):
    events, table = small
    strat, ts = _spiky(events, bad)
    with pytest.raises(ValueError, match=rf"signal strategy 'spiky' returned a non-finite target "
                                         rf"\S*{'-' if bad < 0 else ''}inf\S* at event 7 \(ts_local={ts}\)"):
        run(events, strat, instruments=table)


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_infinite_signal_prints_the_value_as_a_plain_float(small, bad):
    events, table = small
    strat, ts = _spiky(events, bad)
    with pytest.raises(ValueError, match=rf"non-finite target {float(bad)!r} at event 7 "):
        run(events, strat, instruments=table)


def test_signal_function_that_raises_names_the_strategy(small):
    events, table = small

    def broken(ev):
        return 1.0 / 0.0

    with pytest.raises(RuntimeError, match=r"signal strategy 'broken' raised ZeroDivisionError") as info:
        run(events, SignalStrategy(broken), instruments=table)
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_nan_signal_means_no_opinion_never_flat(small):
    # NaN until event k, 3 units until event m, NaN after: the first order leaves at event k and
    # the position is still 3 at the end (NaN keeps the position, it does not close it)
    events, table = small
    k, m = 500, 900
    values = np.full(len(events), np.nan)
    values[k:m] = 3.0
    res = run(events, _signal(values, "sparse"), instruments=table)
    assert res.order_events["ts_local"][0] == events["ts_local"][k]
    assert (res.fills["qty"] * res.fills["side"]).sum() == 3.0
    assert res.fills["ts_local"].max() < events["ts_local"][m]  # nothing traded once NaN again
    idle = run(events, _signal(np.full(len(events), np.nan), "idle"), instruments=table)
    assert len(idle.orders) == 0


def test_signal_target_beyond_max_position_names_strategy_value_event_and_time(small):
    events, table = small
    values = np.ones(len(events))
    values[10] = 6.0
    ts = int(events["ts_local"][10])
    strat = SignalStrategy(lambda ev: values, name="greedy", max_position=5.0)
    with pytest.raises(ValueError, match=rf"signal strategy 'greedy' asked for a target of 6.0 units "
                                         rf"at event 10 \(ts_local={ts}\), beyond max_position=5.0"):
        run(events, strat, instruments=table)


# --- 5. the ML walk-forward benchmark, tiny -----------------------------------------------------

def test_ml_walkforward_benchmark_pools_fold_accuracies():
    n, train, test, horizon = 6_000, 1_500, 1_500, 5
    report = run_benchmark(n, train_size=train, test_size=test, horizon=horizon, models=("svm",),
                           progress=False)
    res = report["results"][0]
    folds = res["folds"]
    first_test = train + horizon  # WalkForward's layout, counted by hand: one instrument, n rows
    assert len(folds) == -(-(n - first_test) // test)
    # the pooled accuracy (numpy, over every scored row) equals the n_eval-weighted mean of the
    # per-fold accuracies (sklearn's accuracy_score inside the classifier)
    s = res["summary"]
    assert s["n_eval"] == folds["n_eval"].sum() > 0
    assert s["accuracy"] == pytest.approx(np.average(folds["accuracy"], weights=folds["n_eval"]),
                                          rel=1e-12)
    assert 0.5 <= s["base_rate"] <= 1.0 and res["wall_s"] >= res["fit_s"] > 0


def test_ml_walkforward_benchmark_cli(capsys):
    assert bench_main(["--events", "4000", "--train-size", "1000", "--test-size", "1500",
                       "--horizon", "5", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "== svm: wall" in out and "== mlp: wall" in out and out.count("pooled: n_eval=") == 2
    assert bench_main(["--events", "0"]) == 2
    assert "n_events must be an int >= 1, got 0" in capsys.readouterr().err
