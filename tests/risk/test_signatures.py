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

from tickguard.risk.layout import RB_COUNT, RB_OVERFLOW
from tickguard.risk.signatures import (
    signature_block, signature_count_nb, signature_expire_nb, signature_push_nb,
)

PRICES = [99.0, 99.5, 100.0, math.nan]
order = st.tuples(st.integers(0, 3_000),  # time step, ns
                  st.integers(0, 2), st.sampled_from([-1, 1]), st.integers(1, 3),
                  st.sampled_from(PRICES), st.sampled_from([1.0, 2.0, 0.5]))


def _same(a, b, use_type):
    (i, s, t, p, q), (i2, s2, t2, p2, q2) = a, b
    return (i, s, q) == (i2, s2, q2) and (p == p2 or (p != p and p2 != p2)) and (not use_type or t == t2)


@settings(max_examples=300, deadline=None)
@given(cap=st.integers(1, 6), window=st.integers(1, 10_000), thr=st.integers(1, 4),
       use_type=st.booleans(), orders=st.lists(order, min_size=1, max_size=120))
def test_counts_match_a_scan_of_the_window(cap, window, thr, use_type, orders):
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
            signature_push_nb(rs, 0, float(now))  # the pending key: the one just counted
            ring.append((now, sig))
            if len(ring) > cap:
                ring.pop(0)
                overflow += 1
        assert rs[RB_COUNT] == len(ring) and rs[RB_OVERFLOW] == overflow
