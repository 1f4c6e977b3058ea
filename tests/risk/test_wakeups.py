"""The loop shows monitor_event_nb only the events its rules asked for (wake-ups, engine/gate.py).

Oracle: the same run with ``RiskGate(every_event=True)``, where the loop calls the monitor on
every local event (the semantics the kill-switch unit tests pin down). Random streams with
crossed quotes, feed gaps, a moving mid, CONTROL kills and resets, and limit orders at random
distances must give byte-identical records either way; the union of the runs must have fired
every per-event rule, so the comparison covers each wake-up path.
"""

from __future__ import annotations

import numpy as np
import pytest

from tickguard.data.schema import KIND_CONTROL, KIND_QUOTE, KIND_TRADE, Instrument, InstrumentTable, empty_events
from tickguard.engine.backtest import run
from tickguard.engine.config import EngineConfig, Latency, LatencyConfig
from tickguard.engine.records import OT_LIMIT
from tickguard.engine.scripted import scripted, submit
from tickguard.risk import RiskGate

INST = InstrumentTable([Instrument(0, "X", tick_size=0.01, lot_size=1),
                        Instrument(1, "Y", tick_size=0.01, lot_size=1)])
MS = 1_000_000
RULES = """
[[rule]]
id = "sigma"
metric = "price_collar_sigma"
threshold = 2.0
window = "20ms"
action = "deny"
params = { lambda = 0.9, floor = 0.0002, cap = 0.05 }

[[rule]]
id = "crossed"
metric = "crossed_data"
scope = "X"
threshold = "500us"
action = "halt"

[[rule]]
id = "silent"
metric = "stale_feed"
threshold = "8ms"
action = "reduce"

[[rule]]
id = "kill"
metric = "external_kill"
action = "halt"
"""


def stream(seed: int, n: int = 3000, rare: float = 1.0) -> np.ndarray:
    """``rare`` scales the rates of gaps, crossed quotes and CONTROL rows (sparse: long stretches
    the loop takes with no check of its own, past the look-ahead of its scan for marked rows)."""
    rng = np.random.default_rng(seed)
    steps = rng.exponential(300_000, n).astype(np.int64) + 1
    steps[rng.random(n) < 0.004 * rare] += 12 * MS  # feed gaps, longer than the stale_feed threshold
    t = np.cumsum(steps)  # (a gap added to one time, not to its step, sent the next row back in time)
    ev = empty_events(n)
    ev["ts_exch"] = ev["ts_local"] = t
    ev["instrument"] = rng.integers(0, 2, n)
    mid = 100.0 + np.cumsum(rng.normal(0, 0.02, n)).round(2)
    ev["kind"] = np.where(rng.random(n) < 0.15, KIND_TRADE, KIND_QUOTE)
    ev["bid_px"], ev["ask_px"] = mid - 0.01, mid + 0.01
    crossed = rng.random(n) < 0.01 * rare  # crossed spells last until the instrument's next quote
    ev["bid_px"][crossed] = mid[crossed] + 0.02
    ev["bid_sz"] = ev["ask_sz"] = 100.0
    ev["price"], ev["size"], ev["side"] = mid, 1.0, rng.choice([-1, 1], n)
    ctl = rng.random(n) < 0.003 * rare  # CONTROL rows: an external kill or a reset (level 1)
    ev["kind"][ctl], ev["level"][ctl] = KIND_CONTROL, 1
    return ev


def orders(seed: int, n: int = 3000, every: int = 40) -> list:
    rng = np.random.default_rng(seed + 1000)
    steps, at = [], 20
    while at < n - 5:
        off = rng.choice([0.0, 0.01, 0.05, 0.3, 1.5])  # some inside, some beyond the collar
        side = int(rng.choice([-1, 1]))
        steps.append(submit(at, side, 1.0, round(100.0 - side * off, 2), order_type=OT_LIMIT,
                            instrument=int(rng.integers(0, 2))))
        at += int(rng.integers(5, every))
    return steps


def _run(seed: int, every_event: bool, n: int = 3000, rare: float = 1.0, every: int = 40,
         chunk_rows: int = 1 << 20):
    gate = RiskGate.load(RULES, INST)
    gate = RiskGate(gate.rulebook, gate.source, every_event=every_event)
    lat = Latency(entry_ns=50_000, response_ns=50_000)
    return run(stream(seed, n, rare), scripted(orders(seed, n, every)), instruments=INST,
               config=EngineConfig(latency=LatencyConfig(submit=lat), chunk_rows=chunk_rows), risk=gate)


@pytest.fixture(scope="module")
def pairs():
    # odd seeds in chunks of 700 rows: the rows that may wake the monitor are listed per chunk
    # by the reader (engine/gate.py marked_rows_nb), and the loop meets them across chunk ends
    dense = {seed: (_run(seed, False, chunk_rows=700 if seed % 2 else 1 << 20), _run(seed, True))
             for seed in range(6)}
    # sparse: ~20 times rarer gaps, marked rows and orders over 20 000 events: long stretches
    # the strategy's steps take with no check, up to the next marked row or the timer
    sparse = {100 + seed: (_run(100 + seed, False, 20_000, 0.05, 3000, chunk_rows=1500 * (seed + 1)),
                           _run(100 + seed, True, 20_000, 0.05, 3000)) for seed in range(3)}
    return {**dense, **sparse}


def test_wakeups_change_nothing(pairs):
    for seed, (woken, every) in pairs.items():
        for name in ("orders", "order_events", "fills", "equity", "risk_events"):
            a, b = getattr(woken, name), getattr(every, name)
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), f"seed {seed}: {name} differ"
        assert woken.result_hash == every.result_hash


def test_the_streams_exercise_every_per_event_rule(pairs):
    seen = set()
    for woken, _ in pairs.values():
        df = woken.risk_events_df()
        seen |= set(df["rule_id"])
    assert {"sigma", "crossed", "silent", "kill", "kill-switch:reset"} <= seen, seen


def test_a_timed_crossed_book_sees_every_event_until_it_uncrosses():
    # The every-event oracle above passes through ks[G_WAKE_ALL] itself, so this path gets a
    # hand-made case: X is crossed for 0.2 ms twice, 4 ms apart, threshold 0.5 ms: no trip. A
    # loop that missed the uncrossing quote would time the second spell from the first (4 ms).
    q = dict(kind=KIND_QUOTE, instrument=0, bid_px=99.99, ask_px=100.01, bid_sz=100.0, ask_sz=100.0)
    x = dict(q, bid_px=100.02)  # crossed
    rows = [(1, q), (1_000, x), (1_200, q)] + [(1_200 + 100 * k, dict(q, instrument=1)) for k in range(1, 30)]
    rows += [(5_000, x), (5_200, q), (5_300, q), (6_000, q)]
    ev = empty_events(len(rows))
    for i, (us, fields) in enumerate(rows):
        ev["ts_exch"][i] = ev["ts_local"][i] = us * 1000
        for key, value in fields.items():
            ev[key][i] = value
    r = run(ev, scripted([]), instruments=INST, risk=RiskGate.load(RULES, INST))
    assert len(r.risk_events) == 0  # with the WAKE_ALL path removed: a "crossed" halt at 5 ms


# ------------------------------------------------------------- the working-order list (C_N_WORK)
_ALL_ROWS_GATE = '''
"""The rulebook gate, but counting open orders by scanning every row of the order table."""
import numpy as np
from numba import njit
from tickguard.risk.killswitch import monitor_activity_nb, monitor_event_nb, monitor_sample_nb
from tickguard.risk.pretrade import pretrade_nb as _gate

ALL = @ALL@


@njit(cache=False)
def pretrade_nb(req, now, mkt, pos, orders, working, mult, rules, rstate, ks):
    return _gate(req, now, mkt, pos, orders, np.arange(orders.shape[0] if ALL else 0), mult, rules,
                 rstate, ks)
'''

EXPOSURE = """
[[rule]]
id = "gross"
metric = "max_gross_exposure"
threshold = 1000.0
action = "deny"

[[rule]]
id = "pos"
metric = "max_position"
threshold = 6
action = "deny"
"""


def test_gate_sees_the_same_open_orders_as_a_scan_of_every_order(tmp_path, monkeypatch):
    # Oracle: a gate module that scans the whole order table (rows never sent have status 0 and
    # done rows their final status, so the scan finds exactly the working orders). The engine's
    # working list must give the same denials on a random stream of resting and marketable limit
    # orders, cancels and modifies; a gate blind to open orders must not.
    from tickguard.engine.scripted import cancel, modify

    (tmp_path / "all_rows_gate.py").write_text(_ALL_ROWS_GATE.replace("@ALL@", "True"))
    (tmp_path / "no_rows_gate.py").write_text(_ALL_ROWS_GATE.replace("@ALL@", "False"))  # a broken gate
    monkeypatch.syspath_prepend(str(tmp_path))

    class AllRowsGate(RiskGate):
        module = "all_rows_gate"

    class NoRowsGate(RiskGate):
        module = "no_rows_gate"

    rng = np.random.default_rng(3)
    n = 4000
    ev = empty_events(n)
    ev["ts_exch"] = ev["ts_local"] = np.cumsum(rng.integers(100_000, 500_000, n))
    ev["instrument"] = rng.integers(0, 2, n)
    ev["kind"], ev["bid_px"], ev["ask_px"], ev["bid_sz"], ev["ask_sz"] = KIND_QUOTE, 99.99, 100.01, 50.0, 50.0
    steps, sent = [], 0
    for at in range(10, n - 10, 12):
        u = rng.random()
        if u < 0.6 or sent == 0:  # resting (far) or marketable, either side, either instrument
            side = int(rng.choice([-1, 1]))
            far = rng.random() < 0.6
            price = 100.0 - side * (0.5 if far else -0.05)
            steps.append(submit(at, side, float(rng.integers(1, 3)), round(price, 2), order_type=OT_LIMIT,
                                instrument=int(rng.integers(0, 2))))
            sent += 1
        elif u < 0.85:
            steps.append(cancel(at, int(rng.integers(0, sent))))
        else:
            steps.append(modify(at, int(rng.integers(0, sent)), 99.5, float(rng.integers(1, 4))))
    rb = RiskGate.load(EXPOSURE, INST).rulebook
    lat = Latency(entry_ns=300_000, response_ns=300_000)
    cfg = EngineConfig(latency=LatencyConfig(submit=lat))
    fast = run(ev, scripted(steps), instruments=INST, config=cfg, risk=RiskGate(rb))
    scan = run(ev, scripted(steps), instruments=INST, config=cfg, risk=AllRowsGate(rb))
    assert fast.order_events.tobytes() == scan.order_events.tobytes()
    assert fast.risk_events.tobytes() == scan.risk_events.tobytes()
    assert len(fast.risk_events) > 10 and len(fast.fills) > 10
    blind = run(ev, scripted(steps), instruments=INST, config=cfg, risk=NoRowsGate(rb))
    assert blind.risk_events.tobytes() != fast.risk_events.tobytes()  # open orders mattered here
