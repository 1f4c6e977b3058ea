"""Tick features and labels: a hand-worked stream, plain-Python oracles on synthetic data, and
prefix invariance (a feature at event i never changes when events after i are added)."""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickguard.data.schema import KIND_QUOTE, KIND_TRADE, empty_events
from tickguard.data.synth import SynthConfig, synthesize
from tickguard.strategies.features import (
    FeatureConfig,
    compute_features,
    direction_labels,
    mid_price,
    ofi_increments,
    realized_vol,
    stream_index,
)

NAN = np.nan
T0 = 1_704_205_800_000_000_000  # 2024-01-02 14:30:00 UTC


def rows_to_events(rows):
    ev = empty_events(len(rows))
    for i, row in enumerate(rows):
        ev["ts_exch"][i] = ev["ts_local"][i] = T0 + i * 1_000_000
        for k, v in row.items():
            ev[k][i] = v
    return ev


def Q(bid, bsz, ask, asz, inst=0):
    return dict(kind=KIND_QUOTE, bid_px=bid, bid_sz=bsz, ask_px=ask, ask_sz=asz, instrument=inst)


def T(px, inst=0):
    return dict(kind=KIND_TRADE, price=px, size=1.0, side=1, instrument=inst)


# Prices on a 0.25 grid are exact in binary, so every expected value below is exact.
HAND = [
    Q(100.00, 5, 100.50, 7),  # 0: mid 100.25
    T(100.50),  # 1: trade, mid carried; OFI 0
    Q(100.25, 3, 100.50, 4),  # 2: bid up: +3; ask same: -4 + 7  -> e = 6
    Q(100.00, 8, 100.25, 2),  # 3: bid down: -3; ask down: -2    -> e = -5
    Q(100.00, 8, NAN, 0),  # 4: empty ask: mid carried; bid same: +8 - 8, ask empty: 0 -> e = 0
    Q(100.00, 9, 100.75, 1),  # 5: bid same: +9 - 8; ask empty before: 0 -> e = 1; mid 100.375
    Q(100.25, 2, 100.75, 6),  # 6: bid up: +2; ask same: -6 + 1  -> e = -3; mid 100.5
]
HAND_MID = [100.25, 100.25, 100.375, 100.125, 100.125, 100.375, 100.5]
HAND_E = [NAN, 0, 6, -5, 0, 1, -3]


def dec_log_ratio(a: float, b: float) -> float:
    """log(a / b) to 40 significant digits (decimal), rounded once to float."""
    with localcontext() as ctx:
        ctx.prec = 40
        return float((Decimal(a) / Decimal(b)).ln())


def test_hand_worked_mid_ofi_returns():
    ev = rows_to_events(HAND)
    np.testing.assert_array_equal(mid_price(ev), HAND_MID)
    np.testing.assert_array_equal(ofi_increments(ev), HAND_E)
    cfg = FeatureConfig(return_horizons=(1, 2), vol_windows=(2,), ofi_windows=(2,))
    f = compute_features(ev, cfg)
    assert list(f.columns) == cfg.names() == [
        "ret_1", "ret_2", "rv_2", "ofi_2", "imbalance", "spread_rel", "tod_sin", "tod_cos"]
    m = HAND_MID
    r1 = [NAN] + [dec_log_ratio(m[i], m[i - 1]) for i in range(1, 7)]
    # 40-digit reference: the ~1e-3 returns are good to a few ulps (rtol 1e-15)
    np.testing.assert_allclose(f["ret_1"], r1, rtol=1e-15, atol=0)
    np.testing.assert_allclose(f["ret_2"], [NAN, NAN] + [dec_log_ratio(m[i], m[i - 2]) for i in range(2, 7)],
                               rtol=1e-15, atol=0)
    rv2 = [NAN, NAN] + [math.sqrt(r1[i] ** 2 + r1[i - 1] ** 2) for i in range(2, 7)]
    np.testing.assert_allclose(f["rv_2"], rv2, rtol=1e-14, atol=0)
    np.testing.assert_array_equal(f["ofi_2"], [NAN, NAN, 6, 1, -5, 1, -2])
    # L1 state after each row comes from the last quote row (row 1 repeats row 0); row 4's empty
    # ask has size 0, so the book is all bid: imbalance (8 - 0) / (8 + 0) = 1
    np.testing.assert_array_equal(f["imbalance"], [-2 / 12, -2 / 12, -1 / 7, 6 / 10, 1, 8 / 10, -4 / 8])
    np.testing.assert_allclose(
        f["spread_rel"], [0.5 / 100.25, 0.5 / 100.25, 0.25 / 100.375, 0.25 / 100.125, NAN, 0.75 / 100.375,
                          0.5 / 100.5], rtol=1e-15, atol=0)
    # 14:30:00 UTC + i ms -> angle of (52 200 s + i/1000 s) on a 86 400 s circle
    angle = [2 * math.pi * (52_200 + i / 1000) / 86_400 for i in range(7)]
    np.testing.assert_allclose(f["tod_sin"], np.sin(angle), rtol=0, atol=1e-15)
    np.testing.assert_allclose(f["tod_cos"], np.cos(angle), rtol=0, atol=1e-15)


def test_hand_worked_labels_dead_zone():
    ev = rows_to_events(HAND)
    # h = 2: forward changes 0.125, -0.125, -0.25, 0.25, 0.375 (rows 0..4); half spreads 0.25, 0.25,
    # 0.125, 0.125, NaN (row 4 has an empty ask, so its dead zone is unknown) -> 0, 0, -1, +1, NaN
    np.testing.assert_array_equal(direction_labels(ev, 2), [0, 0, -1, 1, NAN, NAN, NAN])
    # fixed dead zone 0.25: a move of exactly 0.25 is inside it (strict >)
    np.testing.assert_array_equal(direction_labels(ev, 2, threshold=0.25), [0, 0, 0, 0, 1, NAN, NAN])
    np.testing.assert_array_equal(direction_labels(ev, 2, threshold=0.0), [1, -1, -1, 1, 1, NAN, NAN])


def test_other_instruments_are_skipped_and_left_nan():
    mixed = []
    for k, row in enumerate(HAND):  # interleave a second instrument's quotes
        mixed.append(row)
        if k % 2 == 0:
            mixed.append(Q(50.0 + k, 1, 50.5 + k, 1, inst=1))
    ev = rows_to_events(mixed)
    own = stream_index(ev, 0)
    cfg = FeatureConfig(return_horizons=(1, 2), vol_windows=(2,), ofi_windows=(2,))
    f = compute_features(ev, cfg, instrument=0).to_numpy()
    alone = compute_features(rows_to_events(HAND), cfg).to_numpy()
    np.testing.assert_array_equal(f[own, :-2], alone[:, :-2])  # time of day differs: other stamps
    assert np.isnan(np.delete(f, own, axis=0)).all()
    np.testing.assert_array_equal(direction_labels(ev, 2)[own], direction_labels(rows_to_events(HAND), 2))


# --- plain-Python oracles on synthetic data --------------------------------------------------

@lru_cache(maxsize=None)
def synth(n: int = 3000, n_inst: int = 2):
    ev, _ = synthesize(n, seed=11, config=SynthConfig(n_instruments=n_inst))
    ev.setflags(write=False)
    return ev


def loop_mid_and_e(stream):
    """Second implementation, row by row, from the definitions in the module docstring."""
    mid, e, last_mid, prev = [], [], math.nan, None
    state = (math.nan,) * 4
    for k, row in enumerate(stream):
        if row["kind"] & KIND_QUOTE:
            state = (row["bid_px"], row["bid_sz"], row["ask_px"], row["ask_sz"])
            if math.isfinite(row["bid_px"]) and math.isfinite(row["ask_px"]):
                last_mid = (row["bid_px"] + row["ask_px"]) / 2
        mid.append(last_mid)
        if prev is None:
            e.append(math.nan)
        else:
            (pb0, qb0, pa0, qa0), (pb1, qb1, pa1, qa1) = prev, state
            v = 0.0
            if all(map(math.isfinite, (pb0, qb0, pb1, qb1))):
                v += (qb1 if pb1 >= pb0 else 0) - (qb0 if pb1 <= pb0 else 0)
            if all(map(math.isfinite, (pa0, qa0, pa1, qa1))):
                v += (qa0 if pa1 >= pa0 else 0) - (qa1 if pa1 <= pa0 else 0)
            e.append(v)
        prev = state
    return np.array(mid), np.array(e)


@pytest.mark.parametrize("inst", [0, 1])
def test_features_match_row_by_row_oracle(inst):
    ev = synth()
    idx = stream_index(ev, inst)
    stream = ev[idx]
    mid, e = loop_mid_and_e(stream)
    np.testing.assert_array_equal(mid_price(stream), mid)
    np.testing.assert_array_equal(ofi_increments(stream), e)
    cfg = FeatureConfig(return_horizons=(1, 7), vol_windows=(30,), ofi_windows=(15,))
    f = compute_features(ev, cfg, instrument=inst).iloc[idx].reset_index(drop=True)
    n = len(stream)
    r1 = [math.nan] + [dec_log_ratio(mid[i], mid[i - 1]) for i in range(1, n)]
    ret7 = [math.nan] * 7 + [dec_log_ratio(mid[i], mid[i - 7]) for i in range(7, n)]
    rv = [math.nan] * 30 + [math.sqrt(math.fsum(r * r for r in r1[i - 29 : i + 1])) for i in range(30, n)]
    ofi = [math.nan] * 15 + [math.fsum(e[i - 14 : i + 1]) for i in range(15, n)]
    # returns vs a 40-digit reference: a few ulps (zero returns are exact). rv: pandas' rolling
    # sum adds and removes terms (Kahan-compensated), fsum sums each window afresh: they agree to
    # ~1e-14 relative here; 1e-12 is far below any meaningful digit of a volatility
    np.testing.assert_allclose(f["ret_1"], r1, rtol=1e-15, atol=0)
    np.testing.assert_allclose(f["ret_7"], ret7, rtol=1e-15, atol=0)
    np.testing.assert_allclose(f["rv_30"], rv, rtol=1e-12, atol=0)
    np.testing.assert_allclose(realized_vol(stream, 30), rv, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(f["ofi_15"], ofi)  # integer-valued sizes: exact
    secs = (pd.to_datetime(stream["ts_local"], utc=True) - pd.to_datetime(stream["ts_local"], utc=True)
            .normalize()).total_seconds().to_numpy()
    np.testing.assert_allclose(f["tod_sin"], np.sin(2 * np.pi * secs / 86_400), rtol=0, atol=1e-12)


# --- no look-ahead ----------------------------------------------------------------------------

def assert_prefix_invariant(fn, ev, k):
    full, part = np.asarray(fn(ev)), np.asarray(fn(ev[:k]))
    np.testing.assert_array_equal(part, full[:k])  # exact, NaN == NaN


@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 3000), inst=st.sampled_from([0, 1]))
def test_features_are_prefix_invariant(k, inst):
    assert_prefix_invariant(lambda e: compute_features(e, instrument=inst).to_numpy(), synth(), k)


def test_prefix_check_catches_a_centred_window():
    """The check above has teeth: a centred rolling mean (uses 10 rows ahead) fails it."""
    def leaky(e):
        return pd.Series(mid_price(e)).rolling(21, center=True, min_periods=1).mean().to_numpy()

    with pytest.raises(AssertionError):
        assert_prefix_invariant(leaky, synth(n_inst=1), 1500)


@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 3000), h=st.integers(1, 50))
def test_labels_use_exactly_h_rows_ahead(k, h):
    ev = synth(n_inst=1)
    full, part = direction_labels(ev, h), direction_labels(ev[:k], h)
    known = max(k - h, 0)
    np.testing.assert_array_equal(part[:known], full[:known])
    assert np.isnan(part[known:]).all()  # the last h rows of a prefix have no label yet


# --- bad input --------------------------------------------------------------------------------

def test_bad_input_names_the_argument():
    ev = rows_to_events(HAND)
    with pytest.raises(TypeError, match="EVENT_DTYPE"):
        compute_features(np.zeros(3))
    with pytest.raises(ValueError, match="horizon"):
        direction_labels(ev, 0)
    with pytest.raises(ValueError, match="threshold"):
        direction_labels(ev, 1, threshold=-0.1)
    with pytest.raises(ValueError, match="return_horizons"):
        FeatureConfig(return_horizons=(0, 5))
    with pytest.raises(ValueError, match="no feature"):
        FeatureConfig(return_horizons=(), vol_windows=(), ofi_windows=(), imbalance=False, spread=False,
                      time_of_day=False)
