"""Walk-forward SVM / MLP signals: they find a planted signal and no signal in a random walk
(exact binomial tests), their diagnostics match independent metric code, their targets are causal,
and the SVM signal runs end to end through the engine on the real AMZN LOBSTER sample."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest, mannwhitneyu

from tickguard.data.schema import KIND_QUOTE, KIND_TRADE, empty_events
from tickguard.data.synth import SynthConfig, synthesize
from tickguard.engine.backtest import run
from tickguard.engine.records import OT_MARKET
from tickguard.engine.strategy import SignalStrategy
from tickguard.strategies.features import FeatureConfig, stream_index
from tickguard.strategies.ml import WalkForwardClassifier, mlp_trend, svm_pipeline, svm_trend
from tickguard.strategies.walkforward import WalkForward

TICK = 0.25  # binary-exact prices: a 1-tick move is never blurred by rounding against the dead zone
H = 5
# short-memory features only: on a trending synthetic path, slow features (time of day, the price
# level hidden in the relative spread) identify the regime of the training window, not the signal
FEATS = FeatureConfig(return_horizons=(1, 2, 5), vol_windows=(20,), ofi_windows=(10,), spread=False,
                      time_of_day=False)
SPLIT = dict(horizon=H, train_size=1500, test_size=500, features=FEATS)
LOBSTER = (Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lobster"
           / "AMZN_2012-06-21_34200000_57600000_message_1.csv")


def momentum_events(n: int, phi: float, seed: int) -> np.ndarray:
    """A mid path moving round(x_t) ticks per row, x_t = phi x_{t-1} + N(0, 1) (phi = 0: i.i.d.
    integer steps, a random walk), quoted with a 2-tick spread and random L1 sizes; about 15% of
    rows are trade prints without a book (the path's step there shows at the next quote)."""
    rng = np.random.default_rng(seed)
    x, eps = np.zeros(n), rng.normal(0.0, 1.0, n)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + eps[i]
    p = 4000 + np.cumsum(np.round(x))
    trade = rng.random(n) < 0.15
    trade[0] = False
    q = ~trade
    ev = empty_events(n)
    ev["ts_exch"] = ev["ts_local"] = 1_704_205_800_000_000_000 + np.arange(n) * 100_000_000
    ev["kind"] = np.where(trade, KIND_TRADE, KIND_QUOTE)
    ev["bid_px"][q], ev["ask_px"][q] = (p[q] - 1) * TICK, (p[q] + 1) * TICK
    ev["bid_sz"][q], ev["ask_sz"][q] = rng.integers(1, 500, q.sum()), rng.integers(1, 500, q.sum())
    ev["price"][trade], ev["size"][trade], ev["side"][trade] = p[trade] * TICK, 1.0, 1
    return ev


@lru_cache(maxsize=None)
def fitted(kind: str, phi: float, seed: int = 1, n: int = 4000):
    ev = momentum_events(n, phi, seed)
    strat = (mlp_trend if kind == "mlp" else svm_trend)(**SPLIT)
    return ev, strat, strat.target(ev)


def coin_test(clf: WalkForwardClassifier) -> tuple[int, int, float]:
    """Hits among scored rows with a +-1 label, keeping one row in H so the label horizons do not
    overlap. Under a random walk each kept row is then an independent fair coin whatever the
    prediction (its future steps are symmetric and independent of the past): binomial is exact."""
    o = clf.oos_
    o = o[np.isfinite(o["label"]) & (o["label"] != 0) & (o["row"] % H == 0)]
    hits, n = int((o["pred"] == o["label"]).sum()), len(o)
    return hits, n, binomtest(hits, n, 0.5).pvalue


@pytest.mark.parametrize("kind", ["svm", "mlp"])
def test_beats_a_coin_on_planted_momentum(kind):
    _, strat, _ = fitted(kind, 0.6)
    hits, n, _ = coin_test(strat.target)
    assert n > 300
    assert hits / n > 0.5 and binomtest(hits, n, 0.5, alternative="greater").pvalue < 0.01


def test_svm_does_not_beat_a_coin_on_a_random_walk():
    _, strat, _ = fitted("svm", 0.0)
    hits, n, p = coin_test(strat.target)
    assert n > 250
    assert p > 0.01, f"{hits}/{n} hits on a random walk (two-sided p={p:.2g})"


def test_fold_report_matches_independent_metrics():
    ev, strat, _ = fitted("svm", 0.6)
    clf = strat.target
    rep = clf.fold_report()
    assert len(rep) == WalkForward(1500, 500, H).get_n_splits(len(ev)) == 5
    assert (rep["status"] == "ok").all() and rep["converged"].all()
    for fold, row in rep.iterrows():
        o = clf.oos_[clf.oos_["fold"] == fold]
        o = o[np.isfinite(o["label"]) & (o["label"] != 0)]
        y, s = o["label"].to_numpy(), o["score"].to_numpy()
        pred = np.where(s > 0, 1, -1)
        tp, tn = np.sum((pred == 1) & (y == 1)), np.sum((pred == -1) & (y == -1))
        fp, fn = np.sum((pred == 1) & (y == -1)), np.sum((pred == -1) & (y == 1))
        assert (row["tp"], row["tn"], row["fp"], row["fn"]) == (tp, tn, fp, fn)
        assert row["n_eval"] == len(y)
        assert row["accuracy"] == pytest.approx((tp + tn) / len(y), rel=1e-12)
        assert row["balanced_accuracy"] == pytest.approx((tp / (tp + fn) + tn / (tn + fp)) / 2, rel=1e-12)
        # AUC = Mann-Whitney U of the up-scores against the down-scores / (n_up n_down)
        u = mannwhitneyu(s[y == 1], s[y == -1]).statistic
        assert row["auc"] == pytest.approx(u / (np.sum(y == 1) * np.sum(y == -1)), rel=1e-12)
        assert np.array_equal(clf.confusion_[fold], [[tn, fp], [fn, tp]])


def test_targets_map_scores_with_threshold():
    ev = momentum_events(3000, 0.6, 3)
    strat = svm_trend(lot=3.0, threshold=0.4, **SPLIT)
    target = strat.target(ev)
    first = WalkForward(1500, 500, H).first_test
    assert np.isnan(target[:first]).all() and np.isfinite(target[first:]).all()
    o = strat.target.oos_
    s = o["score"].to_numpy()
    want = np.where(s > 0.4, 3.0, np.where(s < -0.4, -3.0, 0.0))
    np.testing.assert_array_equal(target[o["event"].to_numpy()], want)
    assert set(np.unique(want)) == {-3.0, 0.0, 3.0}  # the threshold really splits the scores
    assert isinstance(strat, SignalStrategy) and strat.instrument == 0 and strat.name.startswith("svm_trend")


# --- causality ------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def two_instruments():
    ev, _ = synthesize(5000, seed=5, config=SynthConfig(n_instruments=2))
    return ev


def linear_clf(instrument: int) -> WalkForwardClassifier:
    return WalkForwardClassifier(svm_pipeline(linear=True), WalkForward(800, 300, 10, embargo=3),
                                 label_threshold=0.0, instrument=instrument)


@pytest.mark.parametrize("instrument", [0, 1])
def test_target_is_prefix_invariant(instrument):
    ev = two_instruments()
    clf = linear_clf(instrument)
    full = clf(ev)
    assert np.isnan(full[ev["instrument"] != instrument]).all()
    assert np.isfinite(full).sum() > 1000
    idx = stream_index(ev, instrument)
    starts = clf.splitter.test_starts(len(idx))
    assert len(starts) >= 5
    # a leak of training labels into the block shows only for cuts within `horizon` rows of a
    # block start (later cuts hold every label either way): cut there, and elsewhere
    cuts = [int(idx[s + j]) + 1 for s in starts for j in (0, 1, 5, 9) if s + j < len(idx)]
    for k in [100, 2345, *cuts]:
        np.testing.assert_array_equal(linear_clf(instrument)(ev[:k]), full[:k])


@pytest.mark.parametrize("where", ["block_end", "inside_block"])
def test_changing_later_events_leaves_earlier_targets_unchanged(where):
    ev, strat, base = fitted("svm", 0.6)
    rep = strat.target.fold_report()
    # after the end of the second test block (as specified), and the stronger form: right after
    # the first row of the third block, where unpurged training labels would still look
    end = int(rep["test_stop"][1]) if where == "block_end" else int(rep["test_start"][2]) + 1
    changed = ev.copy()
    changed[end:] = momentum_events(len(ev), -0.6, 99)[end:]  # a different future
    other = svm_trend(**SPLIT)
    again = other.target(changed)
    np.testing.assert_array_equal(again[:end], base[:end])
    # the scores too: a small leak would move them long before it flips a target's sign
    before = strat.target.oos_[strat.target.oos_["event"] < end]
    np.testing.assert_array_equal(other.target.oos_["score"][: len(before)], before["score"])
    assert not np.array_equal(again[end:], base[end:], equal_nan=True)  # the change does matter


def test_one_class_training_goes_flat():
    ev = momentum_events(2600, 0.0, 4)
    ev["bid_px"][ev["kind"] == KIND_QUOTE] = 999.75  # a frozen book: every label is 0
    ev["ask_px"][ev["kind"] == KIND_QUOTE] = 1000.25
    strat = svm_trend(**SPLIT)
    target = strat.target(ev)
    rep = strat.target.fold_report()
    assert (rep["status"] == "one_class").all() and (rep["n_train"] == 0).all()
    first = int(rep["test_start"][0])
    assert np.isnan(target[:first]).all() and (target[first:] == 0).all()


def test_progress_line_is_opt_in(capsys):
    ev = momentum_events(2600, 0.6, 5)
    svm_trend(linear=True, **SPLIT).target(ev)
    assert capsys.readouterr().err == ""
    svm_trend(linear=True, verbose=True, **SPLIT).target(ev)
    assert "fold 3/3" in capsys.readouterr().err


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="lot"):
        svm_trend(lot=0)
    with pytest.raises(ValueError, match="threshold"):
        mlp_trend(threshold=-1)
    with pytest.raises(ValueError, match="horizon"):
        svm_trend(horizon=-1)
    with pytest.raises(ValueError, match="horizon"):
        svm_trend(horizon=0)
    with pytest.raises(TypeError, match="estimator"):
        WalkForwardClassifier(object(), WalkForward(10, 5, 1))


# --- end to end on real data ---------------------------------------------------------------

@pytest.mark.skipif(not LOBSTER.exists(), reason=f"real LOBSTER sample not found at {LOBSTER}")
def test_svm_signal_runs_through_the_engine_on_amzn():
    from tickguard.data.lobster import read_lobster

    ev, table, _ = read_lobster(LOBSTER)
    ev = ev[:12_000]
    strat = svm_trend(horizon=50, train_size=3000, test_size=2000, linear=True, lot=2.0, lot_size=1.0)
    result = run(ev, strat, instruments=table)
    target = strat.target(ev)  # the same call the engine made (deterministic)
    rep = strat.target.fold_report()
    assert len(rep) == 5 and (rep["status"] == "ok").all() and (rep["n_eval"] > 0).all()
    assert len(result.orders) > 10 and len(result.fills) > 10
    f, o = result.fills, result.orders
    np.testing.assert_allclose(f["position"], np.cumsum(f["side"] * f["qty"]), rtol=0, atol=1e-9)
    assert np.abs(f["position"]).max() <= 2.0  # it trades toward +-lot or 0, one order at a time
    assert (o["order_type"] == OT_MARKET).all()
    # every order left at an event whose target was set, and none before the first test block
    first = int(rep["test_start"][0])
    assert np.isin(o["ts_sent"], ev["ts_local"][np.isfinite(target)]).all()
    assert o["ts_sent"].min() >= ev["ts_local"][first]
    filled = o["filled"].sum()
    assert filled == pytest.approx(f["qty"].sum()) and result.summary["fills"] == len(f)
