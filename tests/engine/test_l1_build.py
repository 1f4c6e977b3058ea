"""The loop's two builds (engine/codegen.py): without the L2 book's upkeep while the data has
brought no book row, with it from the first chunk that brings one, never with ``book_levels`` 0.

Oracle: the book build run from the first row (forced by asking codegen for it whatever the data
holds), which keeps an empty book until a book row comes; the two must give the same records
and result hash, on the real AMZN sample, whose orderbook file gives depth rows too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tickguard.data.lobster import read_lobster
from tickguard.data.schema import KIND_DEPTH, KIND_SNAPSHOT
from tickguard.engine import backtest
from tickguard.engine.config import EngineConfig, Latency, LatencyConfig
from tickguard.strategies.market_maker import market_maker

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lobster"
MESSAGES = DATA / "AMZN_2012-06-21_34200000_57600000_message_1.csv"
BOOK = DATA / "AMZN_2012-06-21_34200000_57600000_orderbook_1.csv"
LAT = Latency(entry_ns=20_000, response_ns=20_000)
BOOK_ROW = int(KIND_DEPTH | KIND_SNAPSHOT)


@pytest.fixture(scope="module")
def amzn():
    if not (MESSAGES.exists() and BOOK.exists()):
        pytest.skip(f"LOBSTER sample not found in {DATA}")
    ev, inst, _ = read_lobster(MESSAGES, BOOK, depth=True)
    return ev[:12_000], inst


def _run(monkeypatch, ev, inst, force_book=False, **config):
    """(result, the builds asked for, in order): ``force_book`` asks for the book build always."""
    asked = []
    real = backtest.compile_loop

    def spy(strategy_fn, risk_module, l2, sections=False, code_copy=0):
        asked.append(l2)
        return real(strategy_fn, risk_module, l2=l2 or force_book, sections=sections, code_copy=code_copy)

    monkeypatch.setattr(backtest, "compile_loop", spy)
    mm = market_maker(0.01, gamma=0.01, k=100.0, order_size=1.0, max_inventory=3.0)
    res = backtest.run(ev, mm, instruments=inst,
                       config=EngineConfig(latency=LatencyConfig(submit=LAT), **config))
    return res, asked


def _same(a, b):
    assert len(a.fills) > 20  # the maker trades: the comparison has something to compare
    for name in ("order_events", "fills", "equity", "orders"):  # bytes: NaN fields included
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes(), name
    assert a.result_hash == b.result_hash


def test_l1_data_runs_the_build_without_the_book_and_agrees_with_the_book_build(monkeypatch, amzn):
    ev, inst = amzn
    l1 = ev[(ev["kind"] & BOOK_ROW) == 0]
    plain, asked = _run(monkeypatch, l1, inst)
    assert asked == [False]
    forced, _ = _run(monkeypatch, l1, inst, force_book=True)
    _same(plain, forced)


def test_book_rows_from_a_later_chunk_on_switch_to_the_book_build_for_good(monkeypatch, amzn):
    # the first 8 000 rows without their depth rows, the rest with them; chunks of 1 000 rows:
    # the first chunks run without the book, the first chunk with a book row and every one after
    # it with the book (the later chunks' rows are not all book rows: the switch must hold)
    ev, inst = amzn
    head = ev[:8_000]
    data = np.concatenate([head[(head["kind"] & BOOK_ROW) == 0], ev[8_000:]])
    first_book = int(np.flatnonzero(data["kind"] & BOOK_ROW)[0])
    chunked, asked = _run(monkeypatch, data, inst, chunk_rows=1_000)
    assert asked == [False, True]  # each build once
    whole, asked = _run(monkeypatch, data, inst)
    assert asked == [True]  # one chunk, with book rows: the book build from the start
    _same(chunked, whole)
    assert 2_000 <= first_book < len(data) - 2_000  # chunks without the book, then with it
    # the book was used: taking its rows away changes the run
    flat, _ = _run(monkeypatch, data[(data["kind"] & BOOK_ROW) == 0], inst)
    assert flat.result_hash != whole.result_hash


def test_book_levels_zero_never_builds_the_book(monkeypatch, amzn):
    ev, inst = amzn
    plain, asked = _run(monkeypatch, ev, inst, book_levels=0)
    assert asked == [False]
    forced, _ = _run(monkeypatch, ev, inst, force_book=True, book_levels=0)
    _same(plain, forced)
