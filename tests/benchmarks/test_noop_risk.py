"""The engine benchmark's no-op-hooks gate: the kill switch's structure, with no rule in effect."""

from __future__ import annotations

import sys

from tickguard.benchmarks.engine import _engine_once, canonical_table, full_rulebook_gate, quote_workload
from tickguard.benchmarks.noop_risk import NoOpHooksGate
from tickguard.engine.codegen import compile_loop
from tickguard.strategies.ema_crossover import ema_crossover_nb


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
