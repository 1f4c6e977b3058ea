"""The loop's section timings (Backtest(sections=True), benchmarks/sections.py): the same records
as the build without them, counts that match the records, and sections that nest."""

from __future__ import annotations

import numpy as np
import pytest

from tickguard.benchmarks.engine import canonical_table, quote_workload
from tickguard.benchmarks.sections import section_table
from tickguard.engine import backtest as backtest_module
from tickguard.engine.backtest import Backtest
from tickguard.engine.config import EngineConfig, Latency, LatencyConfig
from tickguard.engine.internal import CYCLES_AVAILABLE
from tickguard.engine.records import OE_DENIED, OE_FILL, OE_REJECT, OE_SUBMIT
from tickguard.risk import RiskGate
from tickguard.strategies.ema_crossover import ema_crossover

TOP = ("steps", "idle_exchange", "matching", "arrivals", "responses", "requests", "samples")
needs_counter = pytest.mark.skipif(not CYCLES_AVAILABLE,
                                   reason="the sections need the x86-64 time-stamp counter")


def _run(sections: bool, risk: object) -> backtest_module.Result:
    events = quote_workload(60_000, seed=3)
    table = canonical_table()
    lat = Latency(entry_ns=100_000, response_ns=100_000)
    cfg = EngineConfig(latency=LatencyConfig(submit=lat))
    return Backtest(events, ema_crossover(fast=50.0, slow=200.0, size=1), instruments=table, config=cfg,
                    risk=risk, sections=sections).run()


@pytest.fixture(scope="module")
def default_gate() -> RiskGate:
    # the shipped rulebook unrelaxed: its repeat throttle denies some of the EMA's orders, so the
    # gate is called for orders the activity monitor never sees
    return RiskGate.load(instruments=canonical_table())


@pytest.fixture(scope="module")
def timed(default_gate: RiskGate) -> backtest_module.Result:
    return _run(True, default_gate)


@needs_counter
def test_the_timed_build_writes_the_same_records(default_gate, timed):
    plain = _run(False, default_gate)
    assert plain.sections is None
    assert timed.result_hash == plain.result_hash
    for name in ("order_events", "fills", "equity", "risk_events", "orders"):  # byte for byte (NaN prices)
        assert getattr(timed, name).tobytes() == getattr(plain, name).tobytes()


@needs_counter
def test_the_calls_counted_are_the_ones_the_records_show(timed):
    oe = timed.order_events
    submits = int((oe["event"] == OE_SUBMIT).sum())
    denied = int((oe["event"] == OE_DENIED).sum())
    assert denied > 0  # the workload must reach the gate's denials (else the check below is weaker)
    assert timed.sections["gate_calls"] == submits  # every submit is gated, denied or not
    # the activity monitor: each submit the gate passed, and each fill or exchange reject the
    # strategy was told of by the end of the data (a response still on its way is not counted)
    last_local = int(quote_workload(60_000, seed=3)["ts_local"][-1])
    told = (np.isin(oe["event"], [OE_FILL, OE_REJECT])) & (oe["ts_local"] <= last_local)
    assert timed.sections["activity_calls"] == (submits - denied) + int(told.sum())


@needs_counter
def test_the_sections_nest_within_the_loop(timed):
    s = timed.sections
    assert s["loop"] > 0.0 and all(s[name] >= 0.0 for name in (*TOP, "gate", "activity"))
    assert sum(s[name] for name in TOP) <= s["loop"]
    assert s["gate"] <= s["requests"]
    assert s["activity"] <= s["requests"] + s["responses"]
    assert s["steps"] > 0.0 and s["requests"] > 0.0 and s["gate"] > 0.0
    row = section_table(s, len(timed.orders))
    assert row["other"] == pytest.approx(row["loop"] - sum(row[name] for name in TOP))
    assert row["other"] >= -1e-9 * row["loop"]


def test_a_machine_without_the_counter_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(backtest_module, "CYCLES_AVAILABLE", False)
    with pytest.raises(ValueError, match="sections=True.*time-stamp counter"):
        Backtest(quote_workload(1000), ema_crossover(fast=5.0, slow=20.0, size=1),
                 instruments=canonical_table(), sections=True)


def test_section_table_refuses_no_orders():
    with pytest.raises(ValueError, match="per must be > 0"):
        section_table({}, 0)
