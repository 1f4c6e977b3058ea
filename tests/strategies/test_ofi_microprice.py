"""OFI and microprice strategies: hand-worked signals, pure-Python twins, an independent OFI
implementation (features.ofi_increments) on the real AMZN sample, the holding rule, end-to-end
runs (position bounds, planted direction) and prefix invariance (no look-ahead)."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tickguard.data.lobster import read_lobster
from tickguard.data.schema import KIND_QUOTE, Instrument, InstrumentTable, empty_events
from tickguard.data.synth import SynthConfig, synthesize
from tickguard.engine.backtest import run
from tickguard.engine.config import EngineConfig, Latency, LatencyConfig
from tickguard.engine.layout import M_ASK, M_ASK_SZ, M_BID, M_BID_SZ, M_MID, M_NF
from tickguard.engine.records import LIQ_TAKER, LOCAL_ORDER_DTYPE, OE_SUBMIT, REQUEST_DTYPE
from tickguard.strategies.features import ofi_increments
from tickguard.strategies.microprice import MICROPRICE_STATE_FIELDS, microprice
from tickguard.strategies.ofi import OFI_STATE_FIELDS, elapsed_ns_nb, follow_signal_nb, ofi

LOBSTER = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lobster" / \
    "AMZN_2012-06-21_34200000_57600000_message_1.csv"
needs_lobster = pytest.mark.skipif(not LOBSTER.exists(), reason=f"LOBSTER sample not found: {LOBSTER}")
T0 = 1_704_205_800_000_000_000
OFI = {name: i for i, name in enumerate(OFI_STATE_FIELDS)}
MP = {name: i for i, name in enumerate(MICROPRICE_STATE_FIELDS)}
INST = InstrumentTable([Instrument(0, "A", tick_size=0.01, lot_size=1.0)])
LAT = EngineConfig(latency=LatencyConfig(submit=Latency(entry_ns=20_000, response_ns=20_000)))


def quotes(rows, dt=1000):
    """Quote events from (bid, bid_sz, ask, ask_sz) rows, one every ``dt`` ns."""
    ev = empty_events(len(rows))
    ev["ts_exch"] = ev["ts_local"] = T0 + np.arange(len(rows)) * dt
    ev["kind"] = KIND_QUOTE
    for i, (pb, qb, pa, qa) in enumerate(rows):
        ev["bid_px"][i], ev["bid_sz"][i], ev["ask_px"][i], ev["ask_sz"][i] = pb, qb, pa, qa
    return ev


def see(mkt, e):
    """The strategy's market view after event ``e`` (engine/strategy.py: L1 columns of the last
    quote row; mid = (bid + ask) / 2, or the one side known)."""
    if e["kind"] & KIND_QUOTE:
        b, a = float(e["bid_px"]), float(e["ask_px"])
        mkt[0, M_BID], mkt[0, M_BID_SZ], mkt[0, M_ASK], mkt[0, M_ASK_SZ] = b, e["bid_sz"], a, e["ask_sz"]
        mkt[0, M_MID] = a if math.isnan(b) else (b if math.isnan(a) else 0.5 * (b + a))


def drive(strategy, events):
    """Replay events through the callback as the loop does (market view first); requested market
    orders fill at once (the position moves, nothing stays working). Returns the state after
    each event and the requests written."""
    mkt = np.full((1, M_NF), np.nan)
    state = strategy.state.copy()
    orders = np.zeros(0, dtype=LOCAL_ORDER_DTYPE)
    req = np.zeros(strategy.max_requests, dtype=REQUEST_DTYPE)
    pos, aux = np.zeros(1), np.zeros(0)
    snaps, sent = [], []
    for i in range(len(events)):
        e = events[i]
        see(mkt, e)
        k = strategy.on_event(0, e, -1, e["ts_local"], mkt, pos, orders, 0, strategy.params, state,
                              aux, req)
        pos[0] += (req["side"][:k] * req["qty"][:k]).sum()
        snaps.append(state.copy())
        sent.append(req[:k].copy())
    return np.array(snaps), sent


# --- hand-worked 5-event sequence (plus a repeated quote, which carries no flow) --------------
HAND = [
    (100.00, 10, 100.02, 8),   # first quote: no previous L1, nothing counted
    (100.00, 15, 100.02, 8),   # bid same: 15-10 = 5; ask same: 8-8 = 0        -> e = 5
    (100.01, 4, 100.02, 6),    # bid up: +4; ask same: 6-8 = -2                -> e = 4-(-2) = 6
    (100.00, 20, 100.01, 3),   # bid down: -4 (prev size); ask down: +3        -> e = -4-3 = -7
    (100.00, 20, 100.01, 3),   # repeat: not counted
    (100.00, 12, 100.03, 9),   # bid same: 12-20 = -8; ask up: -3 (prev size)  -> e = -8-(-3) = -5
]
HAND_E = [5, 6, -7, -5]
# window 2: OFI = sum(e) / mean depth, depth = (qb + qa) / 2 = 11.5, 5, 11.5, 10.5
HAND_OFI = [None, None, Fraction(11) / Fraction(33, 4), Fraction(-1) / Fraction(33, 4),
            Fraction(-1) / Fraction(33, 4), Fraction(-12) / 11]


def ofi_twin(rows, window):
    """Pure-Python CKS OFI with the case form of the spec (valid two-sided quotes only)."""
    es, ds, out, prev = [], [], [], None
    for row in rows:
        if prev is not None and row != prev:
            (pb0, qb0, pa0, qa0), (pb, qb, pa, qa) = prev, row
            bid = qb if pb > pb0 else (qb - qb0 if pb == pb0 else -qb0)
            ask = qa if pa < pa0 else (qa - qa0 if pa == pa0 else -qa0)
            es.append(bid - ask)
            ds.append((qb + qa) / 2)
        prev = row
        out.append(sum(es[-window:]) / (sum(ds[-window:]) / window) if len(es) >= window else math.nan)
    return es, out


def test_ofi_increments_and_window_match_hand_worked_numbers_and_twin():
    snaps, _ = drive(ofi(window=2, threshold=100.0), quotes(HAND))
    counted = snaps[:, OFI["counted"]]
    np.testing.assert_array_equal(counted, [0, 1, 2, 3, 3, 4])
    new = np.flatnonzero(np.diff(counted, prepend=0) > 0)
    np.testing.assert_array_equal(snaps[new, OFI["last_e"]], HAND_E)
    expect = [math.nan if f is None else float(f) for f in HAND_OFI]
    np.testing.assert_allclose(snaps[:, OFI["ofi"]], expect, rtol=1e-12)  # 4/3, -4/33, -12/11
    twin_e, twin_ofi = ofi_twin(HAND, 2)
    assert twin_e == HAND_E
    np.testing.assert_allclose(snaps[:, OFI["ofi"]], twin_ofi, rtol=1e-12)


def test_ofi_hand_sequence_trades_on_the_threshold():
    # threshold 1: OFI 4/3 at row 2 -> buy; -4/33 -> flat (hold 0); -12/11 at row 5 -> short
    snaps, sent = drive(ofi(window=2, threshold=1.0, hold_events=0), quotes(HAND))
    np.testing.assert_array_equal(snaps[:, OFI["target"]], [0, 0, 1, 0, 0, -1])
    assert [len(r) for r in sent] == [0, 0, 1, 1, 0, 1]
    assert [(int(r["side"][0]), float(r["qty"][0])) for r in sent if len(r)] == [(1, 1), (-1, 1), (-1, 1)]


@pytest.fixture(scope="module")
def amzn():
    if not LOBSTER.exists():
        pytest.skip(f"LOBSTER sample not found: {LOBSTER}")
    return read_lobster(LOBSTER)[:2]


@needs_lobster
def test_ofi_on_real_amzn_agrees_with_features_and_pandas_rolling(amzn):
    ev = amzn[0][:20_000]
    window = 50
    snaps, _ = drive(ofi(window=window, threshold=1e9), ev)
    q = ev[(ev["kind"] & KIND_QUOTE) != 0]
    l1 = np.stack([q[n] for n in ("bid_px", "bid_sz", "ask_px", "ask_sz")], axis=1)
    changed = np.r_[False, ~(l1[1:] == l1[:-1]).all(axis=1)]
    e = ofi_increments(q)[changed]  # an independent vectorised implementation of CKS eq. 10
    counted = snaps[:, OFI["counted"]]
    assert counted[-1] == len(e) > 15_000
    new = np.flatnonzero(np.diff(counted, prepend=0) > 0)
    np.testing.assert_array_equal(snaps[new, OFI["last_e"]], e)
    depth = 0.5 * (q["bid_sz"] + q["ask_sz"])[changed]
    oracle = (pd.Series(e).rolling(window).sum() / pd.Series(depth).rolling(window).mean()).to_numpy()
    np.testing.assert_allclose(snaps[new, OFI["ofi"]], oracle, rtol=1e-9, atol=1e-9)
    assert np.isfinite(oracle[window - 1:]).all() and np.nanmax(np.abs(oracle)) > 1.0


# --- microprice --------------------------------------------------------------------------------
MP_ROWS = [
    (100.00, 30, 100.02, 10),  # I = 0.75; micro = 100.02*.75 + 100*.25 = 100.015; mid 100.01 -> +0.25
    (100.00, 10, 100.02, 10),  # I = 0.5; micro = mid = 100.01                            -> 0
    (100.00, 5, 100.01, 45),   # I = 0.1; micro = 100.01*.1 + 100*.9 = 100.001; mid 100.005 -> -0.4
    (100.01, 0, 100.02, 10),   # I = 0; micro = bid = 100.01; mid 100.015                  -> -0.5
    (100.01, 0, 100.02, 0),    # both queues empty: undefined
]
MP_EXPECT = [(0.75, 100.015, 0.25), (0.5, 100.01, 0.0), (0.1, 100.001, -0.4), (0.0, 100.01, -0.5),
             (math.nan, math.nan, math.nan)]


def microprice_twin(pb, qb, pa, qa):
    if qb + qa <= 0:
        return math.nan, math.nan, math.nan
    imb = qb / (qb + qa)
    micro = imb * pa + (1 - imb) * pb
    return imb, micro, (micro - (pb + pa) / 2) / (pa - pb)


def test_microprice_matches_hand_worked_numbers_and_twin():
    snaps, sent = drive(microprice(threshold=0.3, hold_events=0), quotes(MP_ROWS))
    got = snaps[:, [MP["imbalance"], MP["microprice"], MP["signal"]]]
    np.testing.assert_allclose(got, MP_EXPECT, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got, [microprice_twin(*r) for r in MP_ROWS], rtol=0, atol=1e-9)
    # 0.25 < 0.3: flat; -0.4 -> short; -0.5 -> still short; NaN keeps the target
    np.testing.assert_array_equal(snaps[:, MP["target"]], [0, 0, -1, -1, -1])
    assert [len(r) for r in sent] == [0, 0, 1, 0, 0] and sent[2]["side"][0] == -1


@needs_lobster
def test_microprice_signal_is_imbalance_minus_half_on_real_amzn(amzn):
    ev = amzn[0][:20_000]
    snaps, _ = drive(microprice(threshold=0.45), ev)
    quote = (ev["kind"] & KIND_QUOTE) != 0
    qb, qa = ev["bid_sz"][quote], ev["ask_sz"][quote]
    with np.errstate(invalid="ignore", divide="ignore"):
        imb = qb / (qb + qa)
    s = snaps[quote]
    np.testing.assert_allclose(s[:, MP["imbalance"]], imb, rtol=1e-12)
    # (micro - mid) / spread = I - 1/2 algebraically: an identity the code does not use
    np.testing.assert_allclose(s[:, MP["signal"]], imb - 0.5, rtol=0, atol=1e-9)
    assert np.nanmax(np.abs(imb - 0.5)) > 0.45


# --- holding rule --------------------------------------------------------------------------------
def test_follow_signal_holds_for_events_then_follows():
    state = np.zeros(4)
    signals = [0.0, 2.0, 0.0, 0.0, -2.0, -2.0, 2.0, math.nan, 0.0]
    got = [follow_signal_nb(s, 1.0, 1.0, float(i + 1), T0, 2.0, 0.0, state, 0)
           for i, s in enumerate(signals)]
    # enter at 2; held at 3 (1 event); flat at 4; short at 5; flip at 7 (2 events); NaN keeps; flat at 9
    assert got == [0, 1, 1, 0, -1, -1, 1, 1, 0]


def test_follow_signal_holds_for_time_at_epoch_scale():
    state = np.zeros(4)
    t = T0 + 123_456_789  # float64 cannot hold this exactly: the split storage must
    assert follow_signal_nb(2.0, 1.0, 3.0, 1.0, t, 0.0, 1500.0, state, 0) == 3.0
    assert follow_signal_nb(0.0, 1.0, 3.0, 2.0, t + 1499, 0.0, 1500.0, state, 0) == 3.0
    assert follow_signal_nb(0.0, 1.0, 3.0, 3.0, t + 1500, 0.0, 1500.0, state, 0) == 0.0


def test_elapsed_ns_is_exact_for_epoch_timestamps():
    rng = np.random.default_rng(7)
    for a, d in zip(rng.integers(T0, T0 + 10**15, 50), rng.integers(0, 10**12, 50)):
        a, d = int(a), int(d)
        assert elapsed_ns_nb(np.int64(a + d), float(a // 10**9), float(a % 10**9)) == d


# --- end to end --------------------------------------------------------------------------------
def check_run(result, size):
    f = result.fills
    assert len(result.orders) > 20 and len(f) > 20
    assert (f["liquidity"] == LIQ_TAKER).all()  # market orders
    path = np.cumsum(f["side"] * f["qty"])
    np.testing.assert_allclose(path, f["position"])  # engine's position column, recomputed
    assert np.abs(path).max() == size  # reaches the bound and never passes it


@pytest.fixture(scope="module")
def synth():
    return synthesize(20_000, seed=11)


@pytest.mark.parametrize("factory", [lambda: ofi(size=2, hold_events=10),
                                     lambda: microprice(size=2, hold_events=10)])
def test_end_to_end_on_synthetic_positions_stay_within_size(synth, factory):
    ev, inst = synth
    check_run(run(ev, factory(), instruments=inst, config=LAT), 2.0)


@needs_lobster
@pytest.mark.parametrize("factory", [lambda: ofi(size=3, lot_size=1.0, window=100, threshold=1.0),
                                     lambda: microprice(size=3, threshold=0.4, hold_ns=1_000_000)])
def test_end_to_end_on_real_amzn_positions_stay_within_size(amzn, factory):
    ev, inst = amzn
    check_run(run(ev, factory(), instruments=inst, config=LAT), 3.0)


def planted(buy: bool):
    """Bid queue growing (buy pressure) or, mirrored, ask queue growing; prices fixed."""
    rows = [(100.00, 10 + 20 * i, 100.01, 10) for i in range(8)]
    if not buy:
        rows = [(pb, qa, pa, qb) for pb, qb, pa, qa in rows]
    return quotes(rows, dt=100_000)


@pytest.mark.parametrize("buy", [True, False])
@pytest.mark.parametrize("factory", [lambda: ofi(window=3, threshold=0.5),
                                     lambda: microprice(threshold=0.3)])
def test_planted_imbalance_trades_in_its_direction(factory, buy):
    res = run(planted(buy), factory(), instruments=INST, config=LAT)
    sides = res.order_events["side"][res.order_events["event"] == OE_SUBMIT]
    assert len(sides) == 1 and sides[0] == (1 if buy else -1)
    assert len(res.fills) == 1 and res.fills["position"][-1] == (1.0 if buy else -1.0)


@pytest.mark.parametrize("factory", [lambda: ofi(window=20, threshold=0.3, hold_events=5),
                                     lambda: microprice(threshold=0.25, hold_events=5)])
def test_prefix_invariance(factory):
    # no feed latency: the exchange at local time t has seen exactly the events up to t
    ev, inst = synthesize(6000, seed=5, config=SynthConfig(latency_ns=0, latency_jitter_ns=0.0))
    full = run(ev, factory(), instruments=inst, config=LAT)
    ts = ev["ts_local"]
    for k0 in (1500, 3000, 4500):
        k = k0 + int(np.argmax(ts[k0:-1] < ts[k0 + 1:]))  # the last row of its timestamp
        part = run(ev[: k + 1], factory(), instruments=inst, config=LAT)
        for name in ("order_events", "fills"):
            a, b = getattr(full, name), getattr(part, name)
            a, b = a[a["ts"] <= ts[k]], b[b["ts"] <= ts[k]]
            assert len(a) > 10 and a.tobytes() == b.tobytes(), (name, k)


@pytest.mark.parametrize("call, match", [
    (lambda: ofi(window=0), "window must be an int >= 1"),
    (lambda: ofi(threshold=-1.0), "threshold must be finite and > 0"),
    (lambda: ofi(size=1.5), "size must be a whole number of lots"),
    (lambda: ofi(hold_events=-1), "hold_events must be an int >= 0"),
    (lambda: microprice(threshold=0.5), r"threshold must be in \(0, 0.5\)"),
    (lambda: microprice(instrument=-2), "instrument must be an int id >= 0, got -2"),
    (lambda: microprice(lot_size=0.0), "lot_size must be finite and > 0"),
])
def test_bad_arguments_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
