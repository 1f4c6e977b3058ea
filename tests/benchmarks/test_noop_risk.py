"""The engine benchmark's no-op-hooks gate: the kill switch's structure, with no rule in effect."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tickguard.benchmarks.engine import _engine_once, canonical_table, full_rulebook_gate, quote_workload
from tickguard.benchmarks.noop_risk import NoOpHooksGate
from tickguard.data.schema import KIND_TRADE
from tickguard.engine.codegen import compile_loop
from tickguard.strategies.ema_crossover import ema_crossover_nb

LOBSTER = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lobster"


def test_noop_hooks_trade_exactly_like_the_pass_through_loop_in_a_loop_that_carries_the_kill_switch():
    table = canonical_table()
    ev = quote_workload(20_000)
    gate = NoOpHooksGate(full_rulebook_gate(table).rulebook, source="test")
    plain = _engine_once(ev, table)
    noop = _engine_once(ev, table, gate)
    assert len(plain.fills) > 50  # the canonical strategy trades: the comparison is not of nothing
    for name in ("fills", "orders", "order_events", "equity"):
        assert getattr(noop, name).tobytes() == getattr(plain, name).tobytes(), name
    assert len(noop.risk_events) == 0
    # the point of the gate: its loop is compiled with the kill switch's code, unlike the
    # pass-through module's (else the benchmark would time the same loop twice)
    loop = compile_loop(ema_crossover_nb, gate.module)
    assert sys.modules[loop.py_func.__module__]._RISK is True
    assert sys.modules[compile_loop(ema_crossover_nb).py_func.__module__]._RISK is False


def test_noop_hooks_trade_exactly_like_the_pass_through_loop_on_real_quotes_and_trades():
    """The same on the LOBSTER day (AMZN, quotes and trades): with a kill switch, the idle exchange
    takes the rows it owes before the gate, not at the next event (loop_template.py, step 4); the
    rows it owes here hold trades too, which it takes one by one."""
    if not LOBSTER.exists():
        pytest.skip(f"the shared LOBSTER sample is not in {LOBSTER}")
    from tickguard.data.lobster import read_lobster

    ev, table, _ = read_lobster(next(LOBSTER.glob("*message_1.csv")), next(LOBSTER.glob("*orderbook_1.csv")))
    ev = ev[:60_000]
    gate = NoOpHooksGate(full_rulebook_gate(table).rulebook, source="test")
    plain = _engine_once(ev, table)
    noop = _engine_once(ev, table, gate)
    assert len(plain.fills) > 50 and (ev["kind"] & KIND_TRADE).sum() > 1_000
    for name in ("fills", "orders", "order_events", "equity"):
        assert getattr(noop, name).tobytes() == getattr(plain, name).tobytes(), name
    assert len(noop.risk_events) == 0
