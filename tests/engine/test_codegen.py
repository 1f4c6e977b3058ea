"""The generated loop's cache key: it must change whenever any code the loop inlines changes."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from numba import njit

from tickguard.engine import strategy as strategy_module
from tickguard.engine.codegen import _sources_reached, compile_loop
from tickguard.engine.gate import pass_through_gate_nb
from tickguard.strategies import ema_crossover as ema_module


def test_key_covers_helpers_the_strategy_calls_in_other_modules():
    # ema_crossover_nb calls submit_market_nb, which lives in engine/strategy.py: an edit there
    # must reach the key, or numba would reuse a stale compiled loop.
    text = _sources_reached(ema_module.ema_crossover_nb.py_func)
    assert Path(inspect.getfile(ema_module)).read_text() in text
    assert Path(inspect.getfile(strategy_module)).read_text() in text


def test_strategy_defined_inside_a_function_is_refused_with_the_reason():
    @njit
    def local_strategy(reason, ev, order, now, mkt, pos, orders, n_orders, params, state, aux, req):
        return 0

    with pytest.raises(TypeError, match="top level of an importable module"):
        compile_loop(local_strategy, pass_through_gate_nb)
