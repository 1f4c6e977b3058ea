"""min2/max2 (engine/minmax.py) against Python's min/max and numba's builtin min/max: the same
value, bit for bit (NaN and signed zeros included), and the same result type as numba's; and the
engine's kernels call neither the builtins nor ``int()`` (each compiles per argument types)."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit, typeof

from tickguard.engine.minmax import max2, min2


@njit
def ours(a, b):
    return min2(a, b), max2(a, b)


@njit
def numbas(a, b):
    return min(a, b), max(a, b)


@njit
def literal_second(x):
    return min2(x, 0), max2(x, 0)


def _bits(x):
    """A value as its float64 bits (NaN and -0.0 told apart), ints as themselves."""
    return np.float64(x).view(np.int64) if isinstance(x, float) else x


FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, math.nan]))
INTS = st.integers(-(2**62), 2**62)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.tuples(FLOATS, FLOATS), st.tuples(INTS, INTS), st.tuples(INTS, FLOATS),
                 st.tuples(FLOATS, INTS)))
def test_min2_and_max2_are_pythons_and_numbas_min_and_max(pair):
    a, b = pair
    got = ours(a, b)
    want = numbas(a, b)
    assert [type(x) for x in got] == [type(x) for x in want]
    assert [_bits(x) for x in got] == [_bits(x) for x in want]
    # Python's rule: the first argument unless the second is strictly smaller (larger)
    py = (min(a, b), max(a, b))
    assert [_bits(type(g)(p)) for g, p in zip(got, py)] == [_bits(x) for x in got]


def test_ties_and_nan_follow_the_argument_order():
    assert math.isnan(ours(math.nan, 1.0)[0]) and ours(1.0, math.nan) == (1.0, 1.0)
    assert _bits(ours(0.0, -0.0)[0]) == _bits(0.0) and _bits(ours(-0.0, 0.0)[0]) == _bits(-0.0)
    assert ours(np.int64(3), np.int64(-4)) == (-4, 3)
    assert literal_second(-5) == (-5, 0) and literal_second(7) == (0, 7)
    assert typeof(literal_second(7)[0]) == typeof(np.int64(0))


ENGINE = Path(__file__).resolve().parents[2] / "engine"
JIT_DECORATORS = {"njit", "internal_njit", "_risk_kernel"}


def _jitted_functions(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for dec in node.decorator_list:
                target = dec.func if isinstance(dec, ast.Call) else dec
                if isinstance(target, ast.Name) and target.id in JIT_DECORATORS:
                    yield node


def test_the_engines_kernels_call_no_builtin_min_max_or_int():
    found = []
    for path in sorted(ENGINE.glob("*.py")):
        for fn in _jitted_functions(ast.parse(path.read_text())):
            for node in ast.walk(fn):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                        and node.func.id in ("min", "max", "int")):
                    found.append(f"{path.name}:{node.lineno} {fn.name}: {node.func.id}()")
    assert len(list(_jitted_functions(ast.parse((ENGINE / "exchange.py").read_text())))) > 10
    assert found == [], "use min2/max2 (engine/minmax.py) or np.int64(): " + "; ".join(found)
