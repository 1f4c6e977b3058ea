"""The signature counts behind repeated_execution / duplicate_order against a brute-force window.

Oracle: a Python list of the orders that passed (the last ``cap`` of them), scanned in full for
each new order, as the rule reads: count = this order + identical ones stamped in
``[now - window, now]``; the order passes iff count <= threshold. Small capacities, scan limits
of 0 to 3 orders and a pool of many signatures force ring overflow, every way of counting (a
scan, a table brought up to date, a live table) and both switches between them, and table
rebuilds.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tickguard.risk.layout import RB_COUNT, RB_HEAD, RB_NF, RB_OVERFLOW, SG_NF, SG_TS
from tickguard.risk.signatures import (
    SC_LIVE, SC_NF, SC_PENDING, signature_block, signature_check_nb, signature_count_nb,
    signature_expire_nb, signature_push_nb, signature_unpush_nb,
)
from tickguard.risk.slots import int_view

PRICES = [99.0, 99.5, 100.0, math.nan]
PENDING_ROW = RB_NF + 2 * SG_NF + SC_PENDING  # in a block of capacity 2
order = st.tuples(st.integers(0, 3_000),  # time step, ns
                  st.integers(0, 2), st.sampled_from([-1, 1]), st.integers(1, 3),
                  st.sampled_from(PRICES), st.sampled_from([1.0, 2.0, 0.5]))


def _same(a, b, use_type):
    (i, s, t, p, q), (i2, s2, t2, p2, q2) = a, b
    return (i, s, q) == (i2, s2, q2) and (p == p2 or (p != p and p2 != p2)) and (not use_type or t == t2)


def _replay(cap, window, thr, use_type, orders, exact=True, scan_rows=16):
    """Count and remember ``orders`` (time steps and signatures) in a fresh block, against the
    brute-force window after each one. ``exact``: ask for every count; else only for those
    that may pass the threshold (as the gate does). Returns the block."""
    rs = signature_block(cap, scan_rows)
    ring: list[tuple[int, tuple]] = []  # (ts, signature), oldest first
    overflow, now = 0, 0
    for step, inst, side, otype, price, qty in orders:
        now += step
        sig = (inst, side, otype, price, qty)
        signature_expire_nb(rs, 0, float(now - window))
        beyond = -1.0 if exact else thr - 1.0
        got = 1.0 + signature_count_nb(rs, 0, float(inst), float(side), float(otype), price, qty, use_type,
                                       beyond)
        ring = [(ts, s) for ts, s in ring if ts >= now - window]
        want = 1 + sum(_same(s, sig, use_type) for _, s in ring)
        if len(ring) > beyond:
            assert got == want
        else:  # not counted: the window is too short for the count to matter
            assert got == 1.0 and want <= thr
        if want <= thr:  # passed: remembered
            # the key just counted, given again (its table row, if probed, is the pending one)
            signature_push_nb(rs, 0, float(now), float(inst), float(side), float(otype), price, qty, use_type)
            ring.append((now, sig))
            if len(ring) > cap:
                ring.pop(0)
                overflow += 1
        assert int_view(rs)[RB_COUNT] == len(ring) and rs[RB_OVERFLOW] == overflow
    return rs


@settings(max_examples=300, deadline=None)
@given(cap=st.integers(1, 6), window=st.integers(1, 10_000), thr=st.integers(1, 4),
       use_type=st.booleans(), orders=st.lists(order, min_size=1, max_size=120),
       exact=st.booleans(), scan_rows=st.integers(0, 3))
def test_counts_match_a_scan_of_the_window(cap, window, thr, use_type, orders, exact, scan_rows):
    _replay(cap, window, thr, use_type, orders, exact, scan_rows)


@settings(max_examples=300, deadline=None)
@given(cap=st.integers(1, 6), window=st.integers(1, 10_000), thr=st.integers(1, 4),
       use_type=st.booleans(), orders=st.lists(st.tuples(order, st.sampled_from([0, 0, 1, 2])),
                                                 min_size=1, max_size=120),
       scan_rows=st.integers(0, 3))
def test_check_remembers_and_unpush_forgets_as_the_window_reads(cap, window, thr, use_type, orders, scan_rows):
    """signature_check_nb (expire, count, push in one) against the brute-force window, as the gate
    uses it: an order that passes is remembered unless nothing is to be remembered (fate 2: an
    earlier rule denied it) and forgotten again by signature_unpush_nb when a later rule denies
    it (fate 1), so the window must read as if it never came, overflowed rows included."""
    rs = signature_block(cap, scan_rows)
    ring: list[tuple[int, tuple]] = []
    overflow, now = 0, 0
    for (step, inst, side, otype, price, qty), fate in orders:
        now += step
        sig = (inst, side, otype, price, qty)
        beyond = thr - 1.0  # as the gate asks: a count only where it may pass the threshold
        got = 1.0 + signature_check_nb(rs, 0, float(now - window), float(now), float(inst), float(side),
                                       float(otype), price, qty, use_type, beyond, fate != 2)
        ring = [(ts, s) for ts, s in ring if ts >= now - window]
        want = 1 + sum(_same(s, sig, use_type) for _, s in ring)
        if len(ring) > beyond:
            assert got == want
        else:
            assert got == 1.0 and want <= thr
        if not got > thr:  # passed this rule
            if fate == 1:  # pushed, then a later rule denied the order
                signature_unpush_nb(rs, 0)
            elif fate == 0:
                ring.append((now, sig))
                if len(ring) > cap:
                    ring.pop(0)
                    overflow += 1
        assert rs[RB_OVERFLOW] == overflow
        # the rows held, oldest first: the window's, after rows older than it that lazy expiry
        # has not cut yet (only at the head)
        head, n = int(int_view(rs)[RB_HEAD]), int(int_view(rs)[RB_COUNT])
        held = [rs[RB_NF + ((head + k) % cap) * SG_NF + SG_TS] for k in range(n)]
        assert n >= len(ring) and held[n - len(ring):] == [float(ts) for ts, _ in ring]
        assert all(ts < now - window for ts in held[:n - len(ring)])


def _check(rs, now, window, beyond):
    """One order of a fixed signature through signature_check_nb, remembered if it passes."""
    return signature_check_nb(rs, 0, float(now - window), float(now), 0.0, 1.0, 1.0, 100.0, 1.0, True,
                              beyond, True)


def test_lazy_expiry_cuts_the_ring_only_when_its_rows_could_matter():
    # orders 100 ns apart in a 10 ns window: each is out of the window by the next. A threshold
    # of 6 (beyond 5): the old rows stay until the ring holds 6, then it is cut to the window
    # (empty), and restarts at row 0: held 1, 2, ..., 6, 1, ...; never an overflow
    rs = signature_block(8)
    held = []
    for k in range(14):
        _check(rs, 100 * k, 10, 5.0)
        held.append(int(int_view(rs)[RB_COUNT]))
    assert held == [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6, 1, 2] and rs[RB_OVERFLOW] == 0.0
    # a threshold past the capacity (4): cut when full instead, then restarted, no overflow...
    rs = signature_block(4)
    held = []
    for k in range(6):
        _check(rs, 100 * k, 10, 10.0)
        held.append((int(int_view(rs)[RB_HEAD]), int(int_view(rs)[RB_COUNT])))
    assert held == [(0, 1), (0, 2), (0, 3), (0, 4), (0, 1), (0, 2)] and rs[RB_OVERFLOW] == 0.0
    # ...and with every row inside the window, a full ring drops its oldest, counted
    rs = signature_block(4)
    for k in range(6):
        _check(rs, 100 * k, 10_000, 10.0)
    assert int_view(rs)[RB_COUNT] == 4 and rs[RB_OVERFLOW] == 2.0


def test_a_ring_that_empties_between_orders_writes_row_0_again():
    # no duplicate within 10 ns (threshold 1, beyond 0), orders 1 000 ns apart: the window is
    # empty at each order, and every order is written at row 0
    rs = signature_block(8)
    for k in range(20):
        assert _check(rs, 1_000 * k, 10, 0.0) == 0.0
        assert int_view(rs)[RB_HEAD] == 0 and int_view(rs)[RB_COUNT] == 1 and rs[RB_NF + SG_TS] == 1_000.0 * k


def test_unpush_counts_the_row_it_brings_back_in_a_live_table():
    # cap 2, threshold 2, scan limit 0: K1 and K2 fill the ring; the next K1 needs a count, which
    # brings the table up (live), passes, and its push drops the first K1; a later rule denies it,
    # so the unpush must bring that K1 back *and count it*: the K1 after it counts 2, not 1
    rs = signature_block(2, 0)
    k1, k2 = (0.0, 1.0, 1.0, 100.0, 1.0), (0.0, 1.0, 1.0, 101.0, 1.0)
    counts = []
    for now, key, fate in ((1, k1, 0), (2, k2, 0), (3, k1, 1), (4, k1, 0)):
        counts.append(1.0 + signature_check_nb(rs, 0, 0.0, float(now), *key, False, 1.0, True))
        if fate:
            signature_unpush_nb(rs, 0)
    assert counts == [1.0, 1.0, 2.0, 2.0] and rs[RB_NF + 2 * SG_NF + SC_LIVE] == 1.0


def test_a_flow_inside_the_threshold_never_touches_the_table():
    # 200 orders, 10 at a time in the window, under a threshold of 20: no count is needed, so the
    # table stays stale and its rows as allocated (zero), whatever the scan limit
    orders = [(100, 0, 1, 1, 100.0 + (k % 3), 1.0) for k in range(200)]
    for scan_rows in (0, 16):
        rs = _replay(64, 999, 20, False, orders, exact=False, scan_rows=scan_rows)
        sc = RB_NF + 64 * SG_NF
        assert rs[sc + SC_LIVE] == 0.0 and not np.any(rs[sc + SC_NF:])


def test_the_table_goes_live_for_a_full_window_and_stale_when_it_empties():
    # 40 identical orders 1 ns apart in a 1 000 ns window, counted exactly: past the scan limit
    # (16) the table is brought up to date and kept; a gap that empties the window lets it go stale
    orders = [(1, 0, 1, 1, 100.0, 1.0)] * 40
    rs = _replay(64, 1_000, 100, False, orders, scan_rows=16)
    sc = RB_NF + 64 * SG_NF
    assert rs[sc + SC_LIVE] == 1.0
    rs2 = _replay(64, 1_000, 100, False, orders + [(5_000, 0, 1, 1, 100.0, 1.0)], scan_rows=16)
    assert rs2[sc + SC_LIVE] == 0.0


def test_a_rebuild_between_count_and_push_moves_the_pending_key():
    # cap 2: an 8-row table, rebuilt when it holds 4 keys. J and K share a hash slot (the prices
    # were picked for it: checked below), so K sits one row past it. Then X1 and X2 push J and K
    # out of the ring, and K comes back: its count finds its old row, and its push rebuilds the
    # table, which leaves J's slot empty. The push must look K up again (it belongs in that slot
    # now), or K's next count, which stops at the empty slot, finds nothing. Scan limit 0: the
    # table counts every window.
    J, K, X1, X2 = 100.0, 100.875, 100.125, 100.25
    rs = signature_block(2, 0)
    signature_push_nb(rs, 0, 1.0, 0.0, 1.0, 1.0, J, 1.0, False)
    signature_count_nb(rs, 0, 0.0, 1.0, 1.0, K, 1.0, False, -1.0)  # brings the table up: J in it
    k_row = int_view(rs)[PENDING_ROW]  # an integer slot (risk/slots.py)
    signature_count_nb(rs, 0, 0.0, 1.0, 1.0, J, 1.0, False, -1.0)
    assert k_row == int_view(rs)[PENDING_ROW] + SG_NF  # the collision this test is about
    orders = [(1, 0, 1, 1, price, 1.0) for price in (J, K, X1, X2, K, K)]
    _replay(2, 1_000, 10, False, orders, scan_rows=0)
