"""The signature counts behind repeated_execution / duplicate_order against a brute-force window.

Oracle: a Python list of the orders that passed (the last ``cap`` of them), scanned in full for
each new order, as the rule reads: count = this order + identical ones stamped in
``[now - window, now]``; the order passes iff count <= threshold. Small capacities and a pool of
many signatures force ring overflow and table rebuilds.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from tickguard.risk.layout import RB_COUNT, RB_NF, RB_OVERFLOW, SG_NF
from tickguard.risk.signatures import (
    SC_PENDING, signature_block, signature_count_nb, signature_expire_nb, signature_push_nb,
)

PRICES = [99.0, 99.5, 100.0, math.nan]
PENDING_ROW = RB_NF + 2 * SG_NF + SC_PENDING  # in a block of capacity 2
order = st.tuples(st.integers(0, 3_000),  # time step, ns
                  st.integers(0, 2), st.sampled_from([-1, 1]), st.integers(1, 3),
                  st.sampled_from(PRICES), st.sampled_from([1.0, 2.0, 0.5]))


def _same(a, b, use_type):
    (i, s, t, p, q), (i2, s2, t2, p2, q2) = a, b
    return (i, s, q) == (i2, s2, q2) and (p == p2 or (p != p and p2 != p2)) and (not use_type or t == t2)


def _replay(cap, window, thr, use_type, orders):
    """Count and remember ``orders`` (time steps and signatures) in a fresh block, against the
    brute-force window after each one."""
    rs = signature_block(cap)
    ring: list[tuple[int, tuple]] = []  # (ts, signature), oldest first
    overflow, now = 0, 0
    for step, inst, side, otype, price, qty in orders:
        now += step
        sig = (inst, side, otype, price, qty)
        signature_expire_nb(rs, 0, float(now - window))
        got = 1.0 + signature_count_nb(rs, 0, float(inst), float(side), float(otype), price, qty, use_type)
        ring = [(ts, s) for ts, s in ring if ts >= now - window]
        want = 1 + sum(_same(s, sig, use_type) for _, s in ring)
        assert got == want
        if want <= thr:  # passed: remembered
            # the key just counted, given again (its table row is the pending one)
            signature_push_nb(rs, 0, float(now), float(inst), float(side), float(otype), price, qty, use_type)
            ring.append((now, sig))
            if len(ring) > cap:
                ring.pop(0)
                overflow += 1
        assert rs[RB_COUNT] == len(ring) and rs[RB_OVERFLOW] == overflow


@settings(max_examples=300, deadline=None)
@given(cap=st.integers(1, 6), window=st.integers(1, 10_000), thr=st.integers(1, 4),
       use_type=st.booleans(), orders=st.lists(order, min_size=1, max_size=120))
def test_counts_match_a_scan_of_the_window(cap, window, thr, use_type, orders):
    _replay(cap, window, thr, use_type, orders)


def test_a_rebuild_between_count_and_push_moves_the_pending_key():
    # cap 2: an 8-row table, rebuilt when it holds 4 keys. J and K share a hash slot (the prices
    # were picked for it: checked below), so K sits one row past it. Then X1 and X2 push J and K
    # out of the ring, and K comes back: its count finds its old row, and its push rebuilds the
    # table, which leaves J's slot empty. The push must look K up again (it belongs in that slot
    # now), or K's next count, which stops at the empty slot, finds nothing.
    J, K, X1, X2 = 100.0, 100.875, 100.125, 100.25
    rs = signature_block(2)
    signature_count_nb(rs, 0, 0.0, 1.0, 1.0, J, 1.0, False)
    j_row = rs[PENDING_ROW]
    signature_push_nb(rs, 0, 1.0, 0.0, 1.0, 1.0, J, 1.0, False)
    signature_count_nb(rs, 0, 0.0, 1.0, 1.0, K, 1.0, False)
    assert rs[PENDING_ROW] == j_row + SG_NF  # the collision this test is about
    orders = [(1, 0, 1, 1, price, 1.0) for price in (J, K, X1, X2, K, K)]
    _replay(2, 1_000, 10, False, orders)
