"""rstate's integer slots (risk/slots.py): int64 values stored as their bits in a float64 buffer.

Oracle: numpy's own int64 view of the same buffer (``int_view``), which reads and writes those
bits without numba; the kernels' loads and stores must agree with it, leave the float slots
around them alone, and refuse an array they cannot address as a flat float64 buffer.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit
from numba.core import config as numba_config
from numba.core.errors import TypingError

from tickguard.risk import layout as L
from tickguard.risk.killswitch import new_risk_state
from tickguard.risk.rulebook import load_rulebook
from tickguard.risk.slots import SLOT_MASK, int_nb, int_view, set_int_nb, slot_nb


@njit  # not cached: a cached caller would not see a change to slots.py
def _store_then_load(rs, k, v):
    set_int_nb(rs, k, v)
    return int_nb(rs, k), slot_nb(rs, k)


@settings(max_examples=200, deadline=None)
@given(k=st.integers(0, 7), v=st.integers(-(2**63), 2**63 - 1))
def test_a_store_and_a_load_are_the_int64_views(k, v):
    rs = np.arange(8, dtype=np.float64) + 0.5  # float slots around the one written
    before = rs.copy()
    got, masked = _store_then_load(rs, k, v)
    assert got == v == int_view(rs)[k]  # the bits numpy reads back
    assert masked == v & SLOT_MASK and 0 <= masked <= SLOT_MASK
    others = np.arange(8) != k
    np.testing.assert_array_equal(rs[others], before[others])  # nothing else touched


@njit  # not cached: a cached caller would not see a change to slots.py
def _load(rs, k):
    return int_nb(rs, k)


def test_a_load_reads_what_python_wrote_through_the_view():
    rs = np.zeros(4)
    int_view(rs)[:] = [-1, 0, 7, 2**40 + 3]
    assert [_load(rs, k) for k in range(4)] == [-1, 0, 7, 2**40 + 3]


@pytest.mark.skipif(numba_config.DISABLE_JIT, reason="the pure-Python twin types nothing")
@pytest.mark.parametrize("bad", [np.zeros((2, 4)), np.zeros(8)[::2], np.zeros(4, dtype=np.float32),
                                 np.zeros(4, dtype=np.int64)], ids=["2-d", "strided", "float32", "int64"])
def test_arrays_not_flat_float64_are_refused_when_compiled(bad):
    @njit
    def load(a):
        return int_nb(a, 0)

    with pytest.raises(TypingError, match=r"contiguous 1-D float64 array .*np\.ascontiguousarray"):
        load(bad)


def test_new_risk_state_writes_its_offsets_counts_and_ring_headers_as_integers():
    # a hand-checked rulebook: one deny rule without state, one throttle, one ratio trigger
    rb = load_rulebook("""
        [[rule]]
        id = "qty"
        metric = "max_order_qty"
        threshold = 10
        action = "deny"
        [[rule]]
        id = "otr"
        metric = "order_to_trade"
        threshold = 50
        window = "1s"
        action = "halt"
        params = { min_orders = 5, capacity = 32 }
    """)
    rs, _ = new_risk_state(rb, 3)
    ints = int_view(rs)
    assert (ints[L.RS_N_RULES], ints[L.RS_N_INST], ints[L.RS_N_PRE], ints[L.RS_N_ACTIVITY]) == (2, 3, 1, 1)
    assert ints[L.RS_EXTERNAL] == -1 and ints[L.RS_HEADER + 0] == -1  # no external rule; qty: no block
    off = ints[L.RS_HEADER + 1]
    assert L.RS_HEADER + 2 + 2 * 3 < off < len(rs)
    assert (ints[off + L.RB_HEAD], ints[off + L.RB_COUNT], ints[off + L.RB_CAP]) == (0, 0, 32)
    assert rs[ints[L.RS_PRE_LIST]] == 0.0 and ints[ints[L.RS_PRE_LIST]] == 0  # rule 0 (zero bits)
    # the submit's activity entry: its rule and block offset are integers, its threshold a float
    at = ints[ints[L.RS_ACT_TABLE] + 2 * (L.AC_SUBMIT - 1)]
    assert (ints[at + L.AE_RULE], ints[at + L.AE_OFF], rs[at + L.AE_THRESHOLD]) == (1, off, 50.0)
