"""Seeded synthetic market data: realistic enough to exercise fills, signals and risk checks.

Why: tests, examples and benchmarks need tick data of any length that anyone can regenerate
byte for byte, without licensing questions. The model (see :mod:`tickguard.data.synth_kernels`):
Hawkes-clustered quote and trade arrivals, a stochastic-volatility log-price with jumps, Markov
spread regimes, lognormal displayed sizes, Pareto-tailed trade sizes printing at the touch, and
optional L2 depth emitted as ``KIND_DEPTH`` price-level updates consistent with the L1 quote.

Guarantees:

* every quote/trade/depth price lies on the tick grid and every size on the lot grid (prices are
  ``ticks / round(1/tick)`` when ``1/tick`` is an integer, the nearest double to the decimal);
  ``bid < ask`` always (``ask - bid`` is the spread in ticks, >= 1);
* ``ts_local = max(ts_exch + latency + jitter, previous ts_local of the instrument)`` with jitter
  >= 0: the feed is a FIFO per instrument, so ``ts_local >= ts_exch`` and it never decreases within
  an instrument; instruments are merged by ``(ts_local, instrument id)`` (stable), so it never
  decreases overall;
* same ``(n_events, seed, config)`` => identical events whatever ``chunk_rows``: each instrument
  has its own ``np.random.Generator`` (``SeedSequence(seed, spawn_key=(id,))``) advanced inside the
  kernel, whose state (and the generator) carries across chunks; the kernel stops only between
  events, and surplus rows of the last event are carried into the next chunk;
* each event is one batch of rows of one instrument sharing ``ts_exch`` and ``ts_local``
  (a trade, then depth updates, then the quote it leaves); its last row, always the quote,
  carries ``KIND_LAST_IN_BATCH``;
* exactly ``n_events`` rows; memory bounded by a few chunks, so files of 10**8 events stream.
  Simulated time is float64 seconds, so timestamps keep ns resolution for ~100 days of
  simulated time (~2.5e8 events at the default rates); ``ts_exch`` never decreases regardless.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from . import synth_kernels as K
from .parquet_io import DEFAULT_CHUNK_ROWS, ParquetEventWriter
from .schema import EVENT_DTYPE, Instrument, InstrumentTable

__all__ = [
    "DEFAULT_START_NS",
    "SECONDS_PER_YEAR",
    "SynthConfig",
    "iter_synthesize",
    "synth_instruments",
    "synthesize",
    "synthesize_to_parquet",
]

DEFAULT_START_NS = 1_704_205_800_000_000_000  #: 2024-01-02 14:30:00 UTC (US cash open)
SECONDS_PER_YEAR = 252 * 6.5 * 3600  #: trading seconds in a year (annualises volatility)


@dataclass(frozen=True)
class SynthConfig:
    """Parameters of the synthetic market; defaults resemble a liquid US stock near $100.

    Rates are per second of calendar time; sizes are in lots unless named otherwise. With the
    defaults the stationary rates are about 22 quote updates and 3.5 trades per second
    (:meth:`mean_rates`), i.e. ~29 rows per second of L1 data.
    """

    n_instruments: int = 1  #: instruments SYN0..SYN{n-1}, independent seeds, same parameters
    start_ns: int = DEFAULT_START_NS  #: exchange time of the first event [ns since epoch, UTC]
    price: float = 100.0  #: initial price
    tick_size: float = 0.01  #: price grid
    lot_size: float = 1.0  #: size grid (units per lot)
    volatility: float = 0.25  #: median annualised volatility of the log-price
    vol_of_logvol: float = 0.5  #: stationary std-dev of log-volatility (0 = constant volatility)
    logvol_halflife_s: float = 300.0  #: half-life of log-volatility shocks [s]
    jump_rate_per_hour: float = 2.0  #: compound-Poisson jump intensity (0 = no jumps)
    jump_scale: float = 0.002  #: jump size scale in log-price (Laplace scale or normal std-dev)
    jump_dist: str = "laplace"  #: "laplace" or "normal"
    spread_ticks: tuple[int, ...] = (1, 2, 5)  #: spread regimes [ticks]; starts in the first
    #: regime switching rates [from][to] per second (diagonal ignored)
    spread_rates: tuple[tuple[float, ...], ...] = (
        (0.0, 0.02, 0.002),
        (0.1, 0.0, 0.005),
        (0.05, 0.2, 0.0),
    )
    quote_rate: float = 10.0  #: Hawkes baseline intensity of quote updates
    trade_rate: float = 1.0  #: Hawkes baseline intensity of trades
    #: branching ratios [target][source], 0 = quote, 1 = trade: expected children per event
    branching: tuple[tuple[float, float], tuple[float, float]] = ((0.5, 0.3), (0.05, 0.4))
    decay: tuple[float, float] = (4.0, 4.0)  #: kernel decay rate per source (quote, trade) [1/s]
    touch_size_median: float = 300.0  #: median displayed size per level [lots] (lognormal)
    touch_size_sigma: float = 0.8  #: lognormal sigma of displayed sizes
    trade_size_scale: float = 20.0  #: trade size = 1 + floor(scale * Lomax(tail)) lots
    trade_size_tail: float = 1.8  #: Pareto tail index of trade sizes (smaller = heavier)
    trade_size_max: float = 100_000.0  #: cap on one trade [lots]
    imbalance_sensitivity: float = 2.0  #: P(buy) = logistic(k * (bid_sz - ask_sz) / (bid_sz + ask_sz))
    impact_bps: float = 0.1  #: permanent impact of a trade of `trade_size_scale` lots [bp]
    latency_ns: int = 50_000  #: constant feed latency ts_local - ts_exch [ns]
    latency_jitter_ns: float = 5_000.0  #: mean of the exponential (>= 0) latency jitter [ns]
    depth_levels: int = 0  #: L2 levels per side emitted as KIND_DEPTH rows (0 = L1 only)
    depth_refresh_prob: float = 0.5  #: chance per quote update that one deeper level per side changes

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"SynthConfig.{name}: {why}, got {getattr(self, name)!r}")

        object.__setattr__(self, "spread_ticks", tuple(int(s) for s in self.spread_ticks))
        object.__setattr__(self, "spread_rates", tuple(tuple(float(x) for x in r) for r in self.spread_rates))
        object.__setattr__(self, "branching", tuple(tuple(float(x) for x in r) for r in self.branching))
        object.__setattr__(self, "decay", tuple(float(x) for x in self.decay))
        for name in ("n_instruments", "start_ns", "latency_ns", "depth_levels"):
            if not isinstance(getattr(self, name), (int, np.integer)):
                raise bad(name, "must be an int")
        if not 1 <= self.n_instruments < 2**31:
            raise bad("n_instruments", "must be >= 1")
        if not 0 <= self.start_ns < 2**62:
            raise bad("start_ns", "must be ns since the epoch, >= 0")
        for name in ("price", "tick_size", "lot_size", "quote_rate", "touch_size_median",
                     "trade_size_scale", "trade_size_tail", "logvol_halflife_s"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v > 0):
                raise bad(name, "must be finite and > 0")
        for name in ("volatility", "vol_of_logvol", "jump_rate_per_hour", "jump_scale", "trade_rate",
                     "imbalance_sensitivity", "impact_bps", "latency_jitter_ns"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v >= 0):
                raise bad(name, "must be finite and >= 0")
        if self.price / self.tick_size < 10 * max(1, self.depth_levels):
            raise bad("price", "must be at least 10 ticks per depth level above zero")
        if self.jump_dist not in ("laplace", "normal"):
            raise bad("jump_dist", 'must be "laplace" or "normal"')
        if not 0 < self.touch_size_sigma <= 5:
            raise bad("touch_size_sigma", "must be in (0, 5]")
        if not self.trade_size_max >= 1:
            raise bad("trade_size_max", "must be >= 1 lot")
        if self.latency_ns < 0:
            raise bad("latency_ns", "must be >= 0")
        if not 0 <= self.depth_levels <= 255:
            raise bad("depth_levels", "must be in [0, 255] (the level field is uint8)")
        if not 0 <= self.depth_refresh_prob <= 1:
            raise bad("depth_refresh_prob", "must be a probability")
        s = len(self.spread_ticks)
        if s == 0 or min(self.spread_ticks) < 1:
            raise bad("spread_ticks", "needs at least one spread, each >= 1 tick")
        if len(self.spread_rates) != s or any(len(r) != s for r in self.spread_rates):
            raise bad("spread_rates", f"must be a {s}x{s} matrix (one row/column per spread)")
        if any(not (math.isfinite(x) and x >= 0) for r in self.spread_rates for x in r):
            raise bad("spread_rates", "rates must be finite and >= 0")
        n = np.array(self.branching, dtype=float)
        if n.shape != (2, 2) or (n < 0).any() or not np.isfinite(n).all():
            raise bad("branching", "must be a 2x2 matrix of finite values >= 0")
        if max(abs(np.linalg.eigvals(n))) >= 1:
            raise bad("branching", "spectral radius must be < 1 (else the Hawkes process explodes)")
        if len(self.decay) != 2 or min(self.decay) <= 0:
            raise bad("decay", "must be two rates > 0")

    @property
    def max_rows_per_event(self) -> int:
        """A trade, 2 * levels deletions, 2 * levels level updates and a quote."""
        return 4 * self.depth_levels + 2

    def mean_rates(self) -> tuple[float, float]:
        """Stationary (quote, trade) event rates per second: ``(I - branching)^-1 @ baseline``."""
        lam = np.linalg.solve(np.eye(2) - np.array(self.branching), [self.quote_rate, self.trade_rate])
        return float(lam[0]), float(lam[1])


def synth_instruments(config: SynthConfig | None = None) -> InstrumentTable:
    """The instrument table of a synthetic run: ids 0.., symbols ``SYN0``, ``SYN1``, ..."""
    cfg = config or SynthConfig()
    return InstrumentTable(
        Instrument(i, f"SYN{i}", cfg.tick_size, cfg.lot_size, 1.0, "USD") for i in range(cfg.n_instruments)
    )


def _inverse_grid(step: float) -> float:
    """``1/step`` when it is an integer (then ``n / inv`` is the correctly rounded decimal), else 0."""
    inv = 1.0 / step
    k = round(inv)
    return float(k) if k >= 1 and abs(inv - k) <= 1e-9 * k else 0.0


class _Stream:
    """One instrument's generator, RNG and kernel state; ``generate`` continues where it stopped."""

    def __init__(self, cfg: SynthConfig, inst: int, seed: int, kernel: Callable) -> None:
        self.rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(inst,))))
        self.kernel = kernel
        pf = np.zeros(K.N_PF)
        pf[K.PF_TICK], pf[K.PF_INV_TICK] = cfg.tick_size, _inverse_grid(cfg.tick_size)
        pf[K.PF_LOT], pf[K.PF_INV_LOT] = cfg.lot_size, _inverse_grid(cfg.lot_size)
        pf[K.PF_LOGP0] = math.log(cfg.price)
        pf[K.PF_SIGMA] = cfg.volatility / math.sqrt(SECONDS_PER_YEAR)
        pf[K.PF_LOGVOL_SD] = cfg.vol_of_logvol
        pf[K.PF_LOGVOL_KAPPA] = math.log(2.0) / cfg.logvol_halflife_s
        pf[K.PF_JUMP_RATE] = cfg.jump_rate_per_hour / 3600.0
        pf[K.PF_JUMP_SCALE] = cfg.jump_scale
        pf[K.PF_JUMP_LAPLACE] = 1.0 if cfg.jump_dist == "laplace" else 0.0
        (n_qq, n_qt), (n_tq, n_tt) = cfg.branching
        b_q, b_t = cfg.decay
        pf[K.PF_MU_Q], pf[K.PF_MU_T] = cfg.quote_rate, cfg.trade_rate
        pf[K.PF_A_QQ], pf[K.PF_A_QT], pf[K.PF_A_TQ], pf[K.PF_A_TT] = n_qq * b_q, n_qt * b_t, n_tq * b_q, n_tt * b_t
        pf[K.PF_BETA_Q], pf[K.PF_BETA_T] = b_q, b_t
        pf[K.PF_SIZE_LOGMED], pf[K.PF_SIZE_SIGMA] = math.log(cfg.touch_size_median), cfg.touch_size_sigma
        pf[K.PF_TRADE_SCALE], pf[K.PF_TRADE_TAIL] = cfg.trade_size_scale, cfg.trade_size_tail
        pf[K.PF_TRADE_MAX] = math.floor(cfg.trade_size_max)
        pf[K.PF_IMB_SENS], pf[K.PF_IMPACT] = cfg.imbalance_sensitivity, cfg.impact_bps * 1e-4
        pf[K.PF_JITTER_NS], pf[K.PF_DEPTH_REFRESH] = cfg.latency_jitter_ns, cfg.depth_refresh_prob
        self.pf = pf
        self.pi = np.array([cfg.start_ns, cfg.latency_ns, inst], dtype=np.int64)
        self.spread_ticks = np.array(cfg.spread_ticks, dtype=np.int64)
        rates = np.array(cfg.spread_rates, dtype=np.float64)
        np.fill_diagonal(rates, 0.0)
        self.spread_rates = rates
        self.sf = np.zeros(K.N_SF)
        self.si = np.zeros(K.N_SI, dtype=np.int64)
        self.book = np.zeros((2, cfg.depth_levels), dtype=np.int64)
        self.old = np.zeros_like(self.book)
        self.slack = cfg.max_rows_per_event

    @property
    def last_local(self) -> int:
        """ts_local of the last event generated; every later event has ts_local >= this."""
        return int(self.si[K.SI_LAST_LOCAL]) if self.si[K.SI_INIT] else -1

    def generate(self, n_new: int, head: np.ndarray | None = None) -> np.ndarray:
        """``head`` followed by at least ``n_new`` new rows (whole events)."""
        h = 0 if head is None else len(head)
        buf = np.empty(h + n_new + self.slack, dtype=EVENT_DTYPE)
        if h:
            buf[:h] = head
        end = self.kernel(buf, h, h + n_new, self.pf, self.pi, self.spread_ticks, self.spread_rates,
                          self.sf, self.si, self.book, self.old, self.rng)
        return buf[:end]


def _check_args(n_events: int, seed: int, chunk_rows: int) -> None:
    if not isinstance(n_events, (int, np.integer)) or n_events < 0:
        raise ValueError(f"n_events must be an int >= 0, got {n_events!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    if not isinstance(chunk_rows, (int, np.integer)) or chunk_rows <= 0:
        raise ValueError(f"chunk_rows must be an int > 0, got {chunk_rows!r}")


def _iter_events(n_events: int, seed: int, cfg: SynthConfig, chunk_rows: int,
                 kernel: Callable) -> Iterator[np.ndarray]:
    streams = [_Stream(cfg, i, int(seed), kernel) for i in range(cfg.n_instruments)]
    k = len(streams)
    pending = [np.empty(0, dtype=EVENT_DTYPE) for _ in streams]
    done = 0
    while done < n_events:
        c = min(chunk_rows, n_events - done)
        if k == 1:  # one stream: already in order; keep the surplus of the last event
            p = pending[0]
            if len(p) < c:
                p = streams[0].generate(c - len(p), p)
            out, pending[0] = p[:c], p[c:].copy()
        else:
            # Rows with ts_local < frontier (the laggard's last ts_local) can no longer be preceded
            # by any future row, so their merged order is final. Grow the laggard until enough.
            block = max(1024, c // k)
            while True:
                lasts = [s.last_local for s in streams]
                frontier = min(lasts)
                safe = [int(np.searchsorted(p["ts_local"], frontier, "left")) for p in pending]
                if sum(safe) >= c:
                    break
                i = lasts.index(frontier)
                pending[i] = streams[i].generate(block, pending[i])
            cat = np.concatenate([p[:m] for p, m in zip(pending, safe)])  # runs in id order
            out = cat[np.argsort(cat["ts_local"], kind="stable")[:c]]  # ties: lower id first
            used = np.bincount(out["instrument"], minlength=k)
            pending = [p[u:] for p, u in zip(pending, used)]
        done += c
        yield out


def iter_synthesize(n_events: int, *, seed: int, config: SynthConfig | None = None,
                    chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[np.ndarray]:
    """Yield exactly ``n_events`` synthetic events in chunks of ``chunk_rows`` (the last may be
    shorter), ordered by ``ts_local``; the concatenation does not depend on ``chunk_rows``."""
    _check_args(n_events, seed, chunk_rows)
    return _iter_events(int(n_events), int(seed), config or SynthConfig(), int(chunk_rows), K.simulate_nb)


def synthesize(n_events: int, *, seed: int,
               config: SynthConfig | None = None) -> tuple[np.ndarray, InstrumentTable]:
    """``n_events`` synthetic events in memory, with their instrument table."""
    cfg = config or SynthConfig()
    chunks = list(iter_synthesize(n_events, seed=seed, config=cfg, chunk_rows=max(int(n_events), 1)))
    events = np.concatenate(chunks) if chunks else np.empty(0, dtype=EVENT_DTYPE)
    return events, synth_instruments(cfg)


def synthesize_to_parquet(path: str | os.PathLike[str], n_events: int, *, seed: int,
                          config: SynthConfig | None = None,
                          chunk_rows: int = DEFAULT_CHUNK_ROWS,
                          progress: Callable[[int], None] | None = None) -> Path:
    """Stream ``n_events`` synthetic events into a canonical Parquet file (one row group per
    chunk, memory bounded by ``chunk_rows``); the file appears only when complete.
    ``progress(events_written)`` is called after each chunk."""
    cfg = config or SynthConfig()
    chunks = iter_synthesize(n_events, seed=seed, config=cfg, chunk_rows=chunk_rows)  # checks args
    done = 0
    with ParquetEventWriter(path, synth_instruments(cfg), row_group_rows=chunk_rows) as writer:
        for chunk in chunks:
            writer.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done)
    return Path(path)

