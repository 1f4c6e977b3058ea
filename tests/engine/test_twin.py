"""The compiled loop agrees exactly with its pure-Python twin.

The same scenarios run here (numba) and in a subprocess with NUMBA_DISABLE_JIT=1, where the
generated loop, the exchange kernels and the strategy run as plain Python. Records and the result
hash must be identical bit for bit: a difference means numba and Python disagree on some operation
(integer/float casts, rounding, the counter-based RNG), which would also make results depend on
how the engine was run. The subprocess imports this file by path and calls :func:`dump`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tickguard.data.schema import KIND_QUOTE, KIND_TRADE, Instrument, InstrumentTable, empty_events
from tickguard.engine.backtest import run
from tickguard.engine.config import EngineConfig, FeeConfig, Latency, LatencyConfig
from tickguard.engine.records import OT_FOK, OT_IOC, OT_LIMIT, OT_MARKET, OT_POST_ONLY
from tickguard.engine.scripted import cancel, modify, scripted, submit
from tickguard.strategies.ema_crossover import ema_crossover

INST = InstrumentTable([Instrument(0, "A", tick_size=0.01, lot_size=1),
                        Instrument(1, "B", tick_size=0.25, lot_size=1, multiplier=50.0)])
RECORDS = ("order_events", "fills", "equity", "risk_events", "orders")
SCENARIOS = (0, 1, 2, 3, 4)
N_EVENTS = 2000


def _events(rng: np.random.Generator, n: int, feed_ns: int) -> np.ndarray:
    ev = empty_events(n)
    ts = 1_000_000 + np.cumsum(rng.integers(1, 3000, n))
    ev["ts_exch"] = ts
    ev["ts_local"] = np.maximum.accumulate(ts + rng.integers(0, feed_ns + 1, n))
    inst = rng.integers(0, 2, n)
    tick = np.where(inst == 0, 0.01, 0.25)
    base = np.where(inst == 0, 10_000, 400)
    walk = np.zeros(n, dtype=np.int64)
    for k in (0, 1):
        m = inst == k
        walk[m] = np.cumsum(rng.integers(-1, 2, m.sum()))
    bid_t = base + walk - rng.integers(0, 2, n)
    ask_t = bid_t + rng.integers(1, 3, n)
    is_trade = rng.random(n) < 0.3
    side = np.where(rng.random(n) < 0.5, 1, -1)
    ev["instrument"] = inst
    ev["kind"] = np.where(is_trade, KIND_TRADE, KIND_QUOTE)
    ev["side"] = np.where(is_trade, side, 0)
    trade_t = np.where(side > 0, ask_t, bid_t) + side * (rng.random(n) < 0.15)
    ev["price"] = np.where(is_trade, np.round(trade_t * tick, 10), np.nan)
    ev["size"] = np.where(is_trade, rng.integers(1, 15, n), np.nan)
    q = ~is_trade
    ev["bid_px"] = np.where(q, np.round(bid_t * tick, 10), np.nan)
    ev["ask_px"] = np.where(q, np.round(ask_t * tick, 10), np.nan)
    ev["bid_sz"] = np.where(q, rng.integers(0, 20, n), np.nan)
    ev["ask_sz"] = np.where(q, rng.integers(1, 20, n), np.nan)
    return ev


def scenario(k: int):
    """(events, strategy, config) of scenario ``k``: random market, random order flow."""
    rng = np.random.default_rng(1000 + k)
    if k == 4:  # L2: a synthetic stream with 3 depth levels; orders big enough to walk the book
        from tickguard.data.synth import SynthConfig, synthesize

        ev, _ = synthesize(N_EVENTS * 3, seed=5, config=SynthConfig(depth_levels=3))
        return ev, ema_crossover(instrument=0, fast=5, slow=20, size=700), EngineConfig(
            book_levels=3, sample_every=50, latency=LatencyConfig(submit=Latency(entry_ns=900, response_ns=900)))
    ev = _events(rng, N_EVENTS, feed_ns=[0, 800, 2500, 300][k])
    if k == 3:
        strat = ema_crossover(instrument=0, fast=5, slow=20, size=3)
    else:
        steps, n_sub = [], 0
        for at in np.sort(rng.integers(0, N_EVENTS, 300)):
            i = int(rng.integers(0, 2))
            tick = 0.01 if i == 0 else 0.25
            mid_t = (10_000 if i == 0 else 400)
            prev = ev[: at + 1][(ev["instrument"][: at + 1] == i) & ((ev["kind"][: at + 1] & KIND_QUOTE) != 0)]
            if len(prev):
                mid_t = int(round(0.5 * (prev["bid_px"][-1] + prev["ask_px"][-1]) / tick))
            price = round((mid_t + int(rng.integers(-3, 4))) * tick, 10)
            qty = int(rng.integers(1, 10))
            u = rng.random()
            if u < 0.65 or n_sub == 0:
                otype = int(rng.choice([OT_MARKET, OT_LIMIT, OT_LIMIT, OT_IOC, OT_FOK, OT_POST_ONLY]))
                steps.append(submit(int(at), int(rng.choice([1, -1])), qty, price, order_type=otype,
                                    instrument=i))
                n_sub += 1
            elif u < 0.85:
                steps.append(cancel(int(at), int(rng.integers(0, n_sub))))
            else:
                steps.append(modify(int(at), int(rng.integers(0, n_sub)), price, qty))
        strat = scripted(steps)
    lognormal = Latency(entry_ns=1500, response_ns=900, mode="lognormal", entry_sigma=0.6,
                        response_sigma=0.4)
    config = EngineConfig(
        initial_cash=250_000.0,
        latency=LatencyConfig(submit=lognormal if k != 1 else Latency(entry_ns=700, response_ns=700),
                              cancel=Latency(entry_ns=400, response_ns=300)),
        fees=FeeConfig(maker_bps=-0.3, taker_bps=1.7, taker_per_unit=0.003),
        impact_ticks=[1.0, -1.0, 2.0, 1.0][k],
        queue_model=["probabilistic", "conservative", "probabilistic", "conservative"][k],
        queue_power=[2.0, 2.0, 1.3, 2.0][k],
        mark=["mid", "last", "side", "mid"][k],
        sample_every=50, seed=11 + k,
    )
    return ev, strat, config


def run_scenario(k: int):
    ev, strat, config = scenario(k)
    return run(ev, strat, instruments=INST, config=config)


def dump(out_dir: str) -> None:
    """Subprocess entry: run every scenario and save its hash and records."""
    for k in SCENARIOS:
        res = run_scenario(k)
        np.savez(Path(out_dir) / f"s{k}.npz", result_hash=np.array(res.result_hash),
                 **{name: getattr(res, name) for name in RECORDS})


def test_numba_loop_agrees_with_pure_python_twin(tmp_path):
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('tickguard_twin_scenarios', sys.argv[1])\n"
        "mod = importlib.util.module_from_spec(spec)\n"
        "sys.modules[spec.name] = mod\n"
        "spec.loader.exec_module(mod)\n"
        "mod.dump(sys.argv[2])\n"
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    proc = subprocess.run([sys.executable, "-c", code, str(Path(__file__).resolve()), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for k in SCENARIOS:
        res = run_scenario(k)
        twin = np.load(tmp_path / f"s{k}.npz")
        assert len(res.fills) > 10, f"scenario {k} trades too little to compare anything"
        for name in RECORDS:
            ours, theirs = getattr(res, name), twin[name]
            assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, (k, name)
            if ours.tobytes() != theirs.tobytes():
                bad = next(i for i in range(len(ours)) if ours[i].tobytes() != theirs[i].tobytes())
                raise AssertionError(f"scenario {k}: {name}[{bad}] differs:\n numba  {ours[bad]}\n "
                                     f"python {theirs[bad]}")
        assert res.result_hash == str(twin["result_hash"]), k
