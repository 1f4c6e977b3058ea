"""Tests of the seeded synthetic market generator (tickguard.data.synth) and the bundled samples.

Stylised-fact thresholds are loose but separate the model from a control run with the feature
switched off (Poisson arrivals, constant volatility); each threshold says why it is safe.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from tickguard.data import synth
from tickguard.data.parquet_io import iter_parquet, parquet_instruments, read_parquet
from tickguard.data.schema import (
    EVENT_DTYPE,
    KIND_DEPTH,
    KIND_LAST_IN_BATCH,
    KIND_QUOTE,
    KIND_TRADE,
)
from tickguard.data.synth import SynthConfig, iter_synthesize, synthesize, synthesize_to_parquet
from tickguard.data.synth_kernels import simulate_nb, simulate_py

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
L2 = SynthConfig(depth_levels=4, n_instruments=3)
FLAT = SynthConfig(vol_of_logvol=0.0, jump_rate_per_hour=0.0, branching=((0.0, 0.0), (0.0, 0.0)))


def is_(ev: np.ndarray, bit) -> np.ndarray:
    return (ev["kind"] & bit) != 0


def on_grid(x: np.ndarray, step: float) -> bool:
    k = x / step
    return bool(np.all(np.abs(k - np.round(k)) < 1e-6))


def assert_invariants(ev: np.ndarray, cfg: SynthConfig) -> None:
    """What tickguard's validation demands, checked directly."""
    assert ev.dtype == EVENT_DTYPE
    assert np.all(np.diff(ev["ts_local"]) >= 0)
    assert np.all(ev["ts_local"] >= ev["ts_exch"])
    assert np.all(ev["ts_exch"] >= cfg.start_ns)
    assert set(np.unique(ev["instrument"])) <= set(range(cfg.n_instruments))
    q, t, d = ev[is_(ev, KIND_QUOTE)], ev[is_(ev, KIND_TRADE)], ev[is_(ev, KIND_DEPTH)]
    assert len(q) + len(t) + len(d) == len(ev)  # every row is exactly one of the three
    for name in ("bid_px", "ask_px", "bid_sz", "ask_sz"):
        assert np.isfinite(q[name]).all()
    assert np.all(q["bid_px"] > 0) and np.all(q["bid_px"] < q["ask_px"])
    assert np.all(q["bid_sz"] >= cfg.lot_size) and np.all(q["ask_sz"] >= cfg.lot_size)
    assert np.isfinite(t["price"]).all() and np.all(t["price"] > 0)
    assert np.all(t["size"] >= cfg.lot_size) and set(np.unique(t["side"])) <= {-1, 1}
    assert np.isfinite(d["price"]).all() and np.all(d["price"] > 0) and np.all(d["size"] >= 0)
    assert set(np.unique(d["side"])) <= {-1, 1} and np.all(d["level"] < max(cfg.depth_levels, 1))
    for rows, cols in ((q, ("bid_px", "ask_px")), (t, ("price",)), (d, ("price",))):
        for c in cols:
            assert on_grid(rows[c], cfg.tick_size), c
    for rows, cols in ((q, ("bid_sz", "ask_sz")), (t, ("size",)), (d, ("size",))):
        for c in cols:
            assert on_grid(rows[c], cfg.lot_size), c
    # non-quote rows carry no top of book; the last row of every batch is a quote
    assert np.isnan(t["bid_px"]).all() and np.isnan(d["ask_sz"]).all()
    assert np.array_equal(is_(ev, KIND_LAST_IN_BATCH), is_(ev, KIND_QUOTE))


# --- determinism, chunking, twins -----------------------------------------------------------
def test_same_seed_same_bytes_other_seed_differs():
    a, inst = synthesize(5_000, seed=11)
    b, _ = synthesize(5_000, seed=11)
    c, _ = synthesize(5_000, seed=12)
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a["bid_sz"], c["bid_sz"])
    assert [i.symbol for i in inst] == ["SYN0"] and len(a) == 5_000


@pytest.mark.parametrize("cfg", [SynthConfig(), L2], ids=["l1", "l2x3"])
def test_chunk_size_does_not_change_output(cfg):
    whole, _ = synthesize(20_000, seed=5, config=cfg)
    chunks = list(iter_synthesize(20_000, seed=5, config=cfg, chunk_rows=1_000))
    assert [len(c) for c in chunks] == [1_000] * 20
    assert np.concatenate(chunks).tobytes() == whole.tobytes()


@settings(max_examples=15, deadline=None)
@given(n=st.integers(0, 3_000), chunk=st.integers(1, 3_500), levels=st.sampled_from([0, 2]))
def test_chunking_invariance_property(n, chunk, levels):
    cfg = SynthConfig(n_instruments=2, depth_levels=levels)
    chunks = list(iter_synthesize(n, seed=3, config=cfg, chunk_rows=chunk))
    assert all(len(c) == chunk for c in chunks[:-1]) and sum(map(len, chunks)) == n
    whole, _ = synthesize(n, seed=3, config=cfg)
    got = np.concatenate(chunks) if chunks else np.empty(0, EVENT_DTYPE)
    assert got.tobytes() == whole.tobytes()


@pytest.mark.parametrize("cfg", [SynthConfig(), L2], ids=["l1", "l2x3"])
def test_python_twin_matches_numba_kernel(cfg):
    py = np.concatenate(list(synth._iter_events(2_000, 9, cfg, 700, simulate_py)))
    nb = np.concatenate(list(synth._iter_events(2_000, 9, cfg, 2_000, simulate_nb)))
    assert py.tobytes() == nb.tobytes()


def test_instruments_are_independent_streams_merged_by_ts_local():
    multi, inst = synthesize(30_000, seed=21, config=SynthConfig(n_instruments=3))
    single, _ = synthesize(12_000, seed=21)
    assert [i.symbol for i in inst] == ["SYN0", "SYN1", "SYN2"]
    assert all(i.tick_size == 0.01 and i.lot_size == 1.0 for i in inst)
    own = multi[multi["instrument"] == 0]  # instrument 0 keeps its own stream, whatever the others
    assert 8_000 < len(own) < 12_000
    assert own.tobytes() == single[: len(own)].tobytes()
    same = np.diff(multi["ts_local"]) == 0  # ties broken by instrument id
    assert np.all(np.diff(multi["instrument"])[same] >= 0)
    assert np.array_equal(np.bincount(multi["instrument"]) > 8_000, [True] * 3)


def test_equal_ts_local_across_instruments_orders_by_id():
    # no jitter: every instrument's opening quote arrives at start + latency exactly
    cfg = SynthConfig(n_instruments=3, latency_jitter_ns=0.0, depth_levels=1)
    ev, _ = synthesize(100, seed=0, config=cfg)
    assert np.all(ev["ts_local"][:9] == cfg.start_ns + cfg.latency_ns)
    assert list(ev["instrument"][:9]) == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # 2 depth rows + quote each


# --- validity -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "cfg",
    [SynthConfig(), L2, SynthConfig(tick_size=0.25, lot_size=100.0, price=4_000.0, depth_levels=2),
     SynthConfig(tick_size=0.03, lot_size=0.001, price=1.0, touch_size_median=5_000.0)],
    ids=["default", "l2x3", "future", "odd-grid"],
)
def test_output_passes_validation_invariants(cfg):
    ev, inst = synthesize(20_000, seed=2, config=cfg)
    assert len(ev) == 20_000 and len(inst) == cfg.n_instruments
    assert_invariants(ev, cfg)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32), tick=st.sampled_from([0.01, 0.05, 0.5, 1e-4]),
       lot=st.sampled_from([1.0, 10.0, 0.01]), levels=st.integers(0, 5), k=st.integers(1, 3))
def test_invariants_hold_for_random_configs(seed, tick, lot, levels, k):
    cfg = SynthConfig(tick_size=tick, lot_size=lot, price=1_000 * tick * max(levels, 1) * 3,
                      depth_levels=levels, n_instruments=k, volatility=2.0)
    ev, _ = synthesize(3_000, seed=seed, config=cfg)
    assert_invariants(ev, cfg)


def test_prices_are_the_nearest_doubles_to_the_decimals():
    ev, _ = synthesize(20_000, seed=4)
    q = ev[is_(ev, KIND_QUOTE)]
    # n / 100 is correctly rounded, so printing with 2 decimals and parsing gives the same double
    assert np.array_equal(np.round(q["bid_px"], 2), q["bid_px"])
    assert np.array_equal(np.round(q["ask_px"], 2), q["ask_px"])


def test_trades_print_at_the_touch_and_deplete_it():
    ev, _ = synthesize(30_000, seed=8)
    idx = np.flatnonzero(is_(ev, KIND_TRADE))
    idx = idx[idx > 0]
    before, trade, after = ev[idx - 1], ev[idx], ev[idx + 1]  # L1: a batch is trade then quote
    assert np.all(is_(before, KIND_QUOTE)) and np.all(is_(after, KIND_QUOTE))
    buy = trade["side"] == 1
    assert np.array_equal(trade["price"][buy], before["ask_px"][buy])
    assert np.array_equal(trade["price"][~buy], before["bid_px"][~buy])
    touch_sz = np.where(buy, before["ask_sz"], before["bid_sz"])
    left = np.where(buy, after["ask_sz"], after["bid_sz"])
    partial = trade["size"] < touch_sz
    assert np.array_equal(left[partial], (touch_sz - trade["size"])[partial])
    used_up = ~partial  # level consumed: the touch moves one tick away from the aggressor
    assert used_up.sum() > 10
    moved = np.where(buy, after["ask_px"] - before["ask_px"], before["bid_px"] - after["bid_px"])
    assert np.allclose(moved[used_up], 0.01)
    assert 0.3 < buy.mean() < 0.7


# --- stylised facts -------------------------------------------------------------------------
def event_counts(ev: np.ndarray, window_s: float) -> np.ndarray:
    t = ev["ts_exch"][is_(ev, KIND_LAST_IN_BATCH)]  # one row per event
    w = (t - t[0]) // int(window_s * 1e9)
    return np.bincount(w)[:-1]  # drop the partial last window


def test_arrivals_cluster_and_rates_match_theory():
    ev, _ = synthesize(200_000, seed=1)
    counts = event_counts(ev, 1.0)
    # Hawkes with branching radius ~0.6: variance/mean of 1 s counts ~4; Poisson gives 1 with a
    # standard error of sqrt(2/windows) ~ 0.03 here, so 2.0 cannot be reached by chance.
    assert counts.var() / counts.mean() > 2.0
    flat, _ = synthesize(100_000, seed=1, config=FLAT)
    c0 = event_counts(flat, 1.0)
    assert 0.85 < c0.var() / c0.mean() < 1.15
    # stationary rates (I - N)^-1 mu; count noise over ~7 000 s is < 3 %, allow 10 %
    span = (ev["ts_exch"][-1] - ev["ts_exch"][0]) / 1e9
    n_trade = is_(ev, KIND_TRADE).sum()
    lam_q, lam_t = SynthConfig().mean_rates()
    assert (is_(ev, KIND_QUOTE).sum() - n_trade) / span == pytest.approx(lam_q, rel=0.10)
    assert n_trade / span == pytest.approx(lam_t, rel=0.10)


def abs_return_acf(ev: np.ndarray, window_s: float, lags: int) -> np.ndarray:
    q = ev[is_(ev, KIND_QUOTE)]
    t = q["ts_exch"] - q["ts_exch"][0]
    edges = np.arange(1, t[-1] // int(window_s * 1e9)) * int(window_s * 1e9)
    mid = np.log(q["bid_px"] + q["ask_px"])[np.searchsorted(t, edges, "right") - 1]
    r = np.abs(np.diff(mid))
    r = r - r.mean()
    return np.array([r[:-k] @ r[k:] / (r @ r) for k in range(1, lags + 1)])


def test_volatility_clusters():
    # lognormal volatility with log-sd 0.5 and a 300 s half-life: theory gives an |return|
    # autocorrelation ~0.2 at short lags (less after tick rounding); with constant volatility it
    # is 0 +- ~0.02 (3 400 two-second returns), so 0.08 vs 0.04 separates the two cleanly.
    ev, _ = synthesize(200_000, seed=0)
    acf = abs_return_acf(ev, 2.0, 10)
    assert acf.mean() > 0.08 and np.all(acf > 0)
    flat, _ = synthesize(200_000, seed=0, config=FLAT)
    assert abs(abs_return_acf(flat, 2.0, 10).mean()) < 0.04


def hill(x: np.ndarray, k: int) -> float:
    x = np.sort(x)[::-1]
    return float(1.0 / np.mean(np.log(x[:k] / x[k])))


def test_trade_sizes_are_heavy_tailed():
    ev, _ = synthesize(100_000, seed=6)
    sizes = ev["size"][is_(ev, KIND_TRADE)]
    assert np.array_equal(sizes, np.round(sizes)) and sizes.min() >= 1
    # Pareto tail 1.8: the Hill estimate on the top 2 % is ~1.8 +- 0.15 (+ discretisation bias);
    # an exponential sample of the same mean gives ~ln(50) ~ 3.9 and excess kurtosis ~6.
    k = len(sizes) // 50
    assert 1.3 < hill(sizes, k) < 2.4
    expo = np.random.default_rng(0).exponential(sizes.mean(), len(sizes))
    assert hill(expo, k) > 3.0
    assert stats.kurtosis(sizes) > 50 > 3 * stats.kurtosis(expo)


def test_spread_regimes_follow_the_markov_chain():
    ev, _ = synthesize(200_000, seed=3)
    after_trade = np.zeros(len(ev), bool)
    after_trade[1:] = is_(ev[:-1], KIND_TRADE)
    q = ev[is_(ev, KIND_QUOTE) & ~after_trade]  # quotes set by a quote update, not by a trade
    spread = np.round((q["ask_px"] - q["bid_px"]) / 0.01).astype(int)
    values, counts = np.unique(spread, return_counts=True)
    assert list(values) == [1, 2, 5]  # exactly the regimes
    # quote updates arrive independently of the chain: regime shares ~ the stationary law pi,
    # pi Q = 0 (about 0.79 / 0.19 / 0.02); ~150 regime visits over 7 000 s => +- 0.05
    rates = np.array(SynthConfig().spread_rates)
    gen = rates - np.diag(rates.sum(axis=1))
    w, v = np.linalg.eig(gen.T)
    pi = np.real(v[:, np.argmin(abs(w))])
    pi /= pi.sum()
    assert np.allclose(counts / counts.sum(), pi, atol=0.05)


# --- L2 depth -------------------------------------------------------------------------------
def test_depth_updates_rebuild_the_quoted_book():
    cfg = SynthConfig(depth_levels=4, n_instruments=2)
    ev, _ = synthesize(30_000, seed=13, config=cfg)
    books = {i: ({}, {}) for i in range(2)}  # instrument -> (bids, asks): price -> size
    checked = 0
    for row in ev:
        bids, asks = books[int(row["instrument"])]
        if row["kind"] & KIND_DEPTH:
            side = bids if row["side"] == 1 else asks
            if row["size"] == 0:
                assert row["price"] in side  # only existing levels are deleted
                del side[row["price"]]
            else:
                side[row["price"]] = row["size"]
            if bids and asks:  # never crossed, even mid-batch
                assert max(bids) < min(asks)
        if row["kind"] & KIND_QUOTE:
            bb, ba = max(bids), min(asks)
            assert (bb, bids[bb], ba, asks[ba]) == (row["bid_px"], row["bid_sz"],
                                                  row["ask_px"], row["ask_sz"])
            assert len(bids) == len(asks) == 4  # contiguous ticks from the touch
            assert np.allclose(np.diff(sorted(bids)), 0.01) and np.allclose(np.diff(sorted(asks)), 0.01)
            checked += 1
    assert checked > 5_000
    d = ev[is_(ev, KIND_DEPTH)]
    assert set(np.unique(d["level"])) == {0, 1, 2, 3}


# --- streaming to Parquet, API edges ---------------------------------------------------------
def test_parquet_round_trip_streams_by_chunk(tmp_path):
    cfg = SynthConfig(n_instruments=2, depth_levels=1)
    path = synthesize_to_parquet(tmp_path / "s.parquet", 5_000, seed=17, config=cfg, chunk_rows=1_000)
    ev, inst = synthesize(5_000, seed=17, config=cfg)
    assert read_parquet(path).tobytes() == ev.tobytes()
    assert parquet_instruments(path) == inst
    assert [len(c) for c in iter_parquet(path, 1_000)] == [1_000] * 5
    assert not (tmp_path / "s.parquet.partial").exists()


def test_empty_and_bad_arguments():
    ev, inst = synthesize(0, seed=1)
    assert ev.dtype == EVENT_DTYPE and len(ev) == 0 and len(inst) == 1
    assert list(iter_synthesize(0, seed=1)) == []
    for kwargs in ({"seed": -1}, {"seed": 1.5}, {"seed": 1, "chunk_rows": 0}):
        with pytest.raises(ValueError):
            list(iter_synthesize(10, **kwargs))
    with pytest.raises(ValueError, match="n_events"):
        synthesize(-1, seed=1)


@pytest.mark.parametrize(
    "kwargs, field",
    [({"tick_size": 0.0}, "tick_size"), ({"branching": ((0.9, 0.5), (0.5, 0.9))}, "branching"),
     ({"spread_rates": ((0.0, 1.0),)}, "spread_rates"), ({"spread_ticks": (0, 1, 2)}, "spread_ticks"),
     ({"depth_levels": 300}, "depth_levels"), ({"jump_dist": "cauchy"}, "jump_dist"),
     ({"latency_ns": -1}, "latency_ns"), ({"volatility": float("nan")}, "volatility"),
     ({"n_instruments": 2.0}, "n_instruments")],
)
def test_config_rejects_bad_values(kwargs, field):
    with pytest.raises(ValueError, match=f"SynthConfig.{field}"):
        SynthConfig(**kwargs)


def test_config_mean_rates_solve_the_branching_system():
    cfg = SynthConfig(quote_rate=2.0, trade_rate=1.0, branching=((0.5, 0.0), (0.0, 0.0)))
    assert cfg.mean_rates() == pytest.approx((4.0, 1.0))  # hand-worked: 2 / (1 - 0.5), 1


# --- bundled samples ------------------------------------------------------------------------
def test_bundled_parquet_sample_is_the_documented_generator_output():
    path = SAMPLES / "synthetic_l1.parquet"
    ev, inst = synthesize(50_000, seed=20240102)  # as in SOURCES.md / examples/make_samples.py
    assert read_parquet(path).tobytes() == ev.tobytes()
    assert parquet_instruments(path) == inst
    assert path.stat().st_size + (SAMPLES / "synthetic_quotes.csv.gz").stat().st_size < 3_000_000


def test_bundled_csv_sample_matches_the_parquet_quotes():
    raw = gzip.decompress((SAMPLES / "synthetic_quotes.csv.gz").read_bytes()).decode()
    assert raw.startswith("time,bid,ask,bid_size,ask_size\n")
    df = pd.read_csv(io.StringIO(raw))
    assert len(df) == 4_000 and df["time"].str.endswith("Z").all()
    ev = read_parquet(SAMPLES / "synthetic_l1.parquet")
    q = ev[is_(ev, KIND_QUOTE)][:4_000]
    ts = pd.to_datetime(df["time"]).dt.tz_localize(None).to_numpy().astype("datetime64[ns]").astype(np.int64)
    assert np.array_equal(ts, q["ts_exch"] // 1_000 * 1_000)  # microseconds, truncated
    for col, field in (("bid", "bid_px"), ("ask", "ask_px"), ("bid_size", "bid_sz"), ("ask_size", "ask_sz")):
        assert np.array_equal(df[col].to_numpy(float), q[field])
