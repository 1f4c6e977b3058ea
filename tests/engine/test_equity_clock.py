"""The equity clock samples exactly where its definition says, whatever stops the strategy's steps.

The oracle is the clock's definition (EngineConfig: every ``sample_every`` events and/or at the
first event on or after each multiple of ``sample_dt_ns``, either resetting the event count; a
final sample at the last event), written out here event by event. The engine does not walk the
events one by one: its strategy's steps run ahead until an order, a due arrival or response, or
the clock stops them, and a chunk boundary stops them too; the samples must not depend on that.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tickguard.data.schema import KIND_QUOTE, Instrument, InstrumentTable, empty_events
from tickguard.engine.backtest import run
from tickguard.engine.config import EngineConfig, Latency, LatencyConfig
from tickguard.engine.records import OT_MARKET
from tickguard.engine.scripted import scripted, submit

INST = InstrumentTable([Instrument(0, "X", tick_size=0.01, lot_size=1)])


def expected_samples(ts: np.ndarray, every: int, dt: int) -> list[int]:
    """Global indices of the sampled events, by the definition, one event at a time, in exact
    integers (Python's ints; it compares an int with the float infinities exactly)."""
    out = []
    since = 0
    next_t = -math.inf if dt > 0 else math.inf
    for g, t in enumerate(ts.tolist()):
        since += 1
        if (every > 0 and since >= every) or t >= next_t:
            if dt > 0 and t >= next_t:
                next_t = (t // dt + 1) * dt
            out.append(g)
            since = 0
    out.append(len(ts) - 1)  # the final sample, always
    return out


def irregular_quotes(n: int, seed: int, start: int = 1_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ev = empty_events(n)
    gaps = rng.choice([1, 7, 40, 250, 1_000], size=n, p=[0.3, 0.3, 0.2, 0.15, 0.05])
    ev["ts_local"] = start + np.cumsum(gaps)
    ev["ts_exch"] = ev["ts_local"] - rng.integers(0, 5, size=n)  # some feed latency
    ev["kind"] = KIND_QUOTE
    mid = 100.0 + 0.01 * np.cumsum(rng.choice([-1, 0, 1], size=n))
    ev["bid_px"], ev["ask_px"] = mid - 0.01, mid + 0.01
    ev["bid_sz"] = ev["ask_sz"] = 5.0
    return ev


@pytest.mark.parametrize("every", [0, 1, 3, 7, 50])
@pytest.mark.parametrize("dt", [0, 900])
@pytest.mark.parametrize("chunk_rows", [37, 100_000])
def test_samples_fall_where_the_clock_says(every, dt, chunk_rows):
    n = 400
    ev = irregular_quotes(n, seed=every * 1000 + dt + chunk_rows)
    # orders stop the steps (and their responses, 300 ns later, stop them again, between events)
    steps = [submit(k, 1 if k % 2 else -1, 1.0, order_type=OT_MARKET) for k in (5, 6, 50, 123, 124, 301)]
    lat = LatencyConfig(submit=Latency(entry_ns=200, response_ns=300))
    res = run(ev, scripted(steps), instruments=INST,
              config=EngineConfig(latency=lat, sample_every=every, sample_dt_ns=dt,
                                  chunk_rows=chunk_rows))
    assert len(res.fills) == 6  # the orders really ran (and so stopped the steps)
    want = expected_samples(ev["ts_local"], every, dt)
    assert res.equity["event_index"].tolist() == want
    assert res.equity["ts"].tolist() == ev["ts_local"][want].tolist()


@pytest.mark.parametrize("dt", [900, 1_000, 1_000_000_007])
def test_time_clock_exact_at_epoch_times(dt):
    # Times of November 2023 in ns, where a float64 holds a time to 256 ns only. The clock kept
    # in floats (until 3 December 2026) sampled events up to 128 ns before a multiple of dt, and
    # then every event until past it (its next multiple rounded back down): the data here shows
    # that difference (floats_would_sample); the engine now keeps the clock in integer ns.
    n = 3_000 if dt < 10**6 else 1_000
    ev = irregular_quotes(n, seed=dt % 10**4, start=1_700_000_000_000_000_000)
    if dt > 10**6:  # gaps of a second or so: every multiple is crossed
        ev["ts_local"] = 1_700_000_000_000_000_000 + np.cumsum(
            np.random.default_rng(1).integers(10**8, 2 * 10**9, size=n))
        ev["ts_exch"] = ev["ts_local"]
    res = run(ev, scripted([]), instruments=INST,
              config=EngineConfig(sample_every=0, sample_dt_ns=dt, chunk_rows=100_000))
    want = expected_samples(ev["ts_local"], 0, dt)
    floats_would_sample, next_t = [], -math.inf
    for g, t in enumerate(ev["ts_local"].tolist()):
        if float(t) >= next_t:
            next_t = (math.floor(float(t) / dt) + 1.0) * float(dt)
            floats_would_sample.append(g)
    assert len(want) > 100
    if dt < 10**6:
        assert floats_would_sample + [n - 1] != want
    assert res.equity["event_index"].tolist() == want
