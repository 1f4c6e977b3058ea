"""Hand-worked fill scenarios: tiny event streams whose fills are written out from first principles.

Every scenario uses one instrument (tick 0.01, lot 1), times in plain ns (1000, 2000, ...) and the
scripted strategy (tickguard.engine.scripted), so each expected record below is derived by hand
from the fill rules in engine/exchange.py, not from the engine's own output.

Timing reminder (engine/loop_template.py): at each local event t the exchange first catches up to
t (market events by ts_exch, then actions whose arrival time <= t, a market event first on equal
times); then the strategy sees the event and its requests leave at t, arriving at t + entry
latency. So with zero latency a request sent at event i is handled just before event i+1.
"""

from __future__ import annotations

import numpy as np
import pytest

from tickguard.data.schema import KIND_QUOTE, KIND_TRADE, Instrument, InstrumentTable, empty_events
from tickguard.engine.backtest import run
from tickguard.engine.config import EngineConfig, Latency, LatencyConfig
from tickguard.engine.records import (
    LIQ_MAKER, LIQ_TAKER, OE_ACK, OE_CANCEL_REJECT, OE_CANCEL_REQ, OE_EXPIRED,
    OE_MODIFY_ACK, OE_REJECT, OT_FOK, OT_IOC, OT_LIMIT, OT_MARKET, OT_POST_ONLY, RJ_FOK_UNFILLED,
    RJ_POST_ONLY_CROSS, RJ_TOO_LATE, ST_CANCELLED, ST_FILLED, ST_OPEN, ST_REJECTED,
)
from tickguard.engine.scripted import cancel, modify, scripted, submit

INST = InstrumentTable([Instrument(0, "X", tick_size=0.01, lot_size=1)])
BUY, SELL = 1, -1


def Q(t, bid, bid_sz, ask, ask_sz, local=None):
    """A quote row at exchange time t (seen locally at ``local``, default t)."""
    return dict(ts_exch=t, ts_local=t if local is None else local, kind=KIND_QUOTE,
                bid_px=bid, bid_sz=bid_sz, ask_px=ask, ask_sz=ask_sz)


def T(t, px, sz, aggressor, local=None):
    """A trade print; ``aggressor`` -1 = a seller hit the bids, +1 = a buyer lifted the offers."""
    return dict(ts_exch=t, ts_local=t if local is None else local, kind=KIND_TRADE, price=px,
                size=sz, side=aggressor)


def events(*rows):
    ev = empty_events(len(rows))
    for i, row in enumerate(rows):
        for k, v in row.items():
            ev[k][i] = v
    return ev


def go(rows, steps, *, latency=None, **cfg):
    config = EngineConfig(latency=latency or LatencyConfig(), **cfg)
    return run(events(*rows), scripted(steps), instruments=INST, config=config)


def fills(r, oid=0):
    f = r.fills[r.fills["order_id"] == oid]
    return [(int(x["ts"]), round(float(x["price"]), 6), float(x["qty"]), int(x["liquidity"])) for x in f]


def oes(r, event, oid=0):
    m = (r.order_events["order_id"] == oid) & (r.order_events["event"] == event)
    return r.order_events[m]


# --- takers against a thin touch --------------------------------------------------------------

def test_market_order_takes_touch_then_impact_ticks():
    # ask 100.00 x 5. A market buy of 8 sent at t=1000 (latency 0) arrives at 1000: it takes the
    # 5 displayed at 100.00, and the other 3 fill impact_ticks=2 ticks worse: 100.00 + 2*0.01.
    rows = [Q(1000, 99.99, 100, 100.00, 5), Q(2000, 99.99, 100, 100.00, 5)]
    r = go(rows, [submit(0, BUY, 8, order_type=OT_MARKET)], impact_ticks=2)
    assert fills(r) == [(1000, 100.00, 5.0, LIQ_TAKER), (1000, 100.02, 3.0, LIQ_TAKER)]
    assert r.orders["status"][0] == ST_FILLED
    assert len(oes(r, OE_EXPIRED)) == 0


def test_market_order_remainder_expires_without_impact():
    # Same, impact_ticks=-1: only the displayed 5 fill; the 3 left expire (market = IOC).
    rows = [Q(1000, 99.99, 100, 100.00, 5), Q(2000, 99.99, 100, 100.00, 5)]
    r = go(rows, [submit(0, BUY, 8, order_type=OT_MARKET)], impact_ticks=-1)
    assert fills(r) == [(1000, 100.00, 5.0, LIQ_TAKER)]
    exp = oes(r, OE_EXPIRED)
    assert len(exp) == 1 and exp["qty"][0] == 3.0 and exp["ts"][0] == 1000
    assert r.orders["status"][0] == ST_CANCELLED and r.orders["filled"][0] == 5.0


def test_second_taker_does_not_reuse_size_we_already_took():
    # Two market buys of 4 arrive at the same time against ask 100.00 x 5 (impact 1 tick):
    # order 0 takes 4 at 100.00; only 1 is left displayed for order 1, its other 3 go at 100.01.
    rows = [Q(1000, 99.99, 100, 100.00, 5), Q(2000, 99.99, 100, 100.00, 5)]
    r = go(rows, [submit(0, BUY, 4, order_type=OT_MARKET), submit(0, BUY, 4, order_type=OT_MARKET)],
           impact_ticks=1)
    assert fills(r, 0) == [(1000, 100.00, 4.0, LIQ_TAKER)]
    assert fills(r, 1) == [(1000, 100.00, 1.0, LIQ_TAKER), (1000, 100.01, 3.0, LIQ_TAKER)]



def test_size_we_took_stays_taken_while_the_touch_stands_still():
    # ask 100.00 x 5 at every quote, impact 1 tick. Order 0 (market buy 4, sent at event 0, latency
    # 0) arrives at 1000 and takes 4 at 100.00. The quotes at 2000 and 3000 repeat the same touch,
    # so the data still shows size we took: order 1 (buy 4, sent at event 2, t=3000, the exchange
    # idle in between) finds 1 left at 100.00 and takes its other 3 at 100.01.
    rows = [Q(t, 99.99, 100, 100.00, 5) for t in (1000, 2000, 3000, 4000)]
    r = go(rows, [submit(0, BUY, 4, order_type=OT_MARKET), submit(2, BUY, 4, order_type=OT_MARKET)],
           impact_ticks=1)
    assert fills(r, 0) == [(1000, 100.00, 4.0, LIQ_TAKER)]
    assert fills(r, 1) == [(3000, 100.00, 1.0, LIQ_TAKER), (3000, 100.01, 3.0, LIQ_TAKER)]


def test_size_we_took_is_back_once_the_touch_moved_away_and_back():
    # As above, but while the exchange is idle (events at 3000 and 4000: nothing resting, nothing
    # due) the ask moves to 100.01 and back to 100.00 x 5: a new touch, so nothing of it is ours.
    # Order 1 (sent at event 3, t=4000) takes all 4 at 100.00. Only the quote at 3000 shows the
    # move: an exchange view that kept only each instrument's latest quote would miss it and
    # fill 1 + 3 as in the test above.
    rows = [Q(1000, 99.99, 100, 100.00, 5), Q(2000, 99.99, 100, 100.00, 5),
            Q(3000, 99.99, 100, 100.01, 5), Q(4000, 99.99, 100, 100.00, 5), Q(5000, 99.99, 100, 100.00, 5)]
    r = go(rows, [submit(0, BUY, 4, order_type=OT_MARKET), submit(3, BUY, 4, order_type=OT_MARKET)],
           impact_ticks=1)
    assert fills(r, 0) == [(1000, 100.00, 4.0, LIQ_TAKER)]
    assert fills(r, 1) == [(4000, 100.00, 4.0, LIQ_TAKER)]

def test_fok_rejected_when_touch_cannot_fill_in_full():
    # ask 100.00 x 5, no impact: a FOK buy of 8 limit 100.05 can get only 5 -> rejected, no fill.
    rows = [Q(1000, 99.99, 100, 100.00, 5), Q(2000, 99.99, 100, 100.00, 5)]
    r = go(rows, [submit(0, BUY, 8, 100.05, order_type=OT_FOK)], impact_ticks=-1)
    rej = oes(r, OE_REJECT)
    assert len(rej) == 1 and rej["reason"][0] == RJ_FOK_UNFILLED
    assert len(r.fills) == 0 and r.orders["status"][0] == ST_REJECTED
    # with impact 1 tick the rest (3 @ 100.01) is within the limit: it fills in full
    r = go(rows, [submit(0, BUY, 8, 100.05, order_type=OT_FOK)], impact_ticks=1)
    assert fills(r) == [(1000, 100.00, 5.0, LIQ_TAKER), (1000, 100.01, 3.0, LIQ_TAKER)]


def test_ioc_remainder_expires():
    # IOC buy 8 limit 100.00 vs ask 100.00 x 5, impact 1: the rest would fill at 100.01 > limit,
    # so 5 fill at 100.00 and 3 expire.
    rows = [Q(1000, 99.99, 100, 100.00, 5), Q(2000, 99.99, 100, 100.00, 5)]
    r = go(rows, [submit(0, BUY, 8, 100.00, order_type=OT_IOC)], impact_ticks=1)
    assert fills(r) == [(1000, 100.00, 5.0, LIQ_TAKER)]
    exp = oes(r, OE_EXPIRED)
    assert len(exp) == 1 and exp["qty"][0] == 3.0
    assert r.orders["status"][0] == ST_CANCELLED


def test_post_only_that_would_cross_is_rejected():
    # bid 99.99 / ask 100.00: a post-only buy at 100.00 would take -> rejected; one at 99.99 rests.
    rows = [Q(1000, 99.99, 10, 100.00, 10), Q(2000, 99.99, 10, 100.00, 10)]
    r = go(rows, [submit(0, BUY, 1, 100.00, order_type=OT_POST_ONLY),
                  submit(0, BUY, 1, 99.99, order_type=OT_POST_ONLY)])
    rej = oes(r, OE_REJECT, 0)
    assert len(rej) == 1 and rej["reason"][0] == RJ_POST_ONLY_CROSS and rej["ts"][0] == 1000
    assert len(r.fills) == 0
    assert list(r.orders["status"]) == [ST_REJECTED, ST_OPEN]
    assert r.orders["queue_ahead"][1] == 10.0  # joined behind the displayed 10


# --- resting orders and the queue -------------------------------------------------------------

def test_limit_order_waits_for_the_size_ahead_then_fills_partially():
    # bid 99.99 x 10. Buy 5 @ 99.99 arrives at 1000: 10 ahead of us.
    # trade 4 @ 99.99 (t=2000): ahead 10 -> 6, no fill.
    # trade 8 @ 99.99 (t=3000): 6 of it clear the queue, the other 2 fill us (partial, maker).
    # trade 10 @ 99.99 (t=4000): nothing ahead, we take our last 3 of it.
    rows = [Q(1000, 99.99, 10, 100.00, 10), T(2000, 99.99, 4, SELL), T(3000, 99.99, 8, SELL),
            T(4000, 99.99, 10, SELL), Q(5000, 99.99, 10, 100.00, 10)]
    r = go(rows, [submit(0, BUY, 5, 99.99)])
    assert fills(r) == [(3000, 99.99, 2.0, LIQ_MAKER), (4000, 99.99, 3.0, LIQ_MAKER)]
    assert r.orders["status"][0] == ST_FILLED


def test_buy_aggressor_trades_do_not_advance_a_bid_queue():
    # A trade at our bid price with a *buy* aggressor (side +1) lifted offers: it did not touch the
    # bid queue, so our order must not fill.
    rows = [Q(1000, 99.99, 0, 100.00, 10), T(2000, 99.99, 50, BUY), Q(3000, 99.99, 0, 100.00, 10)]
    r = go(rows, [submit(0, BUY, 5, 99.99)])
    assert len(r.fills) == 0


def test_trade_through_fills_resting_order_at_its_limit():
    # Buy 5 @ 99.99 behind 10; a sell trade at 99.98 went through our price: everything at 99.99
    # (us included) traded, so we fill in full at our limit 99.99, as maker.
    rows = [Q(1000, 99.99, 10, 100.00, 10), T(2000, 99.98, 1, SELL), Q(3000, 99.98, 10, 99.99, 10)]
    r = go(rows, [submit(0, BUY, 5, 99.99)])
    assert fills(r) == [(2000, 99.99, 5.0, LIQ_MAKER)]


def test_opposite_touch_moving_onto_our_price_fills_us():
    # Sell 2 @ 100.01 rests behind 10; the bid moves up to 100.01 (a buyer crossed into our level):
    # we fill at our price 100.01.
    rows = [Q(1000, 99.99, 10, 100.01, 10), Q(2000, 100.01, 3, 100.02, 10), Q(3000, 100.01, 3, 100.02, 10)]
    r = go(rows, [submit(0, SELL, 2, 100.01)])
    assert fills(r) == [(2000, 100.01, 2.0, LIQ_MAKER)]


def test_cancel_loses_the_race_to_a_fill():
    # Buy 5 @ 99.99 improves the bid 99.98 -> nothing ahead. At t=2000 (it has been acked) the
    # strategy cancels, but cancels take 5000 ns to arrive (t=7000). At t=3000 a sell trade of 5
    # at 99.99 fills us in full. The cancel arrives at 7000 to a filled order: CANCEL_REJECT with
    # RJ_TOO_LATE, and the fill stands (position +5).
    rows = [Q(1000, 99.98, 10, 100.00, 10), Q(2000, 99.98, 10, 100.00, 10), T(3000, 99.99, 5, SELL),
            Q(8000, 99.98, 10, 100.00, 10)]
    lat = LatencyConfig(submit=Latency(), cancel=Latency(entry_ns=5000))
    r = go(rows, [submit(0, BUY, 5, 99.99), cancel(1, 0)], latency=lat)
    assert fills(r) == [(3000, 99.99, 5.0, LIQ_MAKER)]
    req = oes(r, OE_CANCEL_REQ)
    assert len(req) == 1 and req["ts"][0] == 2000  # sent before the fill...
    rej = oes(r, OE_CANCEL_REJECT)
    assert len(rej) == 1 and rej["ts"][0] == 7000 and rej["reason"][0] == RJ_TOO_LATE  # ...arrived after
    assert r.orders["status"][0] == ST_FILLED
    assert r.fills["position"][-1] == 5.0


def test_cancel_that_arrives_first_wins():
    # Control for the race: same, with a 500 ns cancel latency it arrives at 2500, before the
    # trade: the order is cancelled and the trade at 3000 fills nothing.
    rows = [Q(1000, 99.98, 10, 100.00, 10), Q(2000, 99.98, 10, 100.00, 10), T(3000, 99.99, 5, SELL),
            Q(8000, 99.98, 10, 100.00, 10)]
    lat = LatencyConfig(submit=Latency(), cancel=Latency(entry_ns=500))
    r = go(rows, [submit(0, BUY, 5, 99.99), cancel(1, 0)], latency=lat)
    assert len(r.fills) == 0
    assert r.orders["status"][0] == ST_CANCELLED


def test_size_decrease_keeps_queue_priority():
    # Buy 5 @ 99.99 behind 10. Trade 6 -> 4 ahead. Modify to size 3 at the same price (t=3000):
    # a size decrease keeps its place, so 4 stay ahead. Trade 5 at t=4000: 4 clear the queue, the
    # 5th fills us: exactly 1 (had it re-queued behind the displayed 10, nothing would fill).
    rows = [Q(1000, 99.99, 10, 100.00, 10), T(2000, 99.99, 6, SELL), Q(3000, 99.99, 10, 100.00, 10),
            T(4000, 99.99, 5, SELL), Q(5000, 99.99, 10, 100.00, 10)]
    # (the quote at 3000 repeats the bid size 10, unchanged since arrival: it says nothing new)
    r = go(rows, [submit(0, BUY, 5, 99.99), modify(2, 0, 99.99, 3)])
    assert len(oes(r, OE_MODIFY_ACK)) == 1
    assert fills(r) == [(4000, 99.99, 1.0, LIQ_MAKER)]
    assert r.orders["qty"][0] == 3.0


def test_price_change_loses_queue_priority():
    # Buy 5 @ 99.99 behind 10; trade 6 -> 4 ahead. Someone improves the bid to 100.00 x 8 (t=3000),
    # and the strategy re-prices to 100.00: it joins *behind* the displayed 8 (arrives before the
    # t=4000 event). Trade 5 @ 100.00 (t=4000): 8 -> 3 ahead, no fill. Trade 4 @ 100.00 (t=5000):
    # 3 clear the queue and 1 fills us at 100.00.
    rows = [Q(1000, 99.99, 10, 100.02, 10), T(2000, 99.99, 6, SELL), Q(3000, 100.00, 8, 100.02, 10),
            T(4000, 100.00, 5, SELL), T(5000, 100.00, 4, SELL), Q(6000, 100.00, 8, 100.02, 10)]
    r = go(rows, [submit(0, BUY, 5, 99.99), modify(2, 0, 100.00, 5)])
    ack = oes(r, OE_MODIFY_ACK)
    assert len(ack) == 1 and ack["ts"][0] == 3000 and ack["price"][0] == 100.00
    assert fills(r) == [(5000, 100.00, 1.0, LIQ_MAKER)]


# --- latency ----------------------------------------------------------------------------------

def test_entry_latency_shifts_a_market_order_to_a_later_worse_price():
    # ask 100.00 until t=2000, then 100.05. A market buy sent at t=1000:
    # latency 0 -> arrives 1000 -> 100.00; latency 1500 -> arrives 2500, after the quote change
    # at 2000 -> 100.05 (fill time 2500).
    rows = [Q(1000, 99.99, 10, 100.00, 10), Q(2000, 100.04, 10, 100.05, 10), Q(3000, 100.04, 10, 100.05, 10)]
    step = [submit(0, BUY, 1, order_type=OT_MARKET)]
    fast = go(rows, step)
    slow = go(rows, step, latency=LatencyConfig(submit=Latency(entry_ns=1500)))
    assert fills(fast) == [(1000, 100.00, 1.0, LIQ_TAKER)]
    assert fills(slow) == [(2500, 100.05, 1.0, LIQ_TAKER)]
    ack = oes(slow, OE_ACK)
    assert ack["ts"][0] == 2500


def test_response_latency_delays_what_the_strategy_learns():
    # Fill at exchange time 1000; the response takes 700 ns: the fill record's ts_local is 1700.
    rows = [Q(1000, 99.99, 10, 100.00, 10), Q(2000, 99.99, 10, 100.00, 10)]
    r = go(rows, [submit(0, BUY, 1, order_type=OT_MARKET)],
           latency=LatencyConfig(submit=Latency(response_ns=700)))
    assert int(r.fills["ts"][0]) == 1000 and int(r.fills["ts_local"][0]) == 1700


def test_exchange_matches_against_the_book_as_of_exchange_time():
    # Feed latency 500: quote A (ask 100.00) is at the exchange at 1000, seen locally at 1500;
    # quote B (ask 100.05) at the exchange at 2000, seen at 2500. The strategy sends a market buy
    # when it sees A (local 1500) with 600 ns entry latency: it arrives at 2100, when the exchange
    # already shows B -> fills at 100.05, although the strategy still saw 100.00 at 2100.
    rows = [Q(1000, 99.99, 10, 100.00, 10, local=1500), Q(2000, 100.04, 10, 100.05, 10, local=2500),
            Q(3000, 100.04, 10, 100.05, 10, local=3500)]
    step = [submit(0, BUY, 1, order_type=OT_MARKET)]
    r = go(rows, step, latency=LatencyConfig(submit=Latency(entry_ns=600)))
    assert fills(r) == [(2100, 100.05, 1.0, LIQ_TAKER)]
    assert r.fills["mid"][0] == pytest.approx(100.045)  # the exchange's mid, not the strategy's
    # with 400 ns it arrives at 1900, before B reaches the exchange -> 100.00
    r = go(rows, step, latency=LatencyConfig(submit=Latency(entry_ns=400)))
    assert fills(r) == [(1900, 100.00, 1.0, LIQ_TAKER)]


# --- queue models -----------------------------------------------------------------------------

QUEUE_ROWS = [
    Q(1000, 99.99, 10, 100.00, 10),  # buy 5 @ 99.99 arrives here (sent at 1000, latency 0)...
    Q(2000, 99.99, 10, 100.00, 10),  # ...and is matched before this row: 10 ahead, level 10
    Q(3000, 99.99, 14, 100.00, 10),  # 4 joined behind us: ahead stays 10, level 14
    Q(4000, 99.99, 8, 100.00, 10),   # 6 cancelled (no trades): who cancelled, front or back?
]


def test_conservative_queue_ignores_cancellations():
    # Conservative: cancels never move us, only the clamp ahead <= displayed applies: min(10, 8) = 8.
    r = go(QUEUE_ROWS, [submit(0, BUY, 5, 99.99)], queue_model="conservative")
    assert r.orders["queue_ahead"][0] == 8.0
    assert r.orders["level_size"][0] == 8.0


def test_probabilistic_queue_advances_on_cancellations():
    # Probabilistic, f(x) = x**2: at the 14 -> 8 change, ahead = 10, behind = 14 - 10 = 4,
    # cancelled = 6. Share from ahead = f(10)/(f(10)+f(4)) = 100/116. New ahead =
    # 10 - 6*100/116 = 4.827586...; the part attributed behind, 6*16/116 = 0.83, is <= 4: no spill.
    r = go(QUEUE_ROWS, [submit(0, BUY, 5, 99.99)], queue_model="probabilistic", queue_power=2.0)
    assert r.orders["queue_ahead"][0] == pytest.approx(10 - 6 * 100 / 116, rel=1e-12)
    # power 1 (proportional): share 10/14 -> ahead = 10 - 6*10/14
    r = go(QUEUE_ROWS, [submit(0, BUY, 5, 99.99)], queue_model="probabilistic", queue_power=1.0)
    assert r.orders["queue_ahead"][0] == pytest.approx(10 - 6 * 10 / 14, rel=1e-12)


def test_probabilistic_queue_spill_when_more_cancelled_than_was_behind():
    # ahead 10, behind 4, then the level drops 14 -> 1 (13 cancelled). f = x**2: from ahead
    # 13*100/116 = 11.21; attributed behind 13*16/116 = 1.79 <= 4, so no spill; ahead =
    # 10 - 11.21 < 0 -> clamped to 0 (and to the displayed 1). Both clamps give 0.
    rows = QUEUE_ROWS[:3] + [Q(4000, 99.99, 1, 100.00, 10)]
    r = go(rows, [submit(0, BUY, 5, 99.99)], queue_model="probabilistic", queue_power=2.0)
    assert r.orders["queue_ahead"][0] == 0.0
    # power 0.5 makes the split flatter: share = sqrt(10)/(sqrt(10)+2) = 0.6126; 13 cancelled:
    # from ahead 7.964, attributed behind 5.036 > 4 -> the 1.036 excess also comes from ahead:
    # 10 - 7.964 - 1.036 = 1.0 exactly (everything except the 1 still displayed was cancelled
    # ahead of us, since all 4 behind are gone); clamp min(1.0, 1) = 1.
    r = go(rows, [submit(0, BUY, 5, 99.99)], queue_model="probabilistic", queue_power=0.5)
    assert r.orders["queue_ahead"][0] == pytest.approx(1.0, rel=1e-12)


def test_probabilistic_queue_fills_stay_on_the_lot_grid():
    # ahead = 4.8276 after the cancellations above; a sell trade of 5 at 99.99 clears it with an
    # excess of 0.1724, less than one lot (lot size 1): nothing fills, and we are now first in
    # the queue. The next sell trade of 3 at our price fills exactly 3 lots.
    rows = QUEUE_ROWS + [T(5000, 99.99, 5, SELL), T(5500, 99.99, 3, SELL)]
    r = go(rows, [submit(0, BUY, 5, 99.99)], queue_model="probabilistic", queue_power=2.0)
    assert list(r.fills["qty"]) == [3.0]
    assert list(r.fills["ts"]) == [5500]


# --- the scripted strategy itself -------------------------------------------------------------

def test_scripted_time_trigger_fires_on_first_event_at_or_after_it():
    # at_time=2500 with events at 1000, 2000, 3000, 4000: it fires at the event at 3000 (the first
    # whose local time is >= 2500), so the market buy arrives before the 4000 row and pays the
    # ask quoted at 3000 (100.03); row order is kept: the second step waits for the first.
    rows = [Q(1000, 99.99, 10, 100.00, 10), Q(2000, 100.01, 10, 100.02, 10),
            Q(3000, 100.02, 10, 100.03, 10), Q(4000, 100.05, 10, 100.06, 10), Q(5000, 100.05, 10, 100.06, 10)]
    r = go(rows, [submit(0, BUY, 1, order_type=OT_MARKET, at_time=2500),
                  submit(1, SELL, 1, order_type=OT_MARKET)])
    assert list(r.orders["ts_sent"]) == [3000, 3000]
    assert fills(r, 0) == [(3000, 100.03, 1.0, LIQ_TAKER)]
    assert fills(r, 1) == [(3000, 100.02, 1.0, LIQ_TAKER)]


# --- exchange trading halts (CONTROL rows, level 0) -------------------------------------------

def HALT(t, code):
    """Exchange trading state: code -1 halt begins, 0 quoting resumes, +1 trading resumes."""
    from tickguard.data.schema import KIND_CONTROL

    return dict(ts_exch=t, ts_local=t, kind=KIND_CONTROL, side=code, level=0)


def test_halt_rejects_takers_and_freezes_resting_orders():
    # t=2000 halt; a market buy at 3000 is rejected (halted); a resting buy at 99.99 sees a sell
    # trade at 99.98 during "quoting" (code 0) but cannot fill; trading resumes at 5000 and the
    # trade through its price at 6000 fills all 4 at 99.99.
    from tickguard.engine.records import RJ_HALTED

    rows = [Q(1000, 99.99, 10, 100.00, 10), HALT(2000, -1), Q(3000, 99.99, 10, 100.00, 10),
            HALT(4000, 0), T(4500, 99.98, 50, SELL), HALT(5000, 1), T(6000, 99.98, 50, SELL)]
    steps = [submit(0, BUY, 4, 99.99, order_type=OT_LIMIT), submit(2, BUY, 3, order_type=OT_MARKET)]
    r = go(rows, steps)
    rej = oes(r, OE_REJECT, 1)
    assert len(rej) == 1 and rej["reason"][0] == RJ_HALTED and rej["ts"][0] == 3000
    assert fills(r, 0) == [(6000, 99.99, 4.0, LIQ_MAKER)]


def test_limit_order_sent_during_a_halt_rests_and_does_not_cross():
    # a buy at 100.00 (at the ask) sent in a halt rests instead of taking; after trading resumes
    # the next quote still shows the ask at 100.00 -> the other side is on our price: filled as maker
    rows = [Q(1000, 99.99, 10, 100.00, 10), HALT(2000, -1), Q(3000, 99.99, 10, 100.00, 10),
            HALT(4000, 1), Q(5000, 99.99, 10, 100.00, 10)]
    r = go(rows, [submit(2, BUY, 2, 100.00, order_type=OT_LIMIT)])
    assert fills(r) == [(5000, 100.00, 2.0, LIQ_MAKER)]
