"""A response callback acts at the response's own local time, against the book of that time.

Regression: responses used to be delivered only once the exchange had caught up to the *next*
market event, so a request sent from a response callback was matched against a later book, and
the strategy's clock could run backwards (found on the AMZN sample by the market-maker tests).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tickguard.data.schema import KIND_QUOTE, Instrument, InstrumentTable, empty_events
from tickguard.engine.backtest import run
from tickguard.engine.config import EngineConfig, Latency, LatencyConfig
from tickguard.engine.records import LIQ_TAKER
from tickguard.engine.strategy import NumbaStrategy, submit_market_nb


@njit(cache=True)
def round_trip_nb(reason, ev, order, now, mkt, pos, orders, n_orders, params, state, aux, req):
    """Buy 1 at the first event; sell it back the moment the buy's fill is reported.
    Logs every callback's ``now`` into state[1:] (state[0] counts them)."""
    k = int(state[0])
    if k + 1 < state.shape[0]:
        state[k + 1] = now
        state[0] = k + 1
    if reason == 0 and n_orders == 0:
        return submit_market_nb(req, 0, 0, 1.0)
    if reason == 1 and n_orders == 1 and pos[0] == 1.0:
        return submit_market_nb(req, 0, 0, -1.0)
    return 0


def _quotes(rows):
    ev = empty_events(len(rows))
    for i, (t, bid, ask) in enumerate(rows):
        ev[i]["ts_exch"] = t
        ev[i]["ts_local"] = t
        ev[i]["kind"] = KIND_QUOTE
        ev[i]["bid_px"], ev[i]["ask_px"] = bid, ask
        ev[i]["bid_sz"] = ev[i]["ask_sz"] = 10.0
    return ev


def test_response_callback_is_matched_against_the_book_of_its_time():
    # quotes at 1000 (99.99/100.00) and, after a long gap, at 50_000 (100.99/101.00).
    # 100 ns each way: buy sent 1000, fills 1100 @ 100.00, reported 1200; the sell sent at 1200
    # reaches the exchange at 1300, when the book still shows the 1000 quote: 99.99 at 1300.
    ev = _quotes([(1000, 99.99, 100.00), (50_000, 100.99, 101.00)])
    lat = LatencyConfig(submit=Latency(entry_ns=100, response_ns=100))
    strat = NumbaStrategy(round_trip_nb, state=np.zeros(16), max_requests=1)
    r = run(ev, strat, instruments=InstrumentTable([Instrument(0, "X", tick_size=0.01)]),
            config=EngineConfig(latency=lat))
    got = [(int(f["ts"]), int(f["ts_local"]), round(float(f["price"]), 2), float(f["qty"]) * f["side"])
           for f in r.fills]
    assert got == [(1100, 1200, 100.00, 1.0), (1300, 1400, 99.99, -1.0)]
    assert (r.fills["liquidity"] == LIQ_TAKER).all()


def test_callback_clock_never_runs_backwards_on_real_data():
    # The market maker on the AMZN sample answers its own responses all the time (cancel, then
    # requote when the cancel is acknowledged). Requests are recorded at the callback's `now`,
    # in the order the callbacks ran: those times must never decrease (before the fix, thousands
    # did, by up to 34 s).
    from pathlib import Path

    import pytest

    from tickguard.engine.records import OE_CANCEL_REQ, OE_DENIED, OE_MODIFY_REQ, OE_SUBMIT
    from tickguard.strategies.market_maker import market_maker

    lob = Path(__file__).resolve().parents[3] / "shared" / "data" / "lobster"
    if not lob.exists():
        pytest.skip("the shared LOBSTER sample is not beside the repository")
    from tickguard.data.lobster import read_lobster

    ev, table, _ = read_lobster(next(lob.glob("*message_1.csv")), next(lob.glob("*orderbook_1.csv")))
    lat = LatencyConfig(submit=Latency(entry_ns=20_000, response_ns=20_000))
    r = run(ev[:20_000], market_maker(0.01, gamma=0.01), instruments=table, config=EngineConfig(latency=lat))
    oe = r.order_events
    local = oe[np.isin(oe["event"], [OE_SUBMIT, OE_CANCEL_REQ, OE_MODIFY_REQ, OE_DENIED])]
    assert len(local) > 1000  # it is busy enough to have hit the old bug many times
    assert (np.diff(local["ts"]) >= 0).all()
