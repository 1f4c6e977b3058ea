"""internal_njit: kernels compiled with no entry point for Python callers (see engine/internal.py)."""

from __future__ import annotations

import numpy as np
import pytest
from numba import config as numba_config
from numba import njit
from numba import types as _t

from tickguard.engine import book, exchange, latency
from tickguard.engine.internal import internal_njit

pytestmark = pytest.mark.skipif(numba_config.DISABLE_JIT, reason="nothing compiles in the twin")


@internal_njit
def _twice(x):
    return 2.0 * x


@internal_njit(_t.float64(_t.float64))
def _thrice(x):
    return 3.0 * x


@njit
def _caller(x):
    return _twice(x) + _thrice(x)


def _no_entry_points(dispatcher):
    opts = dispatcher.targetoptions
    return bool(opts.get("no_cpython_wrapper")) and bool(opts.get("no_cfunc_wrapper"))


def test_compiled_without_entry_points_and_jitted_callers_link_it():
    assert _caller(2.0) == 10.0
    assert _no_entry_points(_twice) and _no_entry_points(_thrice)
    assert _twice.signatures and _thrice.signatures  # compiled (or loaded from the cache)
    assert not _no_entry_points(_caller)  # an ordinary njit function keeps its wrapper


def test_a_python_call_runs_a_separate_copy_with_an_entry_point():
    # numba would jump through a null entry point (a segfault): the dispatcher compiles, once, an
    # uncached copy that has one, and the result is the same code's
    assert _thrice(1.5) == 4.5
    assert _twice(np.float64(4.0)) == 8.0
    entry = _twice.__dict__["_python_entry"]
    assert _twice(1.0) == 2.0 and _twice.__dict__["_python_entry"] is entry
    assert not _no_entry_points(entry) and entry.signatures


def test_the_engines_kernels_are_internal():
    # the cold-compile saving depends on these staying wrapper-less (README, "Compile time")
    for kernel in (exchange._execute_nb, exchange._fill_nb, exchange.emit_nb, exchange.on_market_nb,
                   exchange.process_arrivals_nb, book.apply_depth_nb, latency.latency_nb):
        assert type(kernel).__name__ == "_InternalDispatcher" and _no_entry_points(kernel), kernel
