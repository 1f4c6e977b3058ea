"""Bad configuration fails loudly, naming the field; a misbehaving strategy is named with its event."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from tickguard.data.schema import KIND_QUOTE, Instrument, InstrumentTable, empty_events
from tickguard.engine.backtest import StrategyError, _scan_rows_nb, run
from tickguard.engine.config import EngineConfig, FeeConfig, Latency, LatencyConfig
from tickguard.engine.records import OT_LIMIT
from tickguard.engine.scripted import cancel, scripted, submit
from tickguard.engine.strategy import NumbaStrategy, submit_market_nb

INST = InstrumentTable([Instrument(0, "X", tick_size=0.01, lot_size=1)])


def quotes(n=5):
    ev = empty_events(n)
    ev["ts_exch"] = ev["ts_local"] = 1000 * np.arange(1, n + 1)
    ev["kind"] = KIND_QUOTE
    ev["bid_px"], ev["bid_sz"], ev["ask_px"], ev["ask_sz"] = 99.99, 10.0, 100.0, 10.0
    return ev


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(initial_cash=math.nan), "initial_cash"),
        (dict(initial_cash=math.inf), "initial_cash"),
        (dict(queue_model="fifo"), "queue_model"),
        (dict(mark="close"), "mark"),
        (dict(queue_power=0.0), "queue_power"),
        (dict(queue_power=-1.0), "queue_power"),
        (dict(sample_every=-1), "sample_every"),
        (dict(sample_dt_ns=-5), "sample_dt_ns"),
        (dict(seed=-1), "seed"),
        (dict(seed=2**53), "seed"),
        (dict(chunk_rows=0), "chunk_rows"),
        (dict(impact_ticks=math.inf), "impact_ticks"),
        (dict(impact_ticks=math.nan), "impact_ticks"),
    ],
)
def test_bad_engine_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        EngineConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(entry_ns=-1.0), "entry_ns"),
        (dict(response_ns=math.nan), "response_ns"),
        (dict(entry_sigma=math.inf), "entry_sigma"),
        (dict(response_sigma=-0.1), "response_sigma"),
        (dict(mode="gaussian"), "mode"),
    ],
)
def test_bad_latency_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Latency(**kwargs)


@pytest.mark.parametrize("field", ["maker_bps", "taker_bps", "maker_per_unit", "taker_per_unit"])
def test_non_finite_fee_names_the_field(field):
    with pytest.raises(ValueError, match=field):
        FeeConfig(**{field: math.nan})


def test_trace_mode_without_trace_is_refused_at_run():
    cfg = EngineConfig(latency=LatencyConfig(submit=Latency(mode="trace")))
    with pytest.raises(ValueError, match="trace"):
        run(quotes(), scripted([]), instruments=INST, config=cfg)


def test_unsorted_or_misshaped_trace_names_the_part():
    bad_ts = LatencyConfig(submit=Latency(mode="trace"), trace=(np.array([5, 1]), np.zeros((2, 6))))
    with pytest.raises(ValueError, match=r"trace\[0\]"):
        bad_ts.arrays()
    bad_shape = LatencyConfig(submit=Latency(mode="trace"), trace=(np.array([1, 5]), np.zeros((2, 5))))
    with pytest.raises(ValueError, match=r"trace\[1\]"):
        bad_shape.arrays()


def test_strategy_sending_more_than_max_requests_raises_strategy_error():
    # three submits due at event 2 with room for two: the engine must stop and say who and where
    steps = [submit(2, 1, 1, 99.98, order_type=OT_LIMIT) for _ in range(3)]
    strat = scripted(steps, name="too_chatty", max_requests=2)
    with pytest.raises(StrategyError, match=r"'too_chatty' returned 3 requests from its market-event "
                       r"callback at local time 3000 ns \(after 2 events\).*max_requests=2"):
        run(quotes(), strat, instruments=INST, config=EngineConfig())
    # two fit: it runs, and both orders exist
    ok = run(quotes(), scripted(steps[:2], max_requests=2), instruments=INST, config=EngineConfig())
    assert len(ok.orders) == 2


def test_numba_strategy_validation():
    with pytest.raises(ValueError, match="max_requests"):
        scripted([], max_requests=0)
    with pytest.raises(TypeError, match="@njit"):
        NumbaStrategy(lambda *a: 0)


def test_scripted_schedule_validation():
    with pytest.raises(ValueError, match="step 1 triggers before"):
        scripted([submit(5, 1, 1, 100.0), cancel(2, 0)])
    with pytest.raises(ValueError, match="at_time"):
        scripted([submit(0, 1, 1, 100.0, at_time=2**60 + 1)])


@njit(cache=True)
def bad_on_response_nb(reason, ev, order, now, mkt, pos, orders, n_orders, params, state, aux, req):
    """One market order at the first event; then answers its fill with a negative count."""
    if reason == 0:
        if n_orders == 0:
            return submit_market_nb(req, 0, 0, 1.0)
        return 0
    return -1


def test_bad_count_from_a_response_callback_names_the_order_and_its_time():
    # the order leaves at 1000, fills at 1000 (zero latency), the fill is reported at 1000 + 250
    lat = LatencyConfig(submit=Latency(entry_ns=0, response_ns=250))
    with pytest.raises(StrategyError, match=r"returned -1 requests from its response callback for order 0 "
                                            r"at local time 1250 ns"):
        run(quotes(), NumbaStrategy(bad_on_response_nb, max_requests=1), instruments=INST,
            config=EngineConfig(latency=lat))


@pytest.mark.parametrize("bad_id", [7, -1])
@pytest.mark.parametrize("chunk_rows", [3, 1000])
def test_event_for_an_unknown_instrument_names_its_row(bad_id, chunk_rows):
    # The kernels index per-instrument arrays by the id, unchecked: an id the table lacks must be
    # refused before the loop sees it, naming the row across chunk boundaries.
    ev = quotes(8)
    ev["instrument"][5] = bad_id
    strat = scripted([submit(1, 1, 1.0, 100.0)])
    with pytest.raises(ValueError, match=rf"event row 5: field 'instrument' is {bad_id}, .*ids \[0\]"):
        run(ev, strat, instruments=INST, config=EngineConfig(chunk_rows=chunk_rows))


@pytest.mark.parametrize("bad_row", [None, 6])
def test_a_one_row_chunk_is_checked_by_the_same_kernel(monkeypatch, bad_row):
    # 7 rows in chunks of 3: the last chunk is one row; it is checked like the others, by the
    # kernel compiled before the run (a one-row slice of the rows has their type)
    import tickguard.engine.backtest as backtest

    seen = []

    def spy(events, prev_ts):
        seen.append((len(events), int(prev_ts)))
        return _scan_rows_nb(events, prev_ts)

    monkeypatch.setattr(backtest, "_scan_rows_nb", spy)
    ev = quotes(7)
    if bad_row is not None:
        ev["instrument"][bad_row] = 3
    strat = scripted([submit(1, 1, 1.0, 100.0)])
    if bad_row is None:
        run(ev, strat, instruments=INST, config=EngineConfig(chunk_rows=3))
    else:
        with pytest.raises(ValueError, match=r"event row 6: field 'instrument' is 3"):
            run(ev, strat, instruments=INST, config=EngineConfig(chunk_rows=3))
    # the compile-time call, then each chunk with the ts_local of the row before it
    t = ev["ts_local"]
    assert seen == [(1, 0), (3, int(np.iinfo(np.int64).min)), (3, int(t[2])), (1, int(t[5]))]
    # and the one-row chunk has the type compiled before the run (no compile in the reader)
    from numba import typeof

    assert typeof(ev[6:7]) == typeof(ev[0:3]) == typeof(np.zeros(1, dtype=ev.dtype))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(-(2**31), 2**31 - 1), st.integers(-50, 50),
                          st.sampled_from([1, 2, 4, 8, 16, 3, 5, 12])), min_size=1, max_size=300),
       st.integers(-60, 60))
def test_the_row_scan_is_numpys_min_max_and_first_descent(rows, prev_ts):
    # oracle: numpy's min and max of the ids, the first row whose ts_local is below the one
    # before it (the previous chunk's last for row 0) and numpy's bitwise or of the kinds (which
    # says whether the chunk brings a book row); the kernel reads the rows as the reader does
    ev = empty_events(len(rows))
    ev["instrument"] = [r[0] for r in rows]
    ev["ts_local"] = np.cumsum([r[1] for r in rows])  # steps of either sign, or none
    ev["kind"] = [r[2] for r in rows]
    ts = np.concatenate([[prev_ts], ev["ts_local"]])
    down = np.flatnonzero(np.diff(ts) < 0)
    expected = (ev["instrument"].min(), ev["instrument"].max(), int(down[0]) if len(down) else -1,
                int(np.bitwise_or.reduce(ev["kind"])))
    assert _scan_rows_nb(ev, np.int64(prev_ts)) == expected


@pytest.mark.parametrize("chunk_rows", [3, 4, 1000])
@pytest.mark.parametrize("bad_row", [1, 4])
def test_events_out_of_local_time_order_are_refused_naming_the_row(chunk_rows, bad_row):
    # the loop's clocks and its wake-up bounds assume ts_local never decreases; a descent is
    # refused before the loop sees it, inside a chunk or across a boundary (rows 3 | 4 in chunks
    # of 4 and 3); equal times are fine
    ev = quotes(8)
    ev["ts_local"][2] = ev["ts_local"][1]
    run(ev.copy(), scripted([]), instruments=INST, config=EngineConfig(chunk_rows=chunk_rows))
    prev = int(ev["ts_local"][bad_row - 1])
    ev["ts_local"][bad_row] = prev - 1
    with pytest.raises(ValueError, match=rf"event row {bad_row}: field 'ts_local' is {prev - 1} ns, "
                                         rf"below the previous row's {prev} ns; .*sort them by ts_local"):
        run(ev, scripted([]), instruments=INST, config=EngineConfig(chunk_rows=chunk_rows))


def test_an_id_missing_inside_the_tables_range_is_refused():
    table = InstrumentTable([Instrument(0, "X", tick_size=0.01, lot_size=1),
                             Instrument(2, "Z", tick_size=0.01, lot_size=1)])
    ev = quotes(4)
    ev["instrument"][3] = 1  # below the largest id, but no instrument 1
    with pytest.raises(ValueError, match=r"event row 3: field 'instrument' is 1, .*ids \[0, 2\]"):
        run(ev, scripted([]), instruments=table)
