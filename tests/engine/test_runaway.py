"""The runaway guard (EngineConfig.max_requests_per_instant): a strategy that answers each
rejection with the same request, with no latency anywhere, must stop the run with an error that
names the time, not hold the loop at one instant forever (it did, before the guard: the built-in
market maker hung with zero latency whenever its post-only quotes crossed the exchange's touch).

Counts worked out by hand from the events below: quotes every 1000 ns, bid 99.99, ask 100.00.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from tickguard.data.schema import KIND_QUOTE, Instrument, InstrumentTable, empty_events
from tickguard.engine.backtest import StrategyError, run
from tickguard.engine.config import EngineConfig, Latency, LatencyConfig
from tickguard.engine.records import OE_REJECT, OE_SUBMIT, OT_POST_ONLY, RJ_POST_ONLY_CROSS
from tickguard.engine.strategy import NumbaStrategy, submit_limit_nb, submit_market_nb

INST = InstrumentTable([Instrument(0, "X", tick_size=0.01, lot_size=1)])


def quotes(n=5, ts=None):
    ev = empty_events(n)
    ev["ts_exch"] = ev["ts_local"] = 1000 * np.arange(1, n + 1) if ts is None else ts
    ev["kind"] = KIND_QUOTE
    ev["bid_px"], ev["bid_sz"], ev["ask_px"], ev["ask_sz"] = 99.99, 10.0, 100.0, 10.0
    return ev


@njit(cache=True)
def resend_crossing_nb(reason, ev, order, now, mkt, pos, orders, n_orders, params, state, aux, req):
    """A post-only buy at the ask (it would take: the exchange rejects it) at the first market
    event, sent again on every response."""
    if reason == 0 and n_orders > 0:
        return 0
    return submit_limit_nb(req, 0, 0, 1.0, 100.0, OT_POST_ONLY)


@njit(cache=True)
def every_event_nb(reason, ev, order, now, mkt, pos, orders, n_orders, params, state, aux, req):
    """A market buy of one lot on every market event, nothing on responses."""
    if reason != 0:
        return 0
    return submit_market_nb(req, 0, 0, 1.0)


def test_a_resend_loop_with_no_latency_stops_naming_the_instant():
    # the first quote is at 1000 ns; its order reaches the exchange as the loop moves to the
    # next event (after 1), comes back rejected at 1000 ns and is sent again at once: the 51st
    # request at 1000 ns is one more than the limit
    strat = NumbaStrategy(resend_crossing_nb, max_requests=1, name="resender")
    with pytest.raises(StrategyError, match=r"strategy 'resender' sent 51 requests at local time 1000 ns "
                                            r"\(after 1 events\), more than "
                                            r"EngineConfig.max_requests_per_instant=50"):
        run(quotes(), strat, instruments=INST, config=EngineConfig(max_requests_per_instant=50))


def test_with_latency_time_moves_on_and_the_guard_stays_quiet():
    # 100 ns each way: a round trip of 200 ns, so one request per instant; the loop runs to the
    # end with far more requests in all than the limit (5 events, the last at 5000 ns: orders
    # leave at 1000, 1200, ..., every 200 ns while time moves on to the data's end)
    lat = LatencyConfig(submit=Latency(entry_ns=100, response_ns=100))
    strat = NumbaStrategy(resend_crossing_nb, max_requests=1)
    r = run(quotes(), strat, instruments=INST,
            config=EngineConfig(latency=lat, max_requests_per_instant=3))
    sent = r.order_events[r.order_events["event"] == OE_SUBMIT]
    assert len(sent) > 3
    assert len(np.unique(sent["ts"])) == len(sent)  # one per instant
    assert np.all(np.diff(sent["ts"]) == 200)
    rejects = r.order_events[r.order_events["event"] == OE_REJECT]
    assert set(rejects["reason"]) == {RJ_POST_ONLY_CROSS}


@pytest.mark.parametrize(("limit", "trips"), [(5, True), (6, False)])
def test_market_events_sharing_a_timestamp_count_together(limit, trips):
    # six quotes at 1000 ns, each answered by one order: six requests at one instant
    ev = quotes(8, ts=np.array([1000] * 6 + [2000, 3000]))
    strat = NumbaStrategy(every_event_nb, max_requests=1, name="each")
    config = EngineConfig(max_requests_per_instant=limit)
    if trips:
        with pytest.raises(StrategyError, match=r"sent 6 requests at local time 1000 ns \(after 5 events\)"):
            run(ev, strat, instruments=INST, config=config)
    else:
        r = run(ev, strat, instruments=INST, config=config)
        assert len(r.orders) == 8


def test_the_limit_is_not_part_of_the_result():
    lat = LatencyConfig(submit=Latency(entry_ns=100, response_ns=100))
    strat = NumbaStrategy(every_event_nb, max_requests=1)
    a = run(quotes(), strat, instruments=INST, config=EngineConfig(latency=lat))
    b = run(quotes(), strat, instruments=INST, config=EngineConfig(latency=lat, max_requests_per_instant=7))
    assert a.result_hash == b.result_hash


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_a_bad_limit_names_the_field(bad):
    with pytest.raises(ValueError, match=rf"EngineConfig.max_requests_per_instant: got {bad!r}"):
        EngineConfig(max_requests_per_instant=bad)
