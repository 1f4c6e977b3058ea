"""Progress reporting: ``Backtest(progress=...)`` after each chunk, and ``tickguard run`` on stderr.

Oracles are independent of the engine: the number of events the synthesizer made, the number of
chunks (``chunk_rows`` slices; of each row group for Parquet), the rows read so far (the engine cannot have processed more),
and the hash of the same run without a callback.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pyarrow.parquet as pq
import pytest

from tickguard.data.synth import synthesize, synthesize_to_parquet
from tickguard.engine import backtest as bt
from tickguard.engine.config import EngineConfig
from tickguard.reports.cli import main
from tickguard.strategies.ema_crossover import ema_crossover

N_EVENTS, CHUNK = 5_000, 700
RECORDS = ("order_events", "fills", "equity", "risk_events", "orders")


def _strategy():
    return ema_crossover(fast=5, slow=20)


def _check_calls(calls, chunk_sizes):
    """``calls``: what progress received; ``chunk_sizes``: the rows of each chunk streamed."""
    assert len(calls) == len(chunk_sizes)  # once per chunk
    done = [n for n, _ in calls]
    assert all(isinstance(n, int) for n in done)
    assert done == sorted(done) and done[-1] == sum(chunk_sizes)
    assert len(set(done)) == len(done)  # this market needs little carry-over: counts strictly rise
    for n, read in zip(done, np.cumsum(chunk_sizes)):
        assert n <= read  # no more than the rows read so far
    elapsed = [e for _, e in calls]
    assert elapsed[0] >= 0.0 and elapsed == sorted(elapsed)


@pytest.fixture(scope="module")
def market():
    return synthesize(N_EVENTS, seed=11)


def test_called_once_per_chunk_up_to_the_total(market):
    events, table = market
    calls = []
    res = bt.Backtest(events, _strategy(), instruments=table, config=EngineConfig(chunk_rows=CHUNK),
                      progress=lambda n, e: calls.append((n, e))).run()
    assert len(events) == N_EVENTS and res.n_events == N_EVENTS
    assert len(res.fills) > 0  # the strategy trades: the hash comparison below is not of empty records
    _check_calls(calls, [len(events[s : s + CHUNK]) for s in range(0, N_EVENTS, CHUNK)])


def test_result_is_the_same_with_and_without_progress(market):
    events, table = market
    cfg = EngineConfig(chunk_rows=CHUNK)
    plain = bt.run(events, _strategy(), instruments=table, config=cfg)
    calls = []
    watched = bt.run(events, _strategy(), instruments=table, config=cfg,
                     progress=lambda n, e: calls.append((n, e)))  # forwarded by the module-level run
    assert len(calls) == math.ceil(N_EVENTS / CHUNK)
    assert watched.result_hash == plain.result_hash
    for name in RECORDS:
        assert getattr(watched, name).tobytes() == getattr(plain, name).tobytes(), name
    assert "progress" not in json.dumps(watched.config.describe(), default=str)  # not a config


def test_streamed_parquet_reports_each_chunk(tmp_path):
    path = synthesize_to_parquet(tmp_path / "ev.parquet", 3_000, seed=4, chunk_rows=1_000)
    calls = []
    res = bt.run(str(path), _strategy(), config=EngineConfig(chunk_rows=400),
                 progress=lambda n, e: calls.append((n, e)))
    assert res.n_events == 3_000
    # the file is read a row group at a time, each in slices of at most chunk_rows
    groups = [pq.ParquetFile(path).metadata.row_group(g).num_rows for g in range(3)]
    assert groups == [1_000] * 3
    _check_calls(calls, [400, 400, 200] * 3)


def test_a_callback_that_raises_stops_the_run(market):
    events, table = market

    def stop(n, e):
        if n > CHUNK:
            raise KeyboardInterrupt  # what a user's Ctrl-C looks like from inside the callback

    with pytest.raises(KeyboardInterrupt):
        bt.run(events, _strategy(), instruments=table, config=EngineConfig(chunk_rows=CHUNK), progress=stop)


def test_progress_must_be_callable(market):
    events, table = market
    with pytest.raises(TypeError, match=r"progress: got 5; pass a callable"):
        bt.Backtest(events, _strategy(), instruments=table, progress=5)


# --- the command line -------------------------------------------------------------------------

CLI_EVENTS, CLI_CHUNK = 6_000, 500
LINE = re.compile(r"tickguard run: ([\d,]+) events, (\d+\.\d) M events/s")


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(f'[data]\nsynth = {{ events = {CLI_EVENTS}, seed = 3 }}\n\n'
                    '[strategy]\nname = "ema_crossover"\nparams = { fast = 5, slow = 20 }\n\n'
                    f'[engine]\nchunk_rows = {CLI_CHUNK}\n')
    return path


@pytest.fixture
def slow_clock(monkeypatch):
    """Wrap the engine's front door so the CLI's callback sees 0.9 s more per chunk (a tiny input
    then behaves like a long run); records what the CLI passed and what its callback was told."""
    real_run, seen = bt.run, {"given": [], "calls": []}

    def fake_run(data, strategy, progress=None, **kwargs):
        seen["given"].append(progress)
        if progress is None:
            return real_run(data, strategy, **kwargs)

        def slowed(n, _elapsed):
            e = 0.9 * (len(seen["calls"]) + 1)
            seen["calls"].append((n, e))
            progress(n, e)

        return real_run(data, strategy, progress=slowed, **kwargs)

    monkeypatch.setattr(bt, "run", fake_run)
    return seen


def test_run_prints_throttled_progress_on_stderr_only(config_file, tmp_path, slow_clock, capsys):
    assert main(["run", str(config_file), "--out", str(tmp_path / "o"), "--no-report"]) == 0
    captured = capsys.readouterr()
    calls = slow_clock["calls"]
    assert len(calls) == math.ceil(CLI_EVENTS / CLI_CHUNK)
    assert "events/s" not in captured.out
    lines = captured.err.splitlines()
    assert lines and all(LINE.fullmatch(line) for line in lines), captured.err
    # one line each time >= 2 s have passed since the last line (none in the first 2 s)
    expected, last = [], 0.0
    for n, e in calls:
        if e - last >= 2.0:
            expected.append(f"tickguard run: {n:,} events, {n / e / 1e6:.1f} M events/s")
            last = e
    assert lines == expected and 1 < len(lines) < len(calls)


@pytest.mark.parametrize("flag", ["--quiet", "--json"])
def test_run_quiet_and_json_write_nothing_to_stderr(flag, config_file, tmp_path, slow_clock, capsys):
    assert main(["run", str(config_file), "--out", str(tmp_path / "o"), "--no-report", flag]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert slow_clock["given"] == [None]  # no callback at all: the engine pays nothing
    if flag == "--json":
        assert json.loads(captured.out)["metrics"]  # stdout is still the one JSON document
    else:
        assert captured.out == ""
