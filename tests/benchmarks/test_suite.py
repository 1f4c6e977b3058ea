"""The benchmark suite's correctness: workloads, reference loops, peers' fallbacks, the JSON.

No timing assertions: figures depend on the machine. What is checked is what a figure rests on
(the data are what the docstring says, the loops agree, a missing peer is reported as missing)
and that a run's JSON and markdown carry every documented key.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tickguard.benchmarks import cli, peers, suite
from tickguard.benchmarks.engine import bare_ema_loop_nb, quote_workload
from tickguard.benchmarks.pyloop import ema_loop_py, measure_pyloop
from tickguard.benchmarks.workloads import (
    L1_QUOTES_START_TICKS, WORKLOADS, iter_events, l1_quotes, make_events, parquet_for,
)
from tickguard.data.parquet_io import read_parquet
from tickguard.data.schema import EVENT_DTYPE, empty_events, kind_to_str

# --- workloads -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_workload_deterministic_by_seed_and_chunk_invariant(name):
    n = 4000
    a, _ = make_events(name, n, seed=11)
    b, _ = make_events(name, n, seed=11)
    c, _ = make_events(name, n, seed=12)
    chunked = np.concatenate(list(iter_events(name, n, seed=11, chunk_rows=777)))
    assert a.tobytes() == b.tobytes() == chunked.tobytes()
    assert a.tobytes() != c.tobytes()


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_workload_shape_and_kinds_as_documented(name):
    w = WORKLOADS[name]
    n = 30_000  # ~300 events per instrument in the 100-instrument case: every id appears
    ev, table = make_events(name, n)
    assert ev.dtype == EVENT_DTYPE and len(ev) == n
    assert {kind_to_str(k) for k in np.unique(ev["kind"])} == set(w.kinds)
    assert sorted(np.unique(ev["instrument"]).tolist()) == list(range(w.n_instruments))
    assert len(table) == w.n_instruments and table[0].tick_size == 0.01
    assert np.all(np.diff(ev["ts_local"]) >= 0) and np.all(ev["ts_local"] >= ev["ts_exch"])
    depth = ev[(ev["kind"] & 4) != 0]
    if w.book_levels:  # levels are 0-based: the deepest row says how many levels the data holds
        assert int(depth["level"].max()) == w.book_levels - 1
    else:
        assert len(depth) == 0


def test_l1_quotes_model_as_documented():
    ev = l1_quotes(100_000)
    bid_t = np.round(ev["bid_px"] * 100)
    assert np.array_equal(ev["bid_px"], bid_t / 100) and bid_t[0] == L1_QUOTES_START_TICKS
    assert np.array_equal(np.round(ev["ask_px"] * 100) - bid_t, np.ones(len(ev)))  # one-tick spread
    assert np.all(ev["ts_local"] - ev["ts_exch"] == 50_000)
    gaps = np.diff(ev["ts_exch"])
    assert gaps.min() >= 1_000 and gaps.max() <= 1_000_000
    # uniform on 1000..1e6 ns: mean 500 500, sd 288 386 -> standard error 912 at 1e5 draws; 5 se
    assert abs(gaps.mean() - 500_500) < 5 * 912
    steps = np.diff(bid_t)
    assert set(np.unique(steps)) == {-1.0, 0.0, 1.0}
    # each step has probability 1/3: standard error sqrt(2/9 / 1e5) = 0.0015; 5 se
    for s in (-1, 0, 1):
        assert abs(np.mean(steps == s) - 1 / 3) < 5 * 0.0015


def test_parquet_cache_written_once_and_equal_to_memory(tmp_path):
    path, written = parquet_for("l1_trades", 3000, tmp_path, chunk_rows=1000)
    again, written_again = parquet_for("l1_trades", 3000, tmp_path, chunk_rows=1000)
    assert (written, written_again, again) == (True, False, path)
    assert read_parquet(path).tobytes() == make_events("l1_trades", 3000)[0].tobytes()


def test_workload_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="unknown workload 'l3'"):
        make_events("l3", 10)
    with pytest.raises(ValueError, match="n_events must be an int >= 0, got -1"):
        l1_quotes(-1)
    with pytest.raises(ValueError, match="chunk_rows must be an int >= 1, got 0"):
        list(iter_events("l1_quotes", 10, chunk_rows=0))


# --- reference loops -----------------------------------------------------------------------------


def _quotes(bid, ask):
    ev = empty_events(len(bid))
    ev["bid_px"], ev["ask_px"] = bid, ask
    return ev


def test_loops_match_a_hand_worked_example():
    # fast=1 (alpha 1: the fast EMA is the mid), slow=2 (alpha 2/3); mids 100, 101, 99.
    # event 2: fast 101 > slow 100.667 -> buy 1 at the ask 101.5 (cash -101.5);
    # event 3: fast 99 < slow 99.556 -> sell 2 at the bid 98.5 (cash -101.5 + 197 = 95.5), position -1.
    bid, ask = [99.5, 100.5, 98.5], [100.5, 101.5, 99.5]
    assert ema_loop_py(bid, ask, 1.0, 2.0, 1.0) == (95.5, -1.0, 2)
    assert bare_ema_loop_nb(_quotes(bid, ask), 1.0, 2.0, 1.0) == (95.5, -1.0, 2)


@pytest.mark.parametrize("events", [l1_quotes(50_000, seed=3), quote_workload(50_000, seed=5)],
                         ids=["l1_quotes", "engine.quote_workload"])
def test_python_loop_agrees_exactly_with_bare_numba_loop(events):
    bare = bare_ema_loop_nb(events, 50.0, 200.0, 1.0)
    py = ema_loop_py(events["bid_px"].tolist(), events["ask_px"].tolist(), 50.0, 200.0, 1.0)
    assert bare[2] > 50  # enough trades that a difference in the arithmetic would show
    assert py == bare  # trades, final position and cash, bit for bit


def test_measure_pyloop_reports_the_prefix_and_extrapolation():
    ev = l1_quotes(5000)
    out = measure_pyloop(ev, 1000, extrapolate_to=5000)
    assert out["events_measured"] == 1000 and out["extrapolated"] is True
    assert out["trades"] == bare_ema_loop_nb(ev[:1000], 50.0, 200.0, 1.0)[2]
    assert out["extrapolated_seconds"] == pytest.approx(5000 / out["events_per_s"], rel=1e-12)
    with pytest.raises(ValueError, match="n_events must be an int >= 1, got 0"):
        measure_pyloop(ev, 0)


# --- peers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, module", [("hftbacktest", "hftbacktest"), ("vectorbt", "vectorbt"),
                                          ("backtesting", "backtesting"), ("backtrader", "backtrader")])
def test_peer_not_importable_is_reported_not_installed(monkeypatch, name, module):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ModuleNotFoundError
    row = peers.run_peer(name, l1_quotes(500))
    assert row["status"] == peers.NOT_INSTALLED == "not installed (pip install tickguard[peers])"
    assert set(row) == set(peers.PEER_ROW_KEYS)
    assert row["events_per_s"] is None and row["fills"] is None  # no number without a run


def test_unknown_peer_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown peer 'zipline'"):
        peers.run_peer("zipline", l1_quotes(10))


def test_ema_targets_kernel_follows_the_bare_loop():
    ev = l1_quotes(20_000)
    target = peers.ema_targets_nb(0.5 * (ev["bid_px"] + ev["ask_px"]), 50.0, 200.0, 1.0)
    assert np.isnan(target[:199]).all() and not np.isnan(target[199:]).any()
    changes = 1 + np.count_nonzero(np.diff(target[199:]))  # the first target is a trade from flat
    _, pos, trades = bare_ema_loop_nb(ev, 50.0, 200.0, 1.0)
    assert (changes, target[-1]) == (trades, pos)


# --- strategies (c) and (d) ----------------------------------------------------------------------


def test_market_maker_missing_is_reported_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "tickguard.strategies.market_maker", None)
    strat, why = suite._strategy("mm", 0.01)
    assert strat is None and why == "unavailable: strategies.market_maker not installed"


def _tiny(**kw):
    base = dict(events=3000, repeat=1, scaling=(2000,), pyloop_events=1000, chunk_rows=1000,
                peer_events=(("backtrader", 1500),))
    return dataclasses.replace(suite.QUICK, **{**base, **kw})


def test_gate_hook_runs_strategy_d_with_the_given_run_arguments():
    pytest.importorskip("tickguard.strategies.market_maker")
    p = _tiny(workloads=(("l1_quotes", ("mm", "mm_risk")),))
    without = suite._workload_rows(p, None, lambda m: None)
    assert without[1]["status"].startswith("unavailable: the full risk rulebook is not wired")
    seen = []

    def gate(instruments):  # no arguments: the engine's default (pass-through) risk, so (d) == (c)
        seen.append(instruments)
        return {}

    rows = suite._workload_rows(p, gate, lambda m: None)
    assert [r["status"] for r in rows] == ["ok", "ok"] and seen == [WORKLOADS["l1_quotes"].instruments()]
    assert (rows[0]["orders"], rows[0]["fills"]) == (rows[1]["orders"], rows[1]["fills"])
    assert rows[0]["orders"] > 0
    with pytest.raises(TypeError, match="gate must be a dict of run\\(\\) keyword arguments"):
        suite._workload_rows(p, ("gate_nb", "cfg"), lambda m: None)


# --- goals and the whole quick suite -------------------------------------------------------------


def _result(engine, ratio, stream, rss6, rss8, ema8=2**30):
    """idle runs at 10^6 / 10^8 with peak RSS rss6 / rss8; EMA at 10^8 with peak ema8 bytes."""
    scaling = [{"strategy": "none", "events": 10**6, "stream_events_per_s": 1e6, "peak_rss_bytes": rss6},
               {"strategy": "ema", "events": 10**6, "stream_events_per_s": 1e6, "peak_rss_bytes": rss6,
                "fills": 10}]
    if rss8 is not None:
        scaling += [{"strategy": "none", "events": 10**8, "stream_events_per_s": stream, "peak_rss_bytes": rss8},
                    {"strategy": "ema", "events": 10**8, "stream_events_per_s": stream, "peak_rss_bytes": ema8,
                     "fills": 1000}]
    return {"reference": {"engine": {"events_per_s": engine}, "ratio_engine_to_bare": ratio}, "scaling": scaling}


def test_goals_pass_at_the_threshold_and_miss_below():
    at = suite.evaluate_goals(_result(100e6, 0.25, 20e6, 100, 120))
    assert [g["status"] for g in at] == ["PASS"] * 5
    below = suite.evaluate_goals(_result(99.9e6, 0.2499, 19.9e6, 100, 121, 2**30 + 1))
    assert [g["status"] for g in below] == ["MISS"] * 5
    no_big = suite.evaluate_goals(_result(1e6, 0.1, None, 100, None))
    assert [g["status"] for g in no_big[3:]] == ["N/A", "N/A"] and no_big[2]["measured"] == 1e6


def test_quick_suite_json_has_every_documented_key(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(suite, "QUICK", _tiny())
    parser = cli.argparse.ArgumentParser()
    cli.add_bench_parser(parser.add_subparsers(dest="command"))
    ns = parser.parse_args(["bench", "--suite", "quick", "--out", str(tmp_path), "--peers", "backtrader",
                            "--workdir", str(tmp_path / "cache")])
    assert cli.run_bench_command(ns) == 0
    (js,) = tmp_path.glob("bench-quick-*.json")
    res = json.loads(js.read_text())
    md = js.with_suffix(".md").read_text()
    assert capsys.readouterr().out.strip() == md.strip()
    assert set(res) == set(suite.RESULT_KEYS)
    for key in ("numpy", "numba", "python", "cpu_count", "mem_total_bytes"):
        assert key in res["machine"]
    assert {"vectorbt", "backtrader", "backtesting", "hftbacktest"} <= set(res["versions"])
    wl = {(r["workload"], r["strategy"]): r for r in res["workloads"]}
    assert set(wl) == {(w, s) for w, keys in suite.QUICK.workloads for s in keys}
    assert wl["l1_quotes", "mm_risk"]["status"] == "ok"  # (d): the shipped rulebook in the loop
    for r in res["workloads"]:
        if r["status"] == "ok":
            assert {"events_per_s", "wall_events_per_s", "run_s", "fills", "orders"} <= set(r)
    ref = res["reference"]
    assert ref["engine_zero_latency"]["agrees_with_bare"] is True
    assert ref["python_loop"]["agrees_with_bare"] is True and ref["python_loop"]["events_measured"] == 1000
    (sc,) = res["scaling"]
    assert sc["events"] == 2000 and sc["peak_rss_bytes"] > sc["baseline_rss_bytes"] > 0
    assert {"cold_s", "cached_s", "cached_start_to_result_s"} <= set(res["compile"])
    (peer,) = res["peers"]
    assert set(peers.PEER_ROW_KEYS) <= set(peer) and peer["events"] == 1500
    if peer["status"] == "ok":  # backtrader installed: same decisions, fills at the bar's close
        assert peer["trades_agree"] is True
    assert [g["status"] in ("PASS", "MISS", "N/A") for g in res["goals"]] == [True] * 5
    for heading in ("## Goals", "## Workloads", "## Reference loops", "## Scaling", "## Compile", "## Peers"):
        assert heading in md
    assert Path(tmp_path / "cache").is_dir()  # the Parquet cache stays where --workdir said
