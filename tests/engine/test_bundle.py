"""Array bundles (engine/bundle.py): many arrays passed to a jitted kernel as one pointer."""

from __future__ import annotations

import inspect
import re
import sys
from collections import namedtuple

import numpy as np
import pytest
from numba import config as numba_config
from numba import njit
from numba.core.errors import TypingError

from tickguard.engine.bundle import ArrayBundle, bundle
from tickguard.engine.internal import internal_njit, not_inlined

pytestmark = pytest.mark.skipif(numba_config.DISABLE_JIT, reason="nothing compiles in the twin")

Arrays = namedtuple("Arrays", ["prices", "grid", "ids", "rows"])
ROW = np.dtype([("qty", np.float64), ("side", np.int64)], align=True)


def _step(t, arr):
    """The work, written once: jitted below for a bundle and for a named tuple of arrays."""
    arr.prices[0] += t
    arr.grid[1, 2] = arr.prices[0] * arr.ids.shape[0]
    arr.rows[2]["qty"] += arr.grid[1, 2]
    return arr.rows[2]["qty"] + arr.ids[-1]  # a negative index: numba's wrap-around on a view


_step_bundled = internal_njit(cache=False)(_step)  # (cached code cannot be inspected)
_step_tupled = njit(_step)


@njit
def _run_bundled(prices, grid, ids, rows):
    b = bundle(Arrays(prices, grid, ids, rows))
    total = 0.0
    for t in range(4):
        total += _step_bundled(float(t), b)
    return total


@njit
def _run_tupled(prices, grid, ids, rows):
    a = Arrays(prices, grid, ids, rows)
    total = 0.0
    for t in range(4):
        total += _step_tupled(float(t), a)
    return total


def _arrays():
    rows = np.zeros(3, dtype=ROW)
    rows["qty"] = [1.0, 2.0, 3.0]
    return np.array([0.5, 1.5]), np.zeros((2, 3)), np.arange(5, dtype=np.int64), rows


def test_a_bundle_reads_and_writes_the_callers_arrays_as_the_named_tuple_does():
    a, b = _arrays(), _arrays()
    assert _run_bundled(*a) == _run_tupled(*b)
    for x, y in zip(a, b):  # the writes landed in the caller's arrays, the same writes
        assert x.tobytes() == y.tobytes()
    c = _arrays()  # and as plain Python, the twin, computes them
    total = sum(_step(float(t), Arrays(*c)) for t in range(4))
    assert total == _run_bundled(*_arrays())
    assert all(x.tobytes() == y.tobytes() for x, y in zip(a, c))


def _params(dispatcher) -> list[str]:
    """The named parameters (``%arg.*``) of the kernel's own LLVM function."""
    ir = dispatcher.inspect_llvm(dispatcher.signatures[0])
    define = next(line for line in ir.splitlines() if line.startswith("define") and "_step" in line
                  and "cpython" not in line)
    return re.findall(r"%arg\.[\w.]+", define)


def test_the_kernel_receives_one_pointer_for_all_the_arrays():
    _run_bundled(*_arrays())
    _run_tupled(*_arrays())
    (sig,) = _step_bundled.signatures
    assert isinstance(sig[1], ArrayBundle) and sig[1].names == Arrays._fields
    assert _params(_step_bundled) == ["%arg.t", "%arg.arr"]  # the time and one pointer
    # the fields' loads are marked invariant: LLVM may repeat or drop them freely
    assert "!invariant.load" in _step_bundled.inspect_llvm(sig)
    # a named tuple travels flattened: every field of every array is a parameter of its own
    assert len(_params(_step_tupled)) > 20


def test_no_reference_is_taken_or_leaked():
    a = _arrays()
    before = [sys.getrefcount(x) for x in a]
    for _ in range(3):
        _run_bundled(*a)
    assert [sys.getrefcount(x) for x in a] == before


@njit
def _bundle_of_a_plain_tuple(x):
    return bundle((x, x))


def test_only_a_named_tuple_of_arrays_makes_a_bundle():
    with pytest.raises(TypingError):
        _bundle_of_a_plain_tuple(np.zeros(2))


def test_the_loops_kernels_take_the_loop_bundle():
    # the loop's request and response kernels receive the loop's arrays as one bundle (a change
    # of signature would bring back ~190 words per call)
    from tickguard.engine import loop_kernels
    from tickguard.engine.nbtypes import LOOP, LoopArrays

    assert LOOP.names == LoopArrays._fields and len(LOOP.members) == len(LoopArrays._fields)
    (sig,) = loop_kernels._handle_requests.signatures
    assert LOOP in sig
    for kernel in (loop_kernels._kill_switch_actions, loop_kernels._flatten,
                   loop_kernels._kill_or_flatten, loop_kernels._sample_equity):
        assert list(inspect.signature(kernel.py_func).parameters)[-1] == "lp", kernel


@internal_njit
def _never_inlined_reader(b):
    not_inlined()
    return b.prices[1]


@njit
def _reader_caller(prices, grid, ids, rows):
    return _never_inlined_reader(bundle(Arrays(prices, grid, ids, rows)))


def test_a_bundle_crosses_an_out_of_line_call():
    assert _reader_caller(*_arrays()) == 1.5
