"""Metrics against hand-worked examples, independent formulas and a real backtest's own records.

Oracles: hand arithmetic written out in comments, Python's ``statistics`` module (Sharpe,
volatility), an O(n^2) brute-force drawdown, a small average-cost ledger for random fill streams,
and, end to end, the engine's own bookkeeping (equity record, fills' realized PnL and fees).
"""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pandas as pd
import pytest

from tickguard.data.cli import bundled_samples
from tickguard.engine.backtest import run
from tickguard.engine.config import EngineConfig, FeeConfig, Latency, LatencyConfig
from tickguard.engine.records import (
    FILL_DTYPE, LIQ_MAKER, LIQ_TAKER, OE_ACK, OE_CANCEL_REQ, OE_DENIED, OE_MODIFY_REQ,
    OE_SUBMIT, ORDER_DTYPE, ORDER_EVENT_DTYPE, OT_LIMIT, OT_MARKET, OT_POST_ONLY, RISK_EVENT_DTYPE,
)
from tickguard.reports.metrics import (
    annualized_return, compute_metrics, max_drawdown, periods_per_year, resample_equity,
    returns_from_equity, sharpe, sortino, volatility,
)
from tickguard.reports.metrics_trades import (
    TRADE_DTYPE, execution_stats, exposure_time, risk_events_by_rule, round_trips, round_trips_nb,
    trade_stats,
)
from tickguard.strategies.ema_crossover import ema_crossover

S = 10**9  # ns per second
REL = 1e-12  # float64 round-off on a handful of operations; far below any real difference


def _fills(rows, **extra):
    """rows: (ts_s, instrument, side, qty, price, fee[, mid, liquidity])."""
    f = np.zeros(len(rows), dtype=FILL_DTYPE)
    for i, row in enumerate(rows):
        ts, inst, side, qty, price, fee, *rest = row
        f[i]["ts"], f[i]["instrument"], f[i]["side"] = ts * S, inst, side
        f[i]["qty"], f[i]["price"], f[i]["fee"] = qty, price, fee
        f[i]["mid"] = rest[0] if rest else np.nan
        f[i]["liquidity"] = rest[1] if len(rest) > 1 else LIQ_TAKER
    return f


# --- annualization and resampling ---------------------------------------------------------------

def test_periods_per_year_assumptions():
    assert periods_per_year("1min") == 252 * 6.5 * 60  # 98 280 regular-session minutes
    assert periods_per_year("1D") == 252 and periods_per_year("2D") == 126
    assert periods_per_year("1h", trading_days=365, hours_per_day=24) == 8760
    with pytest.raises(ValueError, match="'MS'.*fixed-length"):
        periods_per_year("MS")
    with pytest.raises(ValueError, match="hours_per_day"):
        periods_per_year("1min", hours_per_day=25)


def test_resample_takes_last_sample_per_right_closed_bar():
    # samples at 10 s, 50 s, 70 s, 120 s, 200 s since the epoch; bars (0,60] (60,120] (120,180]
    # (180,240]: 60 -> the 50 s value, 120 -> the value stamped exactly 120 s, 180 empty, 240 -> 200 s
    eq = pd.DataFrame({"ts": np.array([10, 50, 70, 120, 200]) * S, "equity": [1.0, 2, 3, 4, 5]})
    dropped = resample_equity(eq, "1min")
    assert list(dropped.index.asi8 // S) == [60, 120, 240] and list(dropped) == [2, 4, 5]
    filled = resample_equity(eq, "1min", empty="ffill")
    assert list(filled.index.asi8 // S) == [60, 120, 180, 240] and list(filled) == [2, 4, 4, 5]
    r = returns_from_equity(eq, "1min", initial=1.0)
    np.testing.assert_allclose(r.to_numpy(), [2 / 1 - 1, 4 / 2 - 1, 5 / 4 - 1], rtol=REL)
    assert len(returns_from_equity(eq, "1min")) == 2  # no initial value: one return fewer
    with pytest.raises(ValueError, match="non-positive"):
        returns_from_equity(eq.assign(equity=[1.0, 2, 3, 4, -5]), "1min")
    with pytest.raises(TypeError, match="equity: got list"):
        resample_equity([1, 2, 3])


# --- return ratios --------------------------------------------------------------------------------

R = [0.02, -0.01, 0.03, -0.02, 0.004, 0.011]


def test_sharpe_and_volatility_match_statistics_module():
    ppy = 252
    expected = statistics.mean(R) / statistics.stdev(R) * math.sqrt(ppy)
    assert sharpe(R, ppy) == pytest.approx(expected, rel=REL)
    rf = 0.001
    ex = [x - rf for x in R]
    assert sharpe(R, ppy, rf) == pytest.approx(statistics.mean(ex) / statistics.stdev(ex) * math.sqrt(ppy),
                                               rel=REL)
    assert volatility(R, ppy) == pytest.approx(statistics.stdev(R) * math.sqrt(ppy), rel=REL)


def test_sortino_target_downside_deviation_by_hand():
    r = [0.02, -0.01, 0.03, -0.02]
    # T = 0: downside (0, -0.01, 0, -0.02); TDD = sqrt((1e-4 + 4e-4) / 4) over all 4 bars
    tdd = math.sqrt(0.0005 / 4)
    assert sortino(r, 252) == pytest.approx(0.005 / tdd * math.sqrt(252), rel=REL)
    # T = 0.01: r - T = (0.01, -0.02, 0.02, -0.03); TDD = sqrt((4e-4 + 9e-4) / 4); mean - T = -0.005
    assert sortino(r, 1, target=0.01) == pytest.approx(-0.005 / math.sqrt(0.0013 / 4), rel=REL)
    assert math.isnan(sortino([0.01, 0.02], 252))  # no downside: undefined, not inf


def test_ratios_undefined_not_infinite():
    assert math.isnan(sharpe([0.0, 0.0, 0.0], 252)) and math.isnan(sharpe([0.01, 0.01], 252))
    assert math.isnan(sharpe([0.01], 252)) and math.isnan(volatility([0.01], 252))
    assert math.isnan(sortino([], 252))
    with pytest.raises(ValueError, match="finite"):
        sharpe([0.01, np.nan], 252)


def test_annualized_return_geometric():
    assert annualized_return(0.1, 126, 252) == pytest.approx(1.1**2 - 1, rel=REL)  # half a year
    assert annualized_return(-0.19, 504, 252) == pytest.approx(0.9 - 1, rel=REL)  # 0.81 over 2 years
    assert math.isnan(annualized_return(0.1, 0, 252)) and math.isnan(annualized_return(-1.0, 5, 252))


# --- drawdown -------------------------------------------------------------------------------------

def test_max_drawdown_hand_worked():
    # peak 120 @10 -> trough 90 @20 (25 %, 30 currency), back to 120+ at 130 @40: 30 long.
    # Then 130 @40 -> 117 @50 (10 %), never recovered: underwater 40 -> 100 = 60, the longest.
    dd = max_drawdown([100, 120, 90, 110, 130, 117, 125], [0, 10, 20, 30, 40, 50, 100])
    assert dd.depth == pytest.approx(0.25, rel=REL) and dd.depth_abs == 30
    assert (dd.peak_ts, dd.trough_ts, dd.recovery_ts, dd.duration, dd.longest) == (10, 20, 40, 30, 60)
    # plateau at the peak: the drawdown starts at the last sample at the peak
    dd = max_drawdown([100, 120, 120, 90, 120])
    assert (dd.peak_ts, dd.trough_ts, dd.recovery_ts, dd.duration) == (2, 3, 4, 2)
    dd = max_drawdown([100, 80, 90], [0, 5, 9])  # unrecovered: duration runs to the end
    assert dd.depth == pytest.approx(0.2, rel=REL) and dd.recovery_ts is None and dd.duration == 9
    dd = max_drawdown([100, 101, 102])
    assert dd.depth == 0 and dd.peak_ts is None and dd.longest == 0


def _brute_force_mdd(v: np.ndarray) -> float:
    ratio = v[None, :] / v[:, None]  # [i, j] = v_j / v_i
    return float(np.max(np.triu(1.0 - ratio)))  # only j >= i counts


def test_max_drawdown_matches_brute_force_on_random_paths():
    rng = np.random.default_rng(7)
    for _ in range(20):
        v = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, rng.integers(2, 200))))
        assert max_drawdown(v).depth == pytest.approx(_brute_force_mdd(v), rel=1e-12, abs=1e-15)


# --- round trips and trade statistics -------------------------------------------------------------

HAND = [  # (ts_s, inst, side, qty, price, fee)
    (0, 0, +1, 2, 100.0, 0.2),  # open long 2
    (1, 0, +1, 1, 103.0, 0.1),  # add: long 3, average 101
    (2, 0, -1, 1, 104.0, 0.1),  # reduce to 2
    (5, 0, -1, 4, 99.0, 0.4),  # close 2 (fee 0.2) and flip short 2 (fee 0.2)
    (9, 0, +1, 2, 97.0, 0.2),  # close the short
    (10, 0, +1, 1, 98.0, 0.1),  # opens a long left open
]


def test_round_trips_with_flip_by_hand():
    t = round_trips(_fills(HAND))
    assert len(t) == 3 and list(t["closed"]) == [1, 1, 0] and list(t["direction"]) == [1, -1, 1]
    # trade 1, average cost 101: +1 x (104 - 101) + 2 x (99 - 101) = -1; fees 0.2 + 0.1 + 0.1 + 0.2
    long1, short, open_ = t
    assert long1["gross_pnl"] == pytest.approx(-1.0, rel=REL) and long1["fees"] == pytest.approx(0.6, rel=REL)
    assert long1["net_pnl"] == pytest.approx(-1.6, rel=REL) and long1["n_fills"] == 4
    assert long1["entry_price"] == pytest.approx(101.0, rel=REL)
    assert long1["exit_price"] == pytest.approx((104 + 2 * 99) / 3, rel=REL)
    assert (long1["entry_ts"], long1["exit_ts"]) == (0, 5 * S)
    # trade 2: short 2 @ 99 covered @ 97 = +4; fees 0.2 (half the flip fill) + 0.2
    assert short["gross_pnl"] == pytest.approx(4.0, rel=REL)
    assert short["net_pnl"] == pytest.approx(3.6, rel=REL)
    assert (short["entry_ts"], short["exit_ts"], short["entry_qty"]) == (5 * S, 9 * S, 2)
    assert open_["exit_ts"] == -1 and math.isnan(open_["net_pnl"]) and open_["entry_price"] == 98.0
    s = trade_stats(t)
    assert (s["n_trades"], s["n_open_trades"], s["n_winning_trades"], s["n_losing_trades"]) == (2, 1, 1, 1)
    assert s["win_rate"] == 0.5 and s["profit_factor"] == pytest.approx(3.6 / 1.6, rel=REL)
    assert s["expectancy"] == pytest.approx((3.6 - 1.6) / 2, rel=REL)
    assert s["avg_holding_s"] == pytest.approx((5 + 4) / 2, rel=REL)


def test_round_trips_per_instrument_with_multiplier():
    # instrument 1 (multiplier 50) interleaved with instrument 0: long 1 @ 10 -> 12 = 2 x 50 = 100
    f = _fills([(0, 1, +1, 1, 10.0, 0.0), (1, 0, -1, 3, 5.0, 0.0), (2, 1, -1, 1, 12.0, 0.0),
                (3, 0, +1, 3, 6.0, 0.0)])
    t = round_trips(f, multiplier=[1.0, 50.0])
    assert list(t["instrument"]) == [1, 0] and list(t["gross_pnl"]) == [100.0, -3.0]
    s = trade_stats(t)
    assert s["profit_factor"] == pytest.approx(100 / 3, rel=REL) and s["win_rate"] == 0.5
    with pytest.raises(ValueError, match="multiplier"):
        round_trips(f, multiplier=[1.0])
    with pytest.raises(TypeError, match="fills"):
        round_trips(pd.DataFrame(f))


def _ledger(f: np.ndarray) -> tuple[float, int]:
    """Independent average-cost ledger: total realized PnL and number of closes (flat or flip)."""
    pos, avg, realized, closes = {}, {}, 0.0, 0
    for x in f:
        k, q = int(x["instrument"]), x["side"] * x["qty"]
        p, a = pos.get(k, 0.0), avg.get(k, 0.0)
        if p == 0 or np.sign(p) == np.sign(q):
            avg[k] = (a * abs(p) + x["price"] * abs(q)) / abs(p + q)
        else:
            realized += (x["price"] - a) * min(abs(q), abs(p)) * np.sign(p)
            if p + q == 0 or np.sign(p + q) != np.sign(p):
                closes += 1
                avg[k] = x["price"]
        pos[k] = p + q
    return realized, closes


def test_round_trips_agree_with_an_average_cost_ledger_and_their_twin():
    rng = np.random.default_rng(11)
    for _ in range(30):
        n = int(rng.integers(1, 60))
        rows = [(i, int(rng.integers(0, 3)), int(rng.choice([-1, 1])), float(rng.integers(1, 5)),
                 float(rng.integers(90, 110)), 0.0) for i in range(n)]
        f = _fills(rows)
        for k in range(3):  # flatten every instrument at the end so every trade closes
            p = sum(x["side"] * x["qty"] for x in f if x["instrument"] == k)
            if p:
                f = np.concatenate([f, _fills([(n + k, k, -int(np.sign(p)), abs(p), 100.0, 0.0)])])
        t = round_trips(f)
        realized, closes = _ledger(f)
        assert t["closed"].all() and len(t) == closes
        assert t["gross_pnl"].sum() == pytest.approx(realized, rel=1e-9, abs=1e-9)
        args = (f["instrument"].astype(np.int64), f["side"].astype(np.int64), f["qty"], f["price"],
                f["fee"], f["ts"], np.ones(3))
        a, b = np.zeros(len(f), TRADE_DTYPE), np.zeros(len(f), TRADE_DTYPE)
        assert round_trips_nb(*args, a) == round_trips_nb.py_func(*args, b)
        assert a.tobytes() == b.tobytes()  # compiled kernel and its Python twin agree bit for bit


def test_trade_stats_empty_and_no_losers():
    s = trade_stats(np.zeros(0, TRADE_DTYPE))
    assert s["n_trades"] == 0 and all(math.isnan(s[k]) for k in ("win_rate", "profit_factor", "expectancy"))
    s = trade_stats(round_trips(_fills([(0, 0, 1, 1, 10.0, 0.0), (1, 0, -1, 1, 11.0, 0.0)])))
    assert s["win_rate"] == 1.0 and math.isnan(s["profit_factor"])  # no losers: undefined


# --- exposure, execution, risk events -------------------------------------------------------------

def test_exposure_time_by_hand():
    # inst 0 long 10..40 and 90..end; inst 1 short 30..60: held [10, 60) and [90, 100] of [0, 100]
    ts = np.array([10, 30, 40, 60, 90])
    inst = np.array([0, 1, 0, 1, 0])
    pos = np.array([1.0, -2.0, 0.0, 0.0, 1.0])
    assert exposure_time(ts, inst, pos, 0, 100) == pytest.approx(0.6, rel=REL)
    assert exposure_time(ts, inst, pos, 20, 100) == pytest.approx(50 / 80, rel=REL)  # clipped
    # inst 1 has no fill before 30: it is flat, whatever inst 0's first fill says -> [10,20) + [30,40]
    assert exposure_time([10, 20, 30], [0, 0, 1], [1.0, 0.0, 1.0], 0, 40) == pytest.approx(0.5, rel=REL)
    assert exposure_time([], [], [], 0, 100) == 0.0 and math.isnan(exposure_time([], [], [], 5, 5))
    # the flattening fill of inst 0 is stamped 3 but booked after a fill stamped 6: it takes effect
    # at 6, so inst 0 is held [4, 6) = 0.2 of [0, 10] (raw stamps would give a negative span)
    assert exposure_time([4, 6, 3], [0, 1, 0], [1.0, 0.0, 0.0], 0, 10) == pytest.approx(0.2, rel=REL)
    with pytest.raises(ValueError, match="lengths differ"):
        exposure_time([1, 2], [0], [1.0, 0.0], 0, 10)


def test_execution_stats_by_hand():
    f = _fills([
        (0, 0, +1, 2, 100.02, 0.1, 100.00, LIQ_TAKER),  # paid 0.02 over mid x 2 = 0.04
        (1, 0, -1, 1, 99.99, 0.05, 100.00, LIQ_TAKER),  # sold 0.01 under mid = 0.01
        (2, 0, +1, 1, 99.99, -0.02, 100.00, LIQ_MAKER),  # bought 0.01 under mid = -0.01
        (3, 0, -1, 2, 100.00, 0.0, np.nan, LIQ_MAKER),  # no mid: out of the slippage figure
    ])
    o = np.zeros(4, ORDER_DTYPE)
    o["order_type"] = [OT_MARKET, OT_LIMIT, OT_POST_ONLY, OT_LIMIT]
    o["qty"], o["filled"] = [3, 4, 1, 5], [3, 1, 1, 0]
    oe = np.zeros(8, ORDER_EVENT_DTYPE)
    oe["event"] = [OE_SUBMIT] * 4 + [OE_ACK, OE_CANCEL_REQ, OE_MODIFY_REQ, OE_DENIED]
    s = execution_stats(f, o, oe, initial_cash=1000.0)
    notional = 2 * 100.02 + 99.99 + 99.99 + 200.0
    assert s["n_orders"] == 4 and s["n_fills"] == 4 and s["n_order_messages"] == 6 and s["n_denied"] == 1
    assert s["order_to_trade"] == 6 / 4 and s["fees_paid"] == pytest.approx(0.13, rel=REL)
    assert s["traded_notional"] == pytest.approx(notional, rel=REL)
    assert s["turnover"] == pytest.approx(notional / 1000, rel=REL)
    assert s["maker_share"] == pytest.approx((99.99 + 200) / notional, rel=REL)
    assert s["limit_fill_ratio"] == pytest.approx((1 + 1 + 0) / (4 + 1 + 5), rel=REL)
    assert s["slippage_vs_fill_mid_cost"] == pytest.approx(0.04, rel=1e-9)
    assert s["slippage_vs_fill_mid_bps"] == pytest.approx(1e4 * 0.04 / 400, rel=1e-9)  # 1 bp
    assert "no mid at decision time" in s["slippage_reference"]
    s = execution_stats(f[:0], o[:0], oe[:0])
    assert s["n_fills"] == 0 and math.isnan(s["order_to_trade"]) and math.isnan(s["maker_share"])


def test_risk_events_by_rule():
    r = np.zeros(3, RISK_EVENT_DTYPE)
    r["rule"] = [2, 1, 2]
    assert risk_events_by_rule(r, {1: "max_position"}) == {"max_position": 1, "rule_2": 2}
    assert risk_events_by_rule(r[:0]) == {}


# --- compute_metrics on engine runs ---------------------------------------------------------------

def _synthetic(n: int):
    from tickguard.data.synth import synthesize

    return synthesize(n, seed=3)


def test_compute_metrics_without_fills_is_json_and_undefined_ratios_are_none():
    events, table = _synthetic(2000)
    r = run(events, ema_crossover(warmup=10**9), instruments=table)  # never trades
    m = compute_metrics(r)
    json.dumps(m, allow_nan=False)  # strict JSON: no NaN/inf slipped through
    assert m["n_fills"] == 0 and m["n_trades"] == 0 and m["total_return"] == 0.0
    for key in ("sharpe", "sortino", "calmar", "win_rate", "profit_factor", "order_to_trade"):
        assert m[key] is None, key
    assert m["max_drawdown"] == 0.0 and m["exposure_time"] == 0.0 and m["volatility"] == 0.0
    one = run(events[:1], ema_crossover(), instruments=table)  # a single equity sample
    m1 = compute_metrics(one)
    assert m1["duration_s"] == 0.0 and m1["n_periods"] == 1 and m1["volatility"] is None
    assert m1["sharpe"] is None and m1["exposure_time"] is None


def test_compute_metrics_extra_hook_and_bad_args():
    events, table = _synthetic(500)
    r = run(events, ema_crossover(warmup=10**9), instruments=table)
    m = compute_metrics(r, extra={"var_99": 12.5, "var_model": "historical"})
    assert m["var_99"] == 12.5 and m["var_model"] == "historical"
    with pytest.raises(ValueError, match="'sharpe' clashes"):
        compute_metrics(r, extra={"sharpe": 1.0})
    with pytest.raises(ValueError, match="periods_per_year"):
        compute_metrics(r, periods_per_year=0)


@pytest.fixture(scope="module")
def demo():
    """The CLI's path (bundled sample, ema_crossover, constant latency) with a taker fee added."""
    data = str(bundled_samples()[0][0])
    lat = Latency(entry_ns=100e3, response_ns=100e3)
    config = EngineConfig(latency=LatencyConfig(submit=lat), fees=FeeConfig(taker_bps=0.5))
    return run(data, ema_crossover(), config=config)


def test_end_to_end_metrics_agree_with_the_engine_records(demo):
    r = demo
    m = compute_metrics(r)
    json.dumps(m, allow_nan=False)
    eq, f = r.equity, r.fills
    assert len(f) > 50 and m["n_fills"] == len(f) and m["n_orders"] == len(r.orders)
    assert m["fees_paid"] == pytest.approx(f["fee"].sum(), rel=REL) and m["fees_paid"] > 0
    assert m["n_risk_events"] == len(r.risk_events) == 0 and m["risk_events_by_rule"] == {}
    assert m["risk_ring_overflows"] == {}  # no RiskGate: nothing to drop
    # final equity - initial cash = the engine's own realized + unrealized - fees at the last sample
    last = eq[-1]
    assert m["total_pnl"] == pytest.approx(last["realized"] + last["unrealized"] - last["fees"], abs=1e-6)
    assert m["total_pnl"] == pytest.approx(r.summary["pnl"], abs=1e-9)
    # bar returns compound to the total return
    rets = returns_from_equity(eq, m["bar"], initial=r.config.initial_cash)
    assert len(rets) == m["n_periods"]
    assert np.prod(1 + rets.to_numpy()) - 1 == pytest.approx(m["total_return"], rel=1e-9)
    assert m["sharpe"] == pytest.approx(statistics.mean(rets) / statistics.stdev(rets) * math.sqrt(98_280),
                                        rel=1e-9)
    # drawdown on the raw samples (initial cash first) vs brute force
    v = np.concatenate([[r.config.initial_cash], eq["equity"]])
    assert m["max_drawdown"] == pytest.approx(_brute_force_mdd(v), rel=1e-9)
    # round trips: every size-1 flip closes one trade; closed trades' gross PnL = engine realized PnL
    t = round_trips(f)
    assert m["n_trades"] + m["n_open_trades"] == len(t)
    assert np.all(t["exit_qty"][t["closed"] == 0] == 0)  # the open trade has realized nothing yet
    assert m["trades_gross_pnl"] == pytest.approx(f["realized"].sum(), abs=1e-9)
    assert t["fees"].sum() == pytest.approx(f["fee"].sum(), rel=1e-12)  # flip fees split, none lost
    closed_fees = t["fees"][t["closed"] == 1].sum()
    assert m["trades_net_pnl"] == pytest.approx(f["realized"].sum() - closed_fees, abs=1e-9)
    assert m["taker_share"] == 1.0 and 0.0 < m["exposure_time"] <= 1.0
    start, end = pd.Timestamp(m["start"]), pd.Timestamp(m["end"])
    assert start.value == eq["ts"][0] and end.value == eq["ts"][-1]
