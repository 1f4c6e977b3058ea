"""The exchange's deferred market view against its oracle: every row applied in order.

While the exchange is idle the loop (engine/loop_template.py) leaves the rows it owes until it is
next needed, then takes them with ``_idle_rows``: trades, trading-state changes and depth rows at
once, quotes deferred to one per instrument (``catch_up_nb``). The loop does so only while no take
of ours is pending at a touch (tests/engine/test_fills_handworked.py has the loop-level cases).
The oracle is ``apply_market_event_nb`` on each row in order, the exchange's eager path.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tickguard.data.schema import KIND_CONTROL, KIND_QUOTE, KIND_TRADE, empty_events
from tickguard.engine.book import BM_NF
from tickguard.engine.layout import M_BID, M_HALTED, M_MID, M_NF, M_TAKEN_ASK, M_TAKEN_BID, M_TS_QUOTE
from tickguard.engine.loop_kernels import _idle_rows, _takes_pending
from tickguard.engine.market import apply_market_event_nb, catch_up_nb

N_INST = 3
PRICES = [np.nan, 99.98, 99.99, 100.0, 100.01]  # few values: repeats and reverts are common
SIZES = [np.nan, 0.0, 5.0, 7.0]

FIELDS = {
    "instrument": st.integers(0, N_INST - 1),
    "kind": st.sampled_from([KIND_QUOTE, KIND_TRADE, KIND_CONTROL, KIND_QUOTE | KIND_TRADE,
                             KIND_QUOTE, KIND_QUOTE]),
    "side": st.integers(-1, 1),
    "level": st.integers(0, 1),
    "price": st.sampled_from(PRICES),
    "bid_px": st.sampled_from(PRICES), "bid_sz": st.sampled_from(SIZES),
    "ask_px": st.sampled_from(PRICES), "ask_sz": st.sampled_from(SIZES),
    # exchange-time step to the next row (0: same time; negative: feed latency reordered it, so
    # the exchange's clock is the running maximum)
    "gap": st.integers(-2, 3),
}
row = st.fixed_dictionaries(FIELDS)


def _events(rows: list[dict]) -> np.ndarray:
    ev = empty_events(len(rows))
    ts = latest = 1_000
    for i, r in enumerate(rows):
        ts += r["gap"]
        latest = max(latest, ts)
        ev["ts_exch"][i] = ts
        ev["ts_local"][i] = latest + 10  # local time stays in order
        for k, v in r.items():
            if k != "gap":
                ev[k][i] = v
    return ev


def _start_view() -> np.ndarray:
    mkt = np.full((N_INST, M_NF), np.nan)
    mkt[:, [M_TAKEN_BID, M_TAKEN_ASK, M_HALTED]] = 0.0
    mkt[:, :4] = [100.0, 100.01, 5.0, 5.0]
    return mkt


def _oracle(ev: np.ndarray, start: int, clock: int, upto: int,
            mkt: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Rows from ``start`` applied one by one while the exchange's clock (the running maximum of
    their times, from ``clock``) stays within ``upto``: (view, next row, clock)."""
    out = mkt.copy()
    j = start
    while j < len(ev) and max(int(ev["ts_exch"][j]), clock) <= upto:
        e = ev[j]
        clock = max(int(e["ts_exch"]), clock)
        apply_market_event_nb(out, int(e["instrument"]), e, clock, True)
        j += 1
    return out, j, clock


# mostly quotes (three rows in twelve bring more): long runs of quote rows, which _idle_rows
# takes two rows a step, ended by a row past the bound or by a row that brings more
quote_run_row = st.fixed_dictionaries({
    **FIELDS,
    "kind": st.sampled_from([KIND_QUOTE] * 9 + [KIND_TRADE, KIND_CONTROL, KIND_QUOTE | KIND_TRADE]),
})


@settings(max_examples=300, deadline=None)
@given(rows=st.one_of(st.lists(row, min_size=1, max_size=40),
                      st.lists(quote_run_row, min_size=1, max_size=60)),
       cut=st.floats(0.0, 1.0), start=st.floats(0.0, 1.0))
def test_idle_rows_then_catch_up_equal_every_row_applied_in_order(rows, cut, start):
    # from a cursor inside the chunk (rows before it taken earlier: the clock is their latest
    # time), up to a time anywhere in it
    ev = _events(rows)
    j0 = int(start * len(ev))
    clock0 = int(ev["ts_exch"][:j0].max()) if j0 else 0
    lo, hi = int(ev["ts_exch"].min()), int(ev["ts_exch"].max())
    upto = int(lo + cut * (hi - lo))
    expected, j_expected, clock = _oracle(ev, j0, clock0, upto, _start_view())

    mkt = _start_view()
    deferred = np.full(N_INST, -1, np.int64)
    book = np.zeros((N_INST, 2, 0, 2))  # no depth kept (book_levels = 0)
    meta = np.zeros((N_INST, BM_NF), np.int64)
    j, last_xts = _idle_rows(ev, j0, clock0, upto, mkt, book, meta, np.full(N_INST, 0.01), deferred)
    assert j == j_expected and last_xts == clock
    catch_up_nb(ev, deferred, mkt)
    assert (deferred == -1).all()  # caught up: nothing left deferred
    np.testing.assert_array_equal(mkt, expected)  # NaN where NaN
    assert np.isnan(mkt[:, M_TS_QUOTE]).all()  # the exchange's view keeps no quote clock


def _idle_quotes(times: list[int], until: int, clock: int = 0) -> tuple[int, int, np.ndarray]:
    """Quote rows of instrument 0 at these exchange times, taken by _idle_rows up to ``until``:
    (next row, clock, deferred)."""
    ev = empty_events(len(times))
    ev["ts_exch"] = times
    ev["ts_local"] = max(times) + 10
    ev["kind"] = KIND_QUOTE
    deferred = np.full(N_INST, -1, np.int64)
    mkt, book, meta = _start_view(), np.zeros((N_INST, 2, 0, 2)), np.zeros((N_INST, BM_NF), np.int64)
    j, clock = _idle_rows(ev, 0, clock, until, mkt, book, meta, np.full(N_INST, 0.01), deferred)
    return j, clock, deferred


def test_the_clock_after_a_run_of_quotes_is_their_latest_time_wherever_it_sits():
    # worked by hand: the rows are taken two at a time, so the latest time may sit first or
    # second of a pair, or in the odd row at the end; the clock must be it in every case
    for times in ([5, 9, 7, 8], [9, 5, 6, 7], [5, 6, 7, 9], [5, 6, 9], [5, 9, 6], [9]):
        j, clock, deferred = _idle_quotes(times, until=100)
        assert (j, clock) == (len(times), max(times)), times
        assert deferred[0] == len(times) - 1 and (deferred[1:] == -1).all()  # the latest row


def test_a_long_run_of_quotes_ends_at_the_first_row_past_the_bound():
    # worked by hand: eleven quote rows, the latest time (30) sixth; with a bound above them all,
    # all are taken and the clock is 30; with bound 25, rows 0-4 (5 to 9) are taken and 30 stops
    # the run, clock 9; the last of eight rows past the bound by one ns: seven rows, clock 11
    times = [5, 6, 7, 8, 9, 30, 10, 11, 12, 13, 14]
    j, clock, deferred = _idle_quotes(times, until=100)
    assert (j, clock, int(deferred[0])) == (11, 30, 10)
    assert _idle_quotes(times, until=25)[:2] == (5, 9)
    assert _idle_quotes([5, 6, 7, 8, 9, 10, 11, 12], until=11)[:2] == (7, 11)
    # the same rows with a trade on row 6's quote: with bound 8, rows 0-3 are taken; with bound
    # 100 all are, the trade row at once, the quotes around it deferred (the latest: row 10)
    ev = empty_events(len(times))
    ev["ts_exch"] = times
    ev["ts_local"] = 40
    ev["kind"] = KIND_QUOTE
    ev["kind"][6] = KIND_QUOTE | KIND_TRADE
    ev["instrument"] = 0
    deferred = np.full(N_INST, -1, np.int64)
    mkt, book, meta = _start_view(), np.zeros((N_INST, 2, 0, 2)), np.zeros((N_INST, BM_NF), np.int64)
    j, clock = _idle_rows(ev, 0, 0, 8, mkt, book, meta, np.full(N_INST, 0.01), deferred)
    assert (j, clock) == (4, 8)  # rows 0-3 (5 to 8)
    j, clock = _idle_rows(ev, 0, 0, 100, mkt, book, meta, np.full(N_INST, 0.01), deferred)
    assert j == len(times) and clock == 30 and int(deferred[0]) == 10  # the last quote, row 10


def test_a_row_past_the_bound_ends_the_run_though_later_rows_are_within_it():
    # worked by hand: bound 8; the second row (9) is past it, so only the first is taken, clock 5
    # (the third, 7, is within the bound but comes after the exchange's clock would pass it)
    assert _idle_quotes([5, 9, 7], until=8)[:2] == (1, 5)
    assert _idle_quotes([5, 6, 9, 7], until=8)[:2] == (2, 6)  # the pair (5, 6), then 9 stops it
    # a clock already past the bound takes nothing, whatever the rows' times
    assert _idle_quotes([5, 6], until=8, clock=9)[:2] == (0, 9)


def test_a_pending_take_is_counted_per_instrument():
    mkt = _start_view()
    assert _takes_pending(mkt) == 0
    mkt[1, M_TAKEN_BID] = 2.0
    mkt[2, M_TAKEN_ASK] = 1.0
    mkt[2, M_TAKEN_BID] = 1.0
    assert _takes_pending(mkt) == 2


@settings(max_examples=300, deadline=None)
@given(bid=st.sampled_from([np.nan, 99.98, 100.0, -np.inf, np.inf, 1e308]),
       ask=st.sampled_from([np.nan, 100.01, 100.0, np.inf, -np.inf, 1e308]))
def test_the_mid_is_the_average_or_the_one_side_quoted(bid, ask):
    # the rule written out: both sides quoted -> their average (whatever it is: inf, or NaN for
    # +inf and -inf); one side NaN -> the other; both NaN -> NaN
    if np.isnan(bid) and np.isnan(ask):
        expected = np.nan
    elif np.isnan(bid):
        expected = ask
    elif np.isnan(ask):
        expected = bid
    else:
        expected = 0.5 * (bid + ask)
    mkt = _start_view()
    quote = empty_events(1)[0]
    quote["kind"], quote["price"] = KIND_QUOTE, np.nan
    quote["bid_px"], quote["bid_sz"], quote["ask_px"], quote["ask_sz"] = bid, 1.0, ask, 1.0
    apply_market_event_nb(mkt, 1, quote, 5, False)
    np.testing.assert_array_equal(mkt[1, M_MID], expected)
    assert mkt[1, M_BID] == bid or (np.isnan(bid) and np.isnan(mkt[1, M_BID]))
