"""L2 book from depth rows: hand-worked walks and queue positions, and the book kernel against a
plain-Python oracle.

Depth rows (data/schema.py): side +1 bid / -1 ask, price, new total size at that price (0 deletes).
Expected fills below are worked out by hand from the rules in engine/book.py and engine/exchange.py.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tickguard.data.schema import KIND_DEPTH, KIND_QUOTE, KIND_SNAPSHOT, KIND_TRADE, empty_events
from tickguard.engine.book import (
    B_NF, B_PX, B_SZ, BM_N_ASK, BM_N_BID, BM_NF, apply_depth_nb, level_size_nb,
)
from tickguard.engine.records import (
    LIQ_MAKER, LIQ_TAKER, OE_REJECT, OT_FOK, OT_LIMIT, OT_MARKET, RJ_FOK_UNFILLED, ST_FILLED, ST_OPEN,
)
from tickguard.engine.scripted import submit

from test_fills_handworked import INST, Q, T, events, fills, go, oes  # noqa: F401  (shared helpers)

BUY, SELL = 1, -1


def D(t, side, px, sz, kind=KIND_DEPTH):
    """A depth row: book side +1 bid / -1 ask, price, new size (0 deletes the level)."""
    return dict(ts_exch=t, ts_local=t, kind=kind, side=side, price=px, size=sz, bid_px=np.nan,
                ask_px=np.nan, bid_sz=np.nan, ask_sz=np.nan)


def book_rows(t):
    """Bids 100.00 x 300, 99.99 x 200, 99.98 x 400; asks 100.01 x 100, 100.02 x 100, 100.03 x 200."""
    return [D(t, BUY, 100.00, 300), D(t, BUY, 99.99, 200), D(t, BUY, 99.98, 400),
            D(t, SELL, 100.01, 100), D(t, SELL, 100.02, 100), D(t, SELL, 100.03, 200),
            Q(t, 100.00, 300, 100.01, 100)]


def test_market_buy_walks_the_asks_one_fill_per_level():
    # 250 to buy: 100 @ 100.01, 100 @ 100.02, 50 @ 100.03 — no impact_ticks on L2 data
    rows = book_rows(1000) + [Q(2000, 100.00, 300, 100.01, 100)]
    r = go(rows, [submit(6, BUY, 250, order_type=OT_MARKET)], impact_ticks=5)
    assert fills(r) == [(1000, 100.01, 100.0, LIQ_TAKER), (1000, 100.02, 100.0, LIQ_TAKER),
                        (1000, 100.03, 50.0, LIQ_TAKER)]
    assert r.orders["status"][0] == ST_FILLED


def test_same_rows_without_l2_use_the_touch_and_impact():
    # book_levels=0 ignores depth: 100 at the touch, the other 150 at 100.01 + 5 ticks
    rows = book_rows(1000) + [Q(2000, 100.00, 300, 100.01, 100)]
    r = go(rows, [submit(6, BUY, 250, order_type=OT_MARKET)], impact_ticks=5, book_levels=0)
    assert fills(r) == [(1000, 100.01, 100.0, LIQ_TAKER), (1000, 100.06, 150.0, LIQ_TAKER)]


def test_taken_depth_is_not_taken_twice_until_the_data_updates_it():
    # first sell 350 takes bids 300 @ 100.00 and 50 @ 99.99; a second sell of 200 before any
    # depth update finds 150 left at 99.99, then 50 at 99.98. Depth rows then re-show 99.98 at
    # 400 and delete the two emptied levels: a third sell of 400 gets all of 99.98 (its taken
    # size was reset by the update).
    rows = book_rows(1000) + [Q(2000, 100.00, 300, 100.01, 100), Q(3000, 100.00, 300, 100.01, 100),
                              D(4000, BUY, 99.98, 400), D(4000, BUY, 100.00, 0), D(4000, BUY, 99.99, 0),
                              Q(4000, 99.98, 400, 100.01, 100), Q(5000, 99.98, 400, 100.01, 100)]
    steps = [submit(6, SELL, 350, order_type=OT_MARKET), submit(7, SELL, 200, order_type=OT_MARKET),
             submit(12, SELL, 400, order_type=OT_MARKET)]
    r = go(rows, steps)  # zero latency: each order reaches the exchange at the time it was sent
    assert fills(r, 0) == [(1000, 100.00, 300.0, LIQ_TAKER), (1000, 99.99, 50.0, LIQ_TAKER)]
    assert fills(r, 1) == [(2000, 99.99, 150.0, LIQ_TAKER), (2000, 99.98, 50.0, LIQ_TAKER)]
    assert fills(r, 2) == [(4000, 99.98, 400.0, LIQ_TAKER)]


def test_fok_needs_the_whole_size_within_its_limit():
    # asks within 100.02: 200 shown; FOK for 201 is rejected, FOK for 200 fills on two levels
    rows = book_rows(1000) + [Q(2000, 100.00, 300, 100.01, 100), Q(3000, 100.00, 300, 100.01, 100)]
    steps = [submit(6, BUY, 201, 100.02, order_type=OT_FOK), submit(7, BUY, 200, 100.02, order_type=OT_FOK)]
    r = go(rows, steps)
    rej = oes(r, OE_REJECT, 0)
    assert len(rej) == 1 and rej["reason"][0] == RJ_FOK_UNFILLED
    assert fills(r, 1) == [(2000, 100.01, 100.0, LIQ_TAKER), (2000, 100.02, 100.0, LIQ_TAKER)]


def test_resting_order_behind_the_touch_sees_its_queue_on_l2():
    # buy 50 @ 99.98 joins behind the 400 shown there (L1 would call it invisible). A sell trade
    # of 300 at 99.98 -> 100 ahead; the depth row showing 100 is explained by that trade; a
    # depth row to 60 is 40 cancelled -> conservative clamp: ahead = min(100, 60) = 60; a trade
    # of 80 at 99.98 fills 80 - 60 = 20 of ours.
    rows = book_rows(1000) + [
        Q(2000, 100.00, 300, 100.01, 100),
        T(3000, 99.98, 300, SELL), D(3000, BUY, 99.98, 100),
        D(4000, BUY, 99.98, 60),
        T(5000, 99.98, 80, SELL), D(5000, BUY, 99.98, 0),
    ]
    r = go(rows, [submit(6, BUY, 50, 99.98, order_type=OT_LIMIT)])
    assert fills(r) == [(5000, 99.98, 20.0, LIQ_MAKER)]
    assert r.orders["status"][0] == ST_OPEN
    r_l1 = go(rows, [submit(6, BUY, 50, 99.98, order_type=OT_LIMIT)], book_levels=0)
    # on L1 the level is not visible (ahead = inf) until it becomes the touch, which it never
    # does here; trades at our price are not trades *through* it either: no fill at all
    assert fills(r_l1) == []


def test_snapshot_clears_the_side_first():
    book = np.zeros((1, 2, 5, B_NF))
    meta = np.zeros((1, BM_NF), dtype=np.int64)
    for px, sz in ((10.0, 1.0), (9.9, 2.0), (9.8, 3.0)):
        apply_depth_nb(book, meta, 0, 1, px, sz, 100, False, 0.1)
    assert meta[0, BM_N_BID] == 3
    apply_depth_nb(book, meta, 0, 1, 9.5, 7.0, 200, True, 0.1)  # a snapshot: bids start over
    apply_depth_nb(book, meta, 0, 1, 9.6, 4.0, 200, True, 0.1)  # same batch: no second clear
    assert meta[0, BM_N_BID] == 2
    assert list(book[0, 0, :2, B_PX]) == [9.6, 9.5] and list(book[0, 0, :2, B_SZ]) == [4.0, 7.0]
    assert level_size_nb(book, meta, 0, 0, 9.7, 0.1) == 0.0  # better than the best: nothing ahead
    assert np.isnan(level_size_nb(book, meta, 0, 0, 9.4, 0.1))  # beyond the levels held


def _oracle(updates, levels):
    sides = ({}, {})
    for side, tick_px, sz in updates:
        s = 0 if side > 0 else 1
        if sz == 0:
            sides[s].pop(tick_px, None)
        else:
            sides[s][tick_px] = sz
    bids = sorted(sides[0].items(), reverse=True)[:levels]
    asks = sorted(sides[1].items())[:levels]
    return bids, asks


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1, -1]), st.integers(1, 30), st.sampled_from([0, 0, 1, 5, 9])),
                max_size=80))
def test_book_kernel_matches_a_dict_oracle(updates):
    # with at least as many levels as distinct prices, the book is exactly the sorted dict
    levels = 31
    book = np.zeros((1, 2, levels, B_NF))
    meta = np.zeros((1, BM_NF), dtype=np.int64)
    for side, px, sz in updates:
        apply_depth_nb(book, meta, 0, side, px * 0.25, float(sz), 1, False, 0.25)
    bids, asks = _oracle(updates, levels)
    got_b = [(round(p / 0.25), s) for p, s in book[0, 0, : meta[0, BM_N_BID], :2]]
    got_a = [(round(p / 0.25), s) for p, s in book[0, 1, : meta[0, BM_N_ASK], :2]]
    assert got_b == [(p, float(s)) for p, s in bids]
    assert got_a == [(p, float(s)) for p, s in asks]


def test_a_full_book_keeps_the_best_levels():
    book = np.zeros((1, 2, 2, B_NF))
    meta = np.zeros((1, BM_NF), dtype=np.int64)
    for px in (10.0, 11.0, 12.0):  # asks: keep the two lowest
        apply_depth_nb(book, meta, 0, -1, px, 1.0, 1, False, 1.0)
    assert list(book[0, 1, :, B_PX]) == [10.0, 11.0]
    apply_depth_nb(book, meta, 0, -1, 9.0, 1.0, 1, False, 1.0)  # a better price pushes 11 out
    assert list(book[0, 1, :, B_PX]) == [9.0, 10.0]


def test_synthetic_depth_stream_runs_and_fills_at_book_prices():
    # a seeded synthetic stream with 5 depth levels: every taker fill price is one the book showed
    from tickguard.data.synth import SynthConfig, synthesize
    from tickguard.strategies.ema_crossover import ema_crossover

    cfg = SynthConfig(depth_levels=5)
    ev, table = synthesize(20_000, seed=3, config=cfg)
    assert (ev["kind"] & KIND_DEPTH).any()
    from tickguard.engine.backtest import run
    from tickguard.engine.config import EngineConfig

    r = run(ev, ema_crossover(fast=20, slow=80, size=400), instruments=table,
            config=EngineConfig(book_levels=5))
    assert len(r.fills) > 0
    shown = set(np.round(ev["price"][(ev["kind"] & KIND_DEPTH) != 0], 6))
    taker = r.fills[r.fills["liquidity"] == LIQ_TAKER]
    assert set(np.round(taker["price"], 6)) <= shown
    # a 400-lot order is bigger than a typical touch: some orders fill on more than one level
    per_order = np.unique(taker["order_id"], return_counts=True)[1]
    assert per_order.max() > 1
