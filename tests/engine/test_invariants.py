"""Accounting and causality invariants over random event streams and random scripted order flow.

Hypothesis draws the knobs (latencies, feed delay, impact, queue model, fees) and a schedule of
submits/cancels/modifies of every order type; a seeded numpy generator draws the market (a random
walk of quotes with trades at the touch, two instruments, one with a multiplier of 50). Each run is
checked against oracles computed here in plain Python from the records: an average-cost ledger for
positions and realized PnL, the cash identity, the fee schedule, and the timing rules.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tickguard.data.schema import KIND_QUOTE, KIND_TRADE, Instrument, InstrumentTable, empty_events
from tickguard.engine.backtest import run
from tickguard.engine.config import EngineConfig, FeeConfig, Latency, LatencyConfig
from tickguard.engine.records import (
    LIQ_MAKER, OE_CANCEL_ACK, OE_FILL, OT_FOK, OT_IOC, OT_LIMIT, OT_MARKET, OT_POST_ONLY,
)
from tickguard.engine.scripted import cancel, modify, scripted, submit

TICKS = (0.01, 0.25)
MULTS = (1.0, 50.0)
INST = InstrumentTable([Instrument(0, "A", tick_size=TICKS[0], lot_size=1),
                        Instrument(1, "B", tick_size=TICKS[1], lot_size=1, multiplier=MULTS[1])])


def random_events(seed: int, n: int, feed_ns: int) -> np.ndarray:
    """Quotes and trades on 2 instruments; ts_exch strictly increasing, ts_local = ts_exch + feed
    delay (jittered but kept non-decreasing)."""
    rng = np.random.default_rng(seed)
    ev = empty_events(n)
    ts = 1_000_000 + np.cumsum(rng.integers(1, 2000, n))
    ev["ts_exch"] = ts
    local = ts + (rng.integers(0, feed_ns + 1, n) if feed_ns > 0 else 0)
    ev["ts_local"] = np.maximum.accumulate(local)
    mid_ticks = [10_000, 400]
    for i in range(n):
        k = int(rng.integers(0, 2))
        tick = TICKS[k]
        mid_ticks[k] += int(rng.integers(-1, 2))
        bid_t = mid_ticks[k] - int(rng.integers(0, 2))
        ask_t = bid_t + int(rng.integers(1, 3))
        ev["instrument"][i] = k
        if rng.random() < 0.3:  # a trade at the touch (or one tick through it)
            side = 1 if rng.random() < 0.5 else -1
            through = int(rng.random() < 0.15)
            px_t = ask_t + through if side > 0 else bid_t - through
            ev["kind"][i] = KIND_TRADE
            ev["price"][i] = round(px_t * tick, 10)
            ev["size"][i] = float(rng.integers(1, 15))
            ev["side"][i] = side
        else:
            ev["kind"][i] = KIND_QUOTE
            ev["bid_px"][i] = round(bid_t * tick, 10)
            ev["ask_px"][i] = round(ask_t * tick, 10)
            ev["bid_sz"][i] = float(rng.integers(0, 20))
            ev["ask_sz"][i] = float(rng.integers(1, 20))
    return ev


STEP = st.tuples(
    st.integers(0, 299),  # at_event
    st.sampled_from(["submit", "submit", "submit", "cancel", "modify"]),
    st.integers(0, 1),  # instrument
    st.sampled_from([OT_MARKET, OT_LIMIT, OT_LIMIT, OT_IOC, OT_FOK, OT_POST_ONLY]),
    st.sampled_from([1, -1]),
    st.integers(-4, 4),  # price offset from the mid, ticks
    st.integers(1, 12),  # qty
    st.integers(0, 40),  # target: index among submits so far (mod)
)


def build_steps(ev: np.ndarray, raw: list[tuple]) -> list:
    steps, n_submits = [], 0
    mids = []  # per instrument: the mid as of each event (forward-filled), for limit prices
    for k, start in enumerate((10_000 * TICKS[0], 400 * TICKS[1])):
        m = np.where((ev["instrument"] == k) & ((ev["kind"] & KIND_QUOTE) != 0),
                     0.5 * (ev["bid_px"] + ev["ask_px"]), np.nan)
        idx = np.where(np.isnan(m), -1, np.arange(len(m)))
        idx = np.maximum.accumulate(idx)
        mids.append(np.where(idx >= 0, m[np.maximum(idx, 0)], start))
    for at, action, inst, otype, side, off, qty, target in sorted(raw, key=lambda r: r[0]):
        at = min(at, len(ev) - 1)
        price = round((round(mids[inst][at] / TICKS[inst]) + off) * TICKS[inst], 10)
        if action == "submit":
            steps.append(submit(at, side, qty, price, order_type=otype, instrument=inst))
            n_submits += 1
        elif n_submits:
            oid = target % n_submits
            steps.append(cancel(at, oid) if action == "cancel" else modify(at, oid, price, qty))
    return steps


def avg_cost_ledger(fills: np.ndarray):
    """Independent oracle: position after each fill and the realized PnL of each fill."""
    pos, avg = {}, {}
    out_pos, out_real = [], []
    for f in fills:
        k, s, q, p = int(f["instrument"]), int(f["side"]), float(f["qty"]), float(f["price"])
        mult = MULTS[k]
        P, A = pos.get(k, 0.0), avg.get(k, 0.0)
        real = 0.0
        if P == 0 or (P > 0) == (s > 0):
            A = (A * abs(P) + p * q) / abs(P + s * q)
        else:
            closed = min(q, abs(P))
            real = (p - A) * closed * math.copysign(1.0, P) * mult
            if abs(P + s * q) < 1e-12:
                A = 0.0
            elif (P + s * q > 0) != (P > 0):
                A = p
        P += s * q
        pos[k], avg[k] = P, A
        out_pos.append(P)
        out_real.append(real)
    return np.array(out_pos), np.array(out_real), pos, avg


def check_invariants(ev, res, config, entry_ns):
    fills, oe, orders, eq = res.fills, res.order_events, res.orders, res.equity
    fees = config.fees
    # position == running sum of signed fills per instrument; realized matches an avg-cost ledger
    exp_pos, exp_real, final_pos, final_avg = avg_cost_ledger(fills)
    np.testing.assert_allclose(fills["position"], exp_pos, rtol=0, atol=1e-9)
    np.testing.assert_allclose(fills["realized"], exp_real, rtol=1e-9, atol=1e-6)
    # fee schedule, per fill
    mult = np.array(MULTS)[fills["instrument"]]
    notional = fills["qty"] * fills["price"] * mult
    maker = fills["liquidity"] == LIQ_MAKER
    exp_fee = np.where(maker, notional * fees.maker_bps * 1e-4 + fills["qty"] * fees.maker_per_unit,
                       notional * fees.taker_bps * 1e-4 + fills["qty"] * fees.taker_per_unit)
    np.testing.assert_allclose(fills["fee"], exp_fee, rtol=1e-12, atol=1e-12)
    # cash moves only by fills and fees
    last = eq[-1]
    exp_cash = config.initial_cash - np.sum(fills["side"] * notional) - np.sum(fills["fee"])
    assert math.isclose(last["cash"], exp_cash, rel_tol=1e-12, abs_tol=1e-6)
    # equity = cash + sum(pos * mark * mult), mark = the mid the strategy last saw
    value = 0.0
    for k, p in final_pos.items():
        if p != 0.0:
            q = ev[(ev["instrument"] == k) & ((ev["kind"] & KIND_QUOTE) != 0)][-1]
            value += p * 0.5 * (q["bid_px"] + q["ask_px"]) * MULTS[k]
    assert math.isclose(last["equity"], exp_cash + value, rel_tol=1e-12, abs_tol=1e-6)
    # equity - initial == realized + unrealized - fees, at every sample
    np.testing.assert_allclose(eq["equity"] - config.initial_cash,
                               eq["realized"] + eq["unrealized"] - eq["fees"], rtol=0, atol=1e-6)
    assert math.isclose(last["realized"], float(np.sum(exp_real)), rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(last["fees"], float(np.sum(fills["fee"])), rel_tol=1e-12, abs_tol=1e-9)
    # no order over-fills; order table agrees with the fill records
    assert np.all(orders["filled"] <= orders["qty"] + 1e-9)
    per_order = np.bincount(fills["order_id"], weights=fills["qty"], minlength=len(orders))
    np.testing.assert_allclose(per_order, orders["filled"], rtol=0, atol=1e-9)
    assert np.all(fills["qty"] > 0)
    # no fill before the order could reach the exchange; responses never before the event
    sent = orders["ts_sent"][fills["order_id"]]
    assert np.all(fills["ts"] >= sent + entry_ns)
    assert np.all(fills["ts_local"] >= fills["ts"])
    # nothing fills after its cancel was acknowledged (exchange time, and record order on a tie)
    fill_rows = np.flatnonzero(oe["event"] == OE_FILL)
    for a in np.flatnonzero(oe["event"] == OE_CANCEL_ACK):
        oid, t = oe["order_id"][a], oe["ts"][a]
        later = fill_rows[(oe["order_id"][fill_rows] == oid) & ((oe["ts"][fill_rows] > t) | (fill_rows > a))]
        assert len(later) == 0, f"order {oid} filled after its cancel ack at {t}"
    # exchange records are in time order
    assert np.all(np.diff(fills["ts"]) >= 0)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(20, 300),
    feed_ns=st.sampled_from([0, 0, 500, 3000]),
    entry_ns=st.sampled_from([0, 0, 700, 5000]),
    cancel_ns=st.sampled_from([0, 300, 9000]),
    resp_ns=st.sampled_from([0, 400, 4000]),
    impact=st.sampled_from([-1.0, 0.0, 1.0, 3.0]),
    queue=st.sampled_from(["conservative", "probabilistic"]),
    maker_bps=st.sampled_from([-0.5, 0.0, 1.0]),
    taker_per_unit=st.sampled_from([0.0, 0.01]),
    raw=st.lists(STEP, min_size=1, max_size=40),
)
def test_invariants_hold_on_random_streams(seed, n, feed_ns, entry_ns, cancel_ns, resp_ns, impact,
                                           queue, maker_bps, taker_per_unit, raw):
    ev = random_events(seed, n, feed_ns)
    steps = build_steps(ev, raw)
    config = EngineConfig(
        initial_cash=100_000.0,
        latency=LatencyConfig(submit=Latency(entry_ns=entry_ns, response_ns=resp_ns),
                              cancel=Latency(entry_ns=cancel_ns, response_ns=resp_ns),
                              modify=Latency(entry_ns=cancel_ns, response_ns=resp_ns)),
        fees=FeeConfig(maker_bps=maker_bps, taker_bps=2.0, taker_per_unit=taker_per_unit),
        impact_ticks=impact, queue_model=queue, sample_every=17,
    )
    # steps past the end all fire on the last event: leave room for all of them
    res = run(ev, scripted(steps, max_requests=max(1, len(steps))), instruments=INST, config=config)
    assert res.n_events == n
    assert len(res.orders) == sum(1 for s in steps if s.action == 1)
    event(f"fills: {'none' if len(res.fills) == 0 else 'some'}")
    check_invariants(ev, res, config, entry_ns)


def test_invariants_see_real_trading():
    """The random generator is not vacuous: a fixed busy schedule produces maker and taker fills,
    a cancel ack, a flip through zero and realized PnL, all checked by the same invariants."""
    ev = random_events(7, 300, 500)
    # order k at event 4k: side alternates, instrument every 2, type cycles market/limit/ioc
    raw = [(4 * k, "submit", (k // 2) % 2, [OT_MARKET, OT_LIMIT, OT_IOC][k % 3], 1 if k % 2 else -1,
            (k % 5) - 2, 1 + k % 7, 0) for k in range(70)]
    raw += [(4 * k + 2, "cancel", 0, 0, 1, 0, 1, k) for k in range(1, 70, 3)]  # the limit orders
    steps = build_steps(ev, raw)
    config = EngineConfig(initial_cash=100_000.0, fees=FeeConfig(maker_bps=-0.5, taker_bps=2.0),
                          latency=LatencyConfig(submit=Latency(entry_ns=700, response_ns=300)))
    res = run(ev, scripted(steps), instruments=INST, config=config)
    check_invariants(ev, res, config, 700)
    assert (res.fills["liquidity"] == LIQ_MAKER).any() and (res.fills["liquidity"] != LIQ_MAKER).any()
    assert (res.order_events["event"] == OE_CANCEL_ACK).any()
    assert np.any(res.fills["realized"] != 0.0)
    pos0 = res.fills["position"][res.fills["instrument"] == 0]
    assert (pos0 > 0).any() and (pos0 < 0).any()
