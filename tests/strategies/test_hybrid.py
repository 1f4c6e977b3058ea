"""Rule overlay: hand-worked flat / hold decisions and their records, an expanding-quantile
oracle (numpy, row by row), rule precedence, pass-through of other instruments, and causality."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from tickguard.data.schema import KIND_QUOTE, KIND_TRADE, empty_events
from tickguard.data.synth import SynthConfig, synthesize
from tickguard.engine.strategy import SignalStrategy
from tickguard.strategies.features import realized_vol, stream_index
from tickguard.strategies.hybrid import (
    DECISION_DTYPE, MaxSpreadRule, RuleFilter, VolatilityQuantileRule, hybrid,
)

NAN = np.nan
T0 = 1_704_205_800_000_000_000


def book(spreads_ticks, tick=0.25, inst=None, trades=()):
    """Quote rows with the given spreads (ticks) around 100; rows listed in ``trades`` are trades."""
    n = len(spreads_ticks)
    ev = empty_events(n)
    ev["ts_exch"] = ev["ts_local"] = T0 + np.arange(n) * 1000
    ev["instrument"] = 0 if inst is None else inst
    for i, s in enumerate(spreads_ticks):
        if i in trades:
            ev["kind"][i], ev["price"][i], ev["size"][i] = KIND_TRADE, 100.0, 1.0
        else:
            ev["kind"][i] = KIND_QUOTE
            ev["bid_px"][i], ev["ask_px"][i] = 100.0, 100.0 + s * tick
            ev["bid_sz"][i] = ev["ask_sz"][i] = 10.0
    return ev


def const(values):
    return lambda events: np.asarray(values, dtype=float)


def test_spread_rule_goes_flat_and_records_each_override():
    #          row: 0  1  2  3  4  5  6  7 (row 5 is a trade: the spread of row 4 still holds)
    ev = book([1, 2, 3, 1, 4, 0, 2, 5], trades={5})
    base = [NAN, 1, 1, 1, -1, -1, 0, NAN]
    flt = RuleFilter(const(base), [MaxSpreadRule(max_ticks=2, tick_size=0.25)])
    out = flt(ev)
    # spread > 2 ticks on rows 2, 4, 5 (carried), 7 -> flat
    np.testing.assert_array_equal(out, [NAN, 1, 0, 1, 0, 0, 0, 0])
    d = flt.decisions_
    assert d.dtype == DECISION_DTYPE
    assert d["event_index"].tolist() == [2, 4, 5, 7]  # row 6's base is already 0: nothing to record
    assert d["ts_local"].tolist() == (T0 + 1000 * np.array([2, 4, 5, 7])).tolist()
    assert d["observed"].tolist() == [3, 4, 4, 5] and (d["threshold"] == 2).all() and (d["rule"] == 0).all()
    np.testing.assert_array_equal(d["base"], [1, -1, -1, NAN])
    assert (d["target"] == 0).all()
    assert d["reason"][0] == "spread 3 ticks > 2: flat"
    df = flt.decisions_df()
    assert df["rule_name"].tolist() == ["max_spread"] * 4 and df["action_name"].tolist() == ["flat"] * 4


def test_hold_repeats_the_last_unheld_target():
    ev = book([1, 1, 3, 3, 1, 3, 1, 1])
    base = [NAN, 1, -1, 1, -1, 1, 1, -1]
    flt = RuleFilter(const(base), [MaxSpreadRule(2, 0.25, action="hold")])
    # rows 2, 3 hold row 1's +1; row 5 holds row 4's -1
    np.testing.assert_array_equal(flt(ev), [NAN, 1, 1, 1, -1, -1, 1, -1])
    d = flt.decisions_
    assert d["event_index"].tolist() == [2, 5]  # row 3: base +1 == held +1, not an override
    assert d["target"].tolist() == [1, -1] and d["base"].tolist() == [-1, 1]
    assert (d["action"] == 1).all() and d["reason"][0].endswith(": hold")
    # hold from the very first row: nothing to hold yet -> NaN (no opinion)
    np.testing.assert_array_equal(RuleFilter(const([1, 1]), [MaxSpreadRule(2, 0.25, "hold")])(book([3, 1])),
                                  [NAN, 1])


def test_first_rule_wins_and_other_instruments_pass_through():
    a = book([1, 3, 5, 1])
    b = book([9, 9, 9, 9], inst=1)
    ev = np.empty(8, dtype=a.dtype)
    ev[0::2], ev[1::2] = a, b  # interleaved: instrument 0 at even rows
    ev["ts_local"] = ev["ts_exch"] = T0 + np.arange(8)
    base = np.array([1, 7, 1, 7, 1, 7, 1, 7], dtype=float)
    rules = [MaxSpreadRule(4, 0.25, "hold"), MaxSpreadRule(2, 0.25, "flat", name="tight")]
    flt = RuleFilter(const(base), rules, instrument=0)
    out = flt(ev)
    # instrument 0 rows: spread 1 -> base; 3 -> only rule 1 fires (flat); 5 -> rule 0 fires first
    # (hold the previous row's 0); instrument 1 rows (spread 9) untouched
    np.testing.assert_array_equal(out, [1, 7, 0, 7, 0, 7, 1, 7])
    assert flt.decisions_["rule"].tolist() == [1, 0]
    assert flt.decisions_["event_index"].tolist() == [2, 4]
    assert flt.decisions_df()["rule_name"].tolist() == ["tight", "max_spread"]


@lru_cache(maxsize=None)
def synth():
    ev, _ = synthesize(4000, seed=21, config=SynthConfig(n_instruments=2))
    return ev


def test_vol_threshold_is_the_expanding_quantile():
    ev = synth()
    stream = ev[stream_index(ev, 1)]
    rule = VolatilityQuantileRule(window=25, quantile=0.8, min_history=300)
    obs, thr = rule.evaluate(stream)
    rv = realized_vol(stream, 25)
    np.testing.assert_array_equal(obs, rv)
    want = np.full(len(rv), np.nan)
    for i in range(len(rv)):  # numpy's default (linear) quantile of the finite values so far
        seen = rv[: i + 1][np.isfinite(rv[: i + 1])]
        if len(seen) >= 300:
            want[i] = np.quantile(seen, 0.8)
    # pandas' skiplist quantile vs numpy's sort: same interpolation, a few ulps apart at most
    np.testing.assert_allclose(thr, want, rtol=1e-13, atol=0)
    assert np.isnan(thr[:324]).all() and np.isfinite(thr[324:]).all()  # 25-row window + 300 values
    hot = obs > thr
    assert 0.05 < hot[np.isfinite(thr)].mean() < 0.5  # it does fire, on a minority of rows


def test_overlay_records_every_override_and_is_causal():
    ev = synth()
    rng = np.random.default_rng(3)
    base_values = rng.choice([-1.0, 0.0, 1.0, np.nan], size=len(ev))
    rules = [MaxSpreadRule(1, 0.01), VolatilityQuantileRule(25, 0.8, 300, action="hold")]
    flt = RuleFilter(lambda e: base_values[: len(e)], rules, instrument=1)
    out = flt(ev)
    differs = ~((out == base_values) | (np.isnan(out) & np.isnan(base_values)))
    assert flt.decisions_["event_index"].tolist() == np.flatnonzero(differs).tolist()
    assert set(flt.decisions_["rule"]) == {0, 1}
    assert not differs[ev["instrument"] == 0].any()
    for k in (1, 500, 1333, 2900, 3999):
        part = RuleFilter(lambda e: base_values[: len(e)], rules, instrument=1)(ev[:k])
        np.testing.assert_array_equal(part, out[:k])


def test_hybrid_factory_builds_a_signal_strategy():
    base = SignalStrategy(const([1, 1, 1]), instrument=0, lot_size=1.0, name="always_long")
    strat = hybrid(base, max_spread_ticks=2, tick_size=0.25, vol_window=2, vol_min_history=1)
    assert isinstance(strat, SignalStrategy) and strat.name == "hybrid(always_long)"
    assert [r.name for r in strat.target.rules] == ["max_spread", "vol_quantile"]
    np.testing.assert_array_equal(strat.target(book([1, 3, 1])), [1, 0, 1])
    numba_side = strat.to_numba(book([1, 3, 1]))  # what the engine runs
    np.testing.assert_array_equal(numba_side.aux[:, 0], [1, 0, 1])
    # zero-argument form (as the CLI calls a plugin factory): the default SVM under a vol rule
    default = hybrid()
    assert default.name.startswith("hybrid(svm_trend")
    assert [r.name for r in default.target.rules] == ["vol_quantile"]


def test_bad_input_is_named():
    base = SignalStrategy(const([1.0]), name="x")
    with pytest.raises(ValueError, match="no rule"):
        hybrid(base, vol_window=None)
    with pytest.raises(ValueError, match="tick_size"):
        hybrid(base, max_spread_ticks=3)
    with pytest.raises(TypeError, match="SignalStrategy"):
        hybrid(const([1.0]), max_spread_ticks=3, tick_size=0.01)
    with pytest.raises(ValueError, match="action"):
        MaxSpreadRule(2, 0.01, action="panic")
    with pytest.raises(ValueError, match="quantile"):
        VolatilityQuantileRule(quantile=1.5)
    with pytest.raises(TypeError, match="lacks"):
        RuleFilter(const([1.0]), [object()])
    with pytest.raises(ValueError, match="shape"):
        RuleFilter(const([1.0, 2.0]), [MaxSpreadRule(2, 0.25)])(book([1]))
