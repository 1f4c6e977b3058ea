"""Streamed from a Parquet file (pyarrow decoding in a thread of its own, a reader thread packing,
checking and hashing each chunk, the loop running the one before), a backtest gives what the same
events give from memory, byte for byte and hash for hash, and a bad row is named by its row in
the file."""

from __future__ import annotations

import numpy as np
import pytest

from tickguard.data.parquet_io import write_parquet
from tickguard.data.schema import KIND_QUOTE, KIND_TRADE, Instrument, InstrumentTable, empty_events
from tickguard.engine.backtest import run
from tickguard.engine.config import EngineConfig, Latency, LatencyConfig
from tickguard.engine.records import OT_MARKET
from tickguard.engine.scripted import scripted, submit

INST = InstrumentTable([Instrument(0, "A", tick_size=0.01, lot_size=1)])
N = 19_383  # several chunks, the last one short
RECORDS = ("order_events", "fills", "equity", "risk_events", "orders")


def events(seed: int = 9) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ev = empty_events(N)
    ev["ts_exch"] = 1_000_000 + np.cumsum(rng.integers(1, 400, N))
    ev["ts_local"] = np.maximum.accumulate(ev["ts_exch"] + rng.integers(50, 900, N))
    tick = 10_000 + np.cumsum(rng.integers(-1, 2, N))
    trade = rng.random(N) < 0.2
    ev["kind"] = np.where(trade, KIND_TRADE, KIND_QUOTE)
    ev["side"] = np.where(trade, np.where(rng.random(N) < 0.5, 1, -1), 0)
    ev["price"] = np.where(trade, tick * 0.01, np.nan)
    ev["size"] = np.where(trade, 3.0, np.nan)
    ev["bid_px"] = np.where(trade, np.nan, tick * 0.01)
    ev["ask_px"] = np.where(trade, np.nan, (tick + 1) * 0.01)
    ev["bid_sz"] = ev["ask_sz"] = np.where(trade, np.nan, 4.0)
    return ev


def strategy():
    return scripted([submit(k, 1 if k % 3 else -1, 1.0, order_type=OT_MARKET)
                     for k in range(100, N, 977)])


def config(chunk_rows: int) -> EngineConfig:
    return EngineConfig(latency=LatencyConfig(submit=Latency(entry_ns=500, response_ns=700)),
                        sample_every=1000, chunk_rows=chunk_rows)


def assert_same_records(streamed, in_memory) -> None:
    """Every record array byte for byte, and the result hash."""
    for name in RECORDS:
        a, b = getattr(streamed, name), getattr(in_memory, name)
        assert a.shape == b.shape and a.tobytes() == b.tobytes(), name
    assert streamed.result_hash == in_memory.result_hash


# one chunk; three chunks, the last a single row (19 383 = 2 x 9 691 + 1); a dozen chunks
@pytest.mark.parametrize("chunk_rows", [1 << 20, 9_691, 1_500])
def test_a_parquet_file_gives_what_the_same_events_give_from_memory(tmp_path, chunk_rows):
    ev = events()
    path = write_parquet(tmp_path / "ev.parquet", ev, INST, row_group_rows=1 << 20)
    streamed = run(path, strategy(), instruments=INST, config=config(chunk_rows))
    in_memory = run(ev, strategy(), instruments=INST, config=config(chunk_rows))
    assert streamed.n_events == N and len(streamed.fills) > 10
    assert_same_records(streamed, in_memory)


@pytest.mark.parametrize("bad_row", [5, 9_691, N - 1])
def test_a_bad_instrument_in_any_block_is_named_by_its_row_in_the_file(tmp_path, bad_row):
    ev = events()
    ev["instrument"][bad_row] = 4
    path = write_parquet(tmp_path / "bad.parquet", ev, INST, row_group_rows=1 << 20)
    with pytest.raises(ValueError, match=rf"event row {bad_row}: field 'instrument' is 4"):
        run(path, strategy(), instruments=INST, config=config(9_691))


def carrying_events(n: int = 48_000, seed: int = 3) -> np.ndarray:
    """Quotes 50-150 ns apart that reach us 20 us after the exchange: with an order resting, the
    exchange's clock runs ~200 rows ahead of ours, so every chunk ends by handing rows back."""
    rng = np.random.default_rng(seed)
    ev = empty_events(n)
    ev["ts_exch"] = 1_000_000 + np.cumsum(rng.integers(50, 150, n))
    ev["ts_local"] = ev["ts_exch"] + 20_000
    tick = 10_000 + np.cumsum(rng.integers(-1, 2, n))
    ev["kind"] = KIND_QUOTE
    ev["bid_px"], ev["ask_px"] = tick * 0.01, (tick + 1) * 0.01
    ev["bid_sz"] = ev["ask_sz"] = 4.0
    return ev


@pytest.mark.parametrize("chunk_rows", [6_000, 1_500])  # above and below _BRIDGE_ROWS (4 096)
def test_a_chunk_goes_back_to_the_reader_only_once_nothing_reads_it(tmp_path, monkeypatch, chunk_rows):
    # the reader packs chunks into pooled arrays; one handed back is overwritten at once here
    # (times -1, prices and sizes NaN; the instrument stays a valid id, so a kernel reading it
    # fails the comparison, not the process), so a chunk given back while its left-over rows (the
    # carry) or the loop still read it would change the records
    import tickguard.engine.backtest as backtest
    from tickguard.engine.prefetch import BufferPool

    pools, joins = [], []

    class PoisoningPool(BufferPool):
        def __init__(self, dtype):
            super().__init__(dtype)
            self.made_here = []
            pools.append(self)

        def take(self, n):
            out = super().take(n)
            self.made_here.append(out.base)
            return out

        def give(self, chunk):
            base = chunk if chunk.base is None else chunk.base
            if any(base is m for m in self.made_here):  # (in-memory data: the caller's own)
                base["ts_exch"] = base["ts_local"] = -1
                for field in ("price", "size", "bid_px", "bid_sz", "ask_px", "ask_sz"):
                    base[field] = np.nan
                base["instrument"] = 0
            super().give(chunk)

    class CountingJoiner(backtest._Joiner):
        def __call__(self, head, tail):
            joins.append(len(head))
            return super().__call__(head, tail)

    monkeypatch.setattr(backtest, "BufferPool", PoisoningPool)
    monkeypatch.setattr(backtest, "_Joiner", CountingJoiner)
    ev = carrying_events()
    # a bid far below the touch rests all along; market orders fill now and then
    strat = scripted([submit(5, 1, 1.0, 50.0)]
                     + [submit(k, 1 if k % 2 else -1, 1.0, order_type=OT_MARKET) for k in range(700, 48_000, 2_300)])
    path = write_parquet(tmp_path / "ev.parquet", ev, INST, row_group_rows=1 << 20)
    # the equity clock samples every event: each row the strategy reads leaves a record
    cfg = EngineConfig(latency=LatencyConfig(submit=Latency(entry_ns=500, response_ns=700)),
                       sample_every=1, chunk_rows=chunk_rows)
    streamed = run(path, strat, instruments=INST, config=cfg)
    n_chunks = -(-len(ev) // chunk_rows)
    assert len(joins) >= n_chunks - 1 and min(joins) > 0  # rows handed back at every boundary
    in_memory = run(ev, strat, instruments=INST, config=cfg)
    assert streamed.n_events == len(ev) and len(streamed.fills) >= 20 and len(streamed.equity) >= len(ev)
    assert_same_records(streamed, in_memory)
    # the streamed run's chunks went through a handful of arrays, reused; none for the in-memory run
    assert len(pools) == 2 and 2 <= pools[0].made <= 6 < n_chunks and pools[1].made == 0
