"""VaR/ES backtests against published values, closed forms and direct likelihoods written here."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from tickguard.risk.var_backtests import (
    _null_loc_scale, christoffersen_cc, christoffersen_independence, es_backtest_z2, kupiec_pof,
    traffic_light, var_exceptions,
)


# ---------------------------------------------------------------- Kupiec
@pytest.mark.parametrize(("x", "lr"), [(4, 0.7691), (10, 12.9555)])
def test_kupiec_campbell_2005(x: int, lr: float) -> None:
    # Campbell (2005), "A review of backtesting and backtesting procedures", FEDS 2005-21:
    # T = 250, p = 1%: LR_POF = 0.7691 at 4 exceptions and 12.9555 at 10 (4 decimals printed).
    res = kupiec_pof(x, 0.99, 250)
    assert res.statistic == pytest.approx(lr, abs=5e-5)
    assert (res.n, res.exceptions, res.expected) == (250, x, pytest.approx(2.5))
    assert res.pvalue == pytest.approx(math.erfc(math.sqrt(lr / 2)), abs=1e-4)  # chi2(1) tail


def test_kupiec_edge_cases_closed_form() -> None:
    # x = 0: ln L(phat=0) = 0, so LR = -2 n ln(1-p); x = n: LR = -2 n ln p (0 ln 0 = 0).
    assert kupiec_pof(0, p=0.01, n=250).statistic == pytest.approx(-500 * math.log(0.99), rel=1e-12)
    assert kupiec_pof(np.ones(7, bool), p=0.05).statistic == pytest.approx(-14 * math.log(0.05),
                                                                           rel=1e-12)
    one = kupiec_pof([True], p=0.5)  # phat = 1, p = 0.5: LR = 2 ln 2
    assert one.statistic == pytest.approx(2 * math.log(2), rel=1e-12)
    assert kupiec_pof(25, p=0.1, n=250).statistic == 0.0  # hit rate exactly p
    assert kupiec_pof(25, p=0.1, n=250).pvalue == 1.0


def test_kupiec_sequence_equals_count_and_level_equals_p() -> None:
    hits = np.zeros(500, bool)
    hits[::61] = True
    a = kupiec_pof(hits, 0.975)
    b = kupiec_pof(int(hits.sum()), p=0.025, n=500)
    assert a.statistic == pytest.approx(b.statistic, rel=1e-12)
    assert a.pvalue == pytest.approx(stats.chi2.sf(a.statistic, 1), rel=1e-12)


# ---------------------------------------------------------------- Christoffersen
def _direct_lr_ind(hits: list[bool]) -> float:
    """Independent likelihood: product over consecutive pairs of the MLE probability of the
    observed outcome, Markov model vs pooled model. An observed outcome always has positive MLE
    probability, so no 0 ln 0 handling is needed here."""
    pairs = list(zip(hits[:-1], hits[1:]))
    count = Counter(pairs)
    from_state = Counter(prev for prev, _ in pairs)
    pooled = sum(cur for _, cur in pairs) / len(pairs)
    ll_markov = sum(math.log(count[(a, b)] / from_state[a]) for a, b in pairs)
    ll_pooled = sum(math.log(pooled if b else 1 - pooled) for _, b in pairs)
    return -2 * (ll_pooled - ll_markov)


def test_independence_hand_worked() -> None:
    hits = np.zeros(250, bool)
    hits[[3, 4, 100, 200]] = True  # one hit-after-hit pair
    res = christoffersen_independence(hits)
    assert res.transitions == (242, 3, 3, 1)
    # pi01 = 3/245, pi11 = 1/4, pi = 4/249
    ll1 = 242 * math.log(242 / 245) + 3 * math.log(3 / 245) + 3 * math.log(3 / 4) + math.log(1 / 4)
    ll0 = 245 * math.log(245 / 249) + 4 * math.log(4 / 249)
    assert res.statistic == pytest.approx(-2 * (ll0 - ll1), rel=1e-12)
    assert res.pvalue == pytest.approx(math.erfc(math.sqrt(res.statistic / 2)), rel=1e-9)
    assert res.pvalue < 0.05  # a clustered pair among 4 hits is significant at 5%


@pytest.mark.parametrize("hits", [
    np.zeros(30, bool),                       # no exceptions
    np.ones(30, bool),                        # all exceptions
    np.r_[np.zeros(29, bool), True],          # only hit is last: state 1 never left
    np.r_[True, np.zeros(29, bool)],          # only hit is first
    np.tile([True, False], 15),               # alternating: no hit-after-hit pairs, n11 = 0
    np.array([False, True]),                  # a single pair
])
def test_independence_edge_cases(hits: np.ndarray) -> None:
    res = christoffersen_independence(hits)
    assert math.isfinite(res.statistic) and 0 <= res.pvalue <= 1
    assert res.statistic == pytest.approx(_direct_lr_ind(list(hits)), abs=1e-10)


def test_alternating_hits_are_flagged() -> None:
    # n11 = 0 with many hits: pi11 = 0 vs pooled 1/2 -> a huge LR, computed via 0 ln 0 = 0.
    res = christoffersen_independence(np.tile([True, False], 50))
    assert res.transitions == (0, 49, 50, 0)
    assert res.statistic > 100 and res.pvalue < 1e-20


def test_conditional_coverage_pvalue_is_chi2_two() -> None:
    hits = np.zeros(250, bool)
    hits[[3, 4, 100, 200, 201, 202]] = True
    cc = christoffersen_cc(hits, 0.99)
    assert cc.df == 2
    assert cc.pvalue == pytest.approx(math.exp(-cc.statistic / 2), rel=1e-12)  # chi2(2) tail


@settings(max_examples=150, deadline=None)
@given(hits=st.lists(st.booleans(), min_size=2, max_size=300),
       p=st.floats(min_value=1e-3, max_value=0.3))
def test_lr_invariants(hits: list[bool], p: float) -> None:
    pof = kupiec_pof(hits, p=p)
    ind = christoffersen_independence(hits)
    cc = christoffersen_cc(hits, p=p)
    for r in (pof, ind, cc):
        assert r.statistic >= 0 and 0 <= r.pvalue <= 1
    assert cc.statistic == pytest.approx(pof.statistic + ind.statistic, rel=1e-12, abs=1e-12)
    assert ind.statistic == pytest.approx(_direct_lr_ind(hits), rel=1e-9, abs=1e-9)
    assert sum(ind.transitions) == len(hits) - 1


# ---------------------------------------------------------------- traffic light
# Basel Committee (1996), "Supervisory framework for the use of 'backtesting' in conjunction with
# the internal models approach", Table 2: 250 days at 99%.
BASEL_CUM = [8.11, 28.58, 54.32, 75.81, 89.22, 95.88, 98.63, 99.60, 99.89, 99.97, 99.99]
BASEL_PLUS = [0.0] * 5 + [0.40, 0.50, 0.65, 0.75, 0.85, 1.0]


@pytest.mark.parametrize("x", range(11))
def test_traffic_light_basel_table(x: int) -> None:
    res = traffic_light(x, 0.99, 250)
    assert round(100 * res.cumulative_probability, 2) == BASEL_CUM[x]
    assert res.zone == ("green" if x <= 4 else "yellow" if x <= 9 else "red")
    assert res.plus_factor == BASEL_PLUS[x] and res.multiplier == 3 + BASEL_PLUS[x]


def test_traffic_light_other_n_maps_by_probability() -> None:
    # n = 500 at 1% (mean 5): binomial CDF at 8 exceptions is 93.3% (green), at 9 is 96.8%
    # (yellow, between the 250-day 5 and 6 rows -> 0.40), at 14 is 99.98% (above the 9 row).
    assert traffic_light(8, p=0.01, n=500).zone == "green"
    nine = traffic_light(9, p=0.01, n=500)
    assert nine.cumulative_probability == pytest.approx(stats.binom.cdf(9, 500, 0.01), rel=1e-12)
    assert (nine.zone, nine.plus_factor) == ("yellow", 0.40)
    cum = {k: stats.binom.cdf(k, 500, 0.01) for k in range(20)}
    red_from = min(k for k, c in cum.items() if c >= 0.9999)
    assert traffic_light(red_from, p=0.01, n=500).zone == "red"
    assert traffic_light(red_from - 1, p=0.01, n=500).plus_factor == 0.85
    # a yellow count whose probability sits in [95%, 95.88%) still gets the lowest factor
    res = traffic_light(1, p=0.01, n=33)  # P(X <= 1) = 95.70%
    assert res.zone == "yellow" and res.plus_factor == 0.40


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 2000), p=st.floats(1e-3, 0.2))
def test_traffic_light_monotone(n: int, p: float) -> None:
    order = {"green": 0, "yellow": 1, "red": 2}
    zones = [traffic_light(x, p=p, n=n) for x in range(0, n + 1, max(1, n // 40))]
    assert all(order[a.zone] <= order[b.zone] and a.plus_factor <= b.plus_factor
               for a, b in zip(zones, zones[1:]))


# ---------------------------------------------------------------- Z2 (Acerbi-Szekely)
def test_z2_hand_worked() -> None:
    # alpha = 0.2; exceptions where X < -1.5: -3 and -2 -> sum = -5; T*alpha*ES = 5*0.2*2.5 = 2.5
    res = es_backtest_z2([-3.0, 1.0, -1.0, 0.5, -2.0], 1.5, 2.5, 0.8, n_sims=200)
    assert res.statistic == pytest.approx(-5 / 2.5 + 1, abs=1e-15)
    assert (res.exceptions, res.n, res.expected) == (2, 5, pytest.approx(1.0))


@pytest.mark.parametrize(("null", "dof"), [("normal", None), ("t", 4.0)])
def test_null_location_scale_recovers_the_distribution(null: str, dof: float | None) -> None:
    loc, scale, a = np.array([0.001, -0.002]), np.array([0.01, 0.03]), 0.025
    dist = stats.norm() if null == "normal" else stats.t(dof)
    q = dist.ppf(a)
    tail = dist.expect(lambda v: v, ub=q, conditional=True)
    var, es = -(loc + scale * q), -(loc + scale * tail)
    got_loc, got_scale = _null_loc_scale(var, es, a, null, dof)
    np.testing.assert_allclose(got_loc, loc, atol=1e-9)
    np.testing.assert_allclose(got_scale, scale, rtol=1e-7)


def test_z2_statistic_has_zero_mean_under_the_null() -> None:
    # E[X I] = alpha * (mu - sigma pdf(z)/alpha) = -alpha * ES exactly, so E[Z2] = 0. Per-day
    # sd of X I / (alpha ES) is 6.3 for a normal at 97.5%, so sd(Z2) = 6.3 / sqrt(T) = 0.014 at
    # T = 2e5; tolerance 4 sd. A dropped "+1" or a wrong alpha scaling is off by O(1).
    rng = np.random.default_rng(0)
    x = 0.0003 + 0.012 * rng.standard_normal(200_000)
    z = stats.norm.ppf(0.975)
    var, es = -0.0003 + 0.012 * z, -0.0003 + 0.012 * stats.norm.pdf(z) / 0.025
    assert es_backtest_z2(x, var, es, 0.975, n_sims=100).statistic == pytest.approx(0, abs=0.056)


def test_z2_size_and_power() -> None:
    # 200 independent 250-day samples: under the null the 5% rejection rate should be 5%
    # (binomial SE 1.5%, band 1%-10%); with returns 1.5x more volatile than forecast, nearly all
    # samples should reject.
    rng = np.random.default_rng(42)
    sig = 0.01 * np.exp(0.3 * rng.standard_normal(250))  # time-varying forecast sigma
    z = stats.norm.ppf(0.975)
    var, es = sig * z, sig * stats.norm.pdf(z) / 0.025
    null_p, alt_p = [], []
    for i in range(200):
        draw = rng.standard_normal(250)
        null_p.append(es_backtest_z2(sig * draw, var, es, 0.975, n_sims=400, seed=i).pvalue)
        alt_p.append(es_backtest_z2(1.5 * sig * draw, var, es, 0.975, n_sims=400, seed=i).pvalue)
    assert 0.01 <= np.mean(np.array(null_p) < 0.05) <= 0.10
    assert np.mean(np.array(alt_p) < 0.05) > 0.8


def test_z2_seeded_and_pvalue_floor() -> None:
    x = -np.full(100, 0.1)  # every day a huge loss: no simulated sample is as bad
    a = es_backtest_z2(x, 0.02, 0.03, 0.99, n_sims=500, seed=1)
    assert a.pvalue == 1 / 501 and a.exceptions == 100
    b = es_backtest_z2(0.01 * np.sin(np.arange(100.0)), 0.02, 0.03, 0.99, n_sims=500, seed=1)
    assert b == es_backtest_z2(0.01 * np.sin(np.arange(100.0)), 0.02, 0.03, 0.99, n_sims=500, seed=1)


# ---------------------------------------------------------------- exceptions helper and errors
def test_var_exceptions_drops_warm_up() -> None:
    idx = pd.date_range("2024-01-01", periods=5)
    r = pd.Series([0.01, -0.03, -0.02, -0.05, 0.0], index=idx)
    v = pd.Series([np.nan, np.nan, 0.025, 0.025, 0.025], index=idx)
    hits = var_exceptions(r, v)
    assert hits.index.equals(idx[2:]) and hits.tolist() == [False, True, False]


@pytest.mark.parametrize(("call", "exc", "match"), [
    (lambda: kupiec_pof(3, n=250), ValueError, "pass exactly one"),
    (lambda: kupiec_pof(3, 0.99, 250, p=0.01), ValueError, "pass exactly one"),
    (lambda: kupiec_pof(3, 1.5, 250), ValueError, r"level: got 1\.5"),
    (lambda: kupiec_pof(300, 0.99, 250), ValueError, "0 <= exceptions <= n"),
    (lambda: kupiec_pof(3, 0.99), ValueError, "n=None"),
    (lambda: kupiec_pof([True, False], 0.99, n=2), ValueError, "drop n"),
    (lambda: kupiec_pof([], 0.99), ValueError, "empty"),
    (lambda: kupiec_pof([0, 2, 1], 0.99), ValueError, "0/1"),
    (lambda: kupiec_pof(True, 0.99, 1), TypeError, "exceptions"),
    (lambda: christoffersen_independence([True]), ValueError, "at least 2"),
    (lambda: christoffersen_independence(5), TypeError, "1-D boolean"),
    (lambda: es_backtest_z2([0.0, 0.1], [0.02, np.nan], 0.03, 0.99), ValueError, "NaN"),
    (lambda: es_backtest_z2([0.0, 0.1], 0.03, 0.02, 0.99), ValueError, "es: must exceed var"),
    (lambda: es_backtest_z2([0.0, 0.1], 0.02, 0.03, 0.99, null="t"), ValueError, "dof: got None"),
    (lambda: es_backtest_z2([0.0, 0.1], 0.02, 0.03, 0.99, null="x"), ValueError, "null: got 'x'"),
    (lambda: var_exceptions(pd.Series([0.0]), pd.Series([0.1], index=[5])), ValueError, "align"),
])
def test_bad_input_names_argument_and_fix(call, exc, match) -> None:
    with pytest.raises(exc, match=match):
        call()
