"""The benchmark suite's workloads: seeded event streams anyone can regenerate byte for byte.

Every workload is a function of ``(n_events, seed)`` only (default seed :data:`SEED`), produced in
chunks whose concatenation does not depend on the chunk size, so the same events can be held in
memory or streamed from a Parquet file written once into a cache folder.

========================  ============================================================  ======
name                      events                                                        book
========================  ============================================================  ======
``l1_quotes``             L1 quotes only, one instrument (:func:`iter_l1_quotes`)        0
``l1_trades``             L1 quotes + trades, one instrument (``SynthConfig()``)        0
``l2_depth5``             quotes, trades and L2 depth rows, 5 levels per side           5
``l2_depth20``            the same with 20 levels per side                              20
``l1_trades_x10``         ``l1_trades`` model, 10 instruments merged by ``ts_local``    0
``l1_trades_x100``        ``l1_trades`` model, 100 instruments merged by ``ts_local``   0
========================  ============================================================  ======

"book" is the :class:`~tickguard.engine.config.EngineConfig` ``book_levels`` the engine runs
with (0: L1 only). The one-instrument case of the 1 / 10 / 100 instruments series is
``l1_trades``. All but ``l1_quotes`` come from :mod:`tickguard.data.synth` (Hawkes arrivals,
stochastic volatility, spread regimes; tick 0.01, lot 1; ``SynthConfig(depth_levels=...)`` and
``SynthConfig(n_instruments=...)``); their kinds are ``trade``, ``depth`` (L2 only) and
``quote|last_in_batch``.

``l1_quotes`` is the engine issue's canonical workload (the model of
:func:`tickguard.benchmarks.engine.quote_workload`), made chunk-invariant: one instrument, every
row a quote (``KIND_QUOTE | KIND_LAST_IN_BATCH``); exchange times 1-1000 us apart (uniform
integer ns), ``ts_local = ts_exch + 50 us``; the bid a random walk on the 0.01 grid starting at
1000.00 (steps -1, 0, +1 tick, equally likely; the start is high enough that 10**8 steps, a
standard deviation of ~8 200 ticks, stay far above zero), the ask one tick above, 100 lots on
each side. It is the only workload the bare numba loop and the pure-Python loop can run (they read
every row as a quote), and the one the peers run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from tickguard.data.parquet_io import DEFAULT_CHUNK_ROWS, ParquetEventWriter, parquet_num_rows
from tickguard.data.schema import EVENT_DTYPE, KIND_LAST_IN_BATCH, KIND_QUOTE, Instrument, InstrumentTable
from tickguard.data.synth import DEFAULT_START_NS, SynthConfig, iter_synthesize, synth_instruments

__all__ = [
    "L1_QUOTES_START_TICKS",
    "SEED",
    "WORKLOADS",
    "Workload",
    "iter_events",
    "iter_l1_quotes",
    "l1_quotes",
    "make_events",
    "parquet_for",
]

SEED = 20240102  #: default seed of every workload
L1_QUOTES_START_TICKS = 100_000  #: first bid of ``l1_quotes`` in ticks of 0.01 (1000.00)
_TICKS_PER_UNIT = 100  # 0.01 grid: price = ticks / 100 is the correctly rounded decimal


@dataclass(frozen=True)
class Workload:
    """One named event stream: its synthetic model (None: :func:`iter_l1_quotes`), the engine's
    ``book_levels`` for it and the kinds of rows it holds (names of ``kind_to_str``)."""

    name: str
    description: str
    synth: SynthConfig | None
    book_levels: int
    kinds: tuple[str, ...]

    @property
    def n_instruments(self) -> int:
        return 1 if self.synth is None else self.synth.n_instruments

    def instruments(self) -> InstrumentTable:
        """The instrument table (ids 0.., tick 0.01, lot 1)."""
        if self.synth is None:
            return InstrumentTable([Instrument(0, "SYN0", tick_size=0.01, lot_size=1.0)])
        return synth_instruments(self.synth)


_L1 = ("quote|last_in_batch", "trade")
WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("l1_quotes", "L1 quotes only, 1 instrument", None, 0, ("quote|last_in_batch",)),
    Workload("l1_trades", "L1 quotes + trades, 1 instrument", SynthConfig(), 0, _L1),
    Workload("l2_depth5", "L2 depth, 5 levels", SynthConfig(depth_levels=5), 5, (*_L1, "depth")),
    Workload("l2_depth20", "L2 depth, 20 levels", SynthConfig(depth_levels=20), 20, (*_L1, "depth")),
    Workload("l1_trades_x10", "L1 quotes + trades, 10 instruments merged", SynthConfig(n_instruments=10), 0, _L1),
    Workload("l1_trades_x100", "L1 quotes + trades, 100 instruments merged", SynthConfig(n_instruments=100), 0,
             _L1),
)}


def _check_n(n_events: object, seed: object, chunk_rows: object) -> None:
    for name, value, low in (("n_events", n_events, 0), ("seed", seed, 0), ("chunk_rows", chunk_rows, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r} ({type(value).__name__})")


def iter_l1_quotes(n_events: int, *, seed: int = SEED,
                   chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[np.ndarray]:
    """Yield the ``l1_quotes`` workload (see the module docstring) in chunks of ``chunk_rows``.

    Chunk-invariant: the gaps and the steps come from two generators drawing only doubles
    (``Generator.random`` keeps no buffer between calls), and integer tick/ns sums carry across
    chunks exactly.
    """
    _check_n(n_events, seed, chunk_rows)
    gaps = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(0,)))
    steps = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(1,)))
    ts, bid = DEFAULT_START_NS, L1_QUOTES_START_TICKS
    done = 0
    while done < n_events:
        c = min(int(chunk_rows), int(n_events) - done)
        # first gap 0 (the first event at the start time), then 1 000..1 000 000 ns, uniform
        gap = 1_000 + (gaps.random(c) * 999_001).astype(np.int64)
        step = (steps.random(c) * 3).astype(np.int64) - 1
        if done == 0:
            gap[0], step[0] = 0, 0
        t = ts + np.cumsum(gap)
        b = bid + np.cumsum(step)
        ev = np.zeros(c, dtype=EVENT_DTYPE)
        ev["ts_exch"] = t
        ev["ts_local"] = t + 50_000
        ev["kind"] = KIND_QUOTE | KIND_LAST_IN_BATCH
        ev["price"] = np.nan
        ev["size"] = np.nan
        ev["bid_px"] = b / _TICKS_PER_UNIT
        ev["ask_px"] = (b + 1) / _TICKS_PER_UNIT
        ev["bid_sz"] = 100.0
        ev["ask_sz"] = 100.0
        ts, bid = int(t[-1]), int(b[-1])
        done += c
        yield ev


def l1_quotes(n_events: int, seed: int = SEED) -> np.ndarray:
    """The ``l1_quotes`` workload in memory."""
    chunks = list(iter_l1_quotes(n_events, seed=seed, chunk_rows=max(int(n_events), 1)))
    return chunks[0] if chunks else np.zeros(0, dtype=EVENT_DTYPE)


def _workload(name: str | Workload) -> Workload:
    if isinstance(name, Workload):
        return name
    try:
        return WORKLOADS[name]
    except KeyError:
        raise ValueError(f"unknown workload {name!r}; use one of {sorted(WORKLOADS)}") from None


def iter_events(workload: str | Workload, n_events: int, *, seed: int = SEED,
                chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[np.ndarray]:
    """Yield ``n_events`` rows of ``workload`` in chunks (the concatenation does not depend on
    ``chunk_rows``)."""
    w = _workload(workload)
    if w.synth is None:
        return iter_l1_quotes(n_events, seed=seed, chunk_rows=chunk_rows)
    _check_n(n_events, seed, chunk_rows)
    return iter_synthesize(int(n_events), seed=int(seed), config=w.synth, chunk_rows=int(chunk_rows))


def make_events(workload: str | Workload, n_events: int, seed: int = SEED) -> tuple[np.ndarray, InstrumentTable]:
    """``n_events`` rows of ``workload`` in memory, with the instrument table."""
    w = _workload(workload)
    chunks = list(iter_events(w, n_events, seed=seed, chunk_rows=max(int(n_events), 1)))
    events = np.concatenate(chunks) if len(chunks) > 1 else (chunks[0] if chunks else np.zeros(0, EVENT_DTYPE))
    return events, w.instruments()


def parquet_for(workload: str | Workload, n_events: int, folder: str | os.PathLike[str], *,
                seed: int = SEED, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> tuple[Path, bool]:
    """The canonical Parquet file of ``workload`` in ``folder``, written once (streamed, one row
    group per ``chunk_rows``) and reused when a complete file with ``n_events`` rows is there.

    Returns ``(path, written_now)``. The writer renames the file into place only when complete,
    so an interrupted write is never mistaken for a cached one.
    """
    w = _workload(workload)
    _check_n(n_events, seed, chunk_rows)
    path = Path(folder) / f"{w.name}-n{int(n_events)}-seed{int(seed)}-rg{int(chunk_rows)}.parquet"
    if path.exists() and parquet_num_rows(path) == n_events:
        return path, False
    path.parent.mkdir(parents=True, exist_ok=True)
    with ParquetEventWriter(path, w.instruments(), row_group_rows=chunk_rows) as writer:
        for chunk in iter_events(w, n_events, seed=seed, chunk_rows=chunk_rows):
            writer.write(chunk)
    return path, True
