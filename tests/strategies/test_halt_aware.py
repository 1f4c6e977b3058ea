"""Signal strategies stay quiet while the exchange halts the instrument (no doomed market orders)."""

from __future__ import annotations

import numpy as np

from tickguard.data.schema import KIND_CONTROL, KIND_QUOTE, Instrument, InstrumentTable, empty_events
from tickguard.engine.backtest import run
from tickguard.engine.records import OE_SUBMIT
from tickguard.strategies.microprice import microprice

INST = InstrumentTable([Instrument(0, "X", tick_size=0.01, lot_size=1)])


def test_microprice_sends_nothing_during_a_halt():
    # a strong bid imbalance on every quote (900 x 100): the strategy wants to be long. Halt from
    # t = 5500 to 15_500; the first order goes out at t = 1000 and, after the first position is
    # held, nothing is sent between the halt rows.
    n = 30
    ev = empty_events(n + 2)
    t = np.concatenate([1000 * np.arange(1, n + 1), [5500, 15_500]])
    order = np.argsort(t, kind="stable")
    ev["ts_exch"] = ev["ts_local"] = t[order]
    kinds = np.array([KIND_QUOTE] * n + [KIND_CONTROL, KIND_CONTROL])[order]
    ev["kind"] = kinds
    ev["side"] = np.array([0] * n + [-1, 1])[order]
    q = kinds == KIND_QUOTE
    ev["bid_px"][q], ev["ask_px"][q] = 99.99, 100.00
    ev["bid_sz"][q], ev["ask_sz"][q] = 900.0, 100.0
    r = run(ev, microprice(threshold=0.1, size=5, hold_events=1), instruments=INST)
    sub = r.order_events[r.order_events["event"] == OE_SUBMIT]
    assert len(sub) >= 1 and sub["ts"][0] == 1000
    assert not ((sub["ts"] >= 5500) & (sub["ts"] < 15_500)).any()
    assert (r.fills["ts"] < 5500).all() or (r.fills["ts"] >= 15_500).all()
