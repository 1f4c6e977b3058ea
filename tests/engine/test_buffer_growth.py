"""Record buffers grow in place when they fill up: the run is not repeated, results do not change.

The loop pauses (KERNEL_NEED_SPACE) before a step that could overflow a buffer; the front door
doubles what is over half full and resumes at the same event. Growing must be invisible in the
records: a run forced to grow many times equals one that started with room to spare.
"""

from __future__ import annotations

import numpy as np

from tickguard.engine import backtest as bt
from tickguard.engine.config import EngineConfig, Latency, LatencyConfig
from tickguard.strategies.ema_crossover import ema_crossover

from test_twin import INST, _events  # noqa: E402  (the twin's random market, two instruments)


def _run(caps, ev):
    lat = LatencyConfig(submit=Latency(entry_ns=700, response_ns=700))
    b = bt.Backtest(ev, ema_crossover(instrument=0, fast=3, slow=8, size=2), instruments=INST,
                    config=EngineConfig(latency=lat, sample_every=3, chunk_rows=997))
    return b._run_once(caps)


def test_tiny_buffers_grow_and_give_identical_records():
    ev = _events(np.random.default_rng(5), 20_000, feed_ns=500)
    roomy = _run({"orders": 1 << 16, "oe": 1 << 18, "fills": 1 << 17, "eq": 1 << 15, "risk": 1 << 8,
                  "resp": 1 << 12}, ev)
    tiny = _run({"orders": 8, "oe": 64, "fills": 64, "eq": 8, "risk": 16, "resp": 64}, ev)
    assert roomy.timings["buffer_grows"] == 0 and tiny.timings["buffer_grows"] >= 5
    assert len(roomy.fills) > 1000  # enough activity to have grown every buffer many times
    for name in ("order_events", "fills", "equity", "risk_events", "orders"):
        assert getattr(tiny, name).tobytes() == getattr(roomy, name).tobytes(), name
    assert tiny.result_hash == roomy.result_hash
