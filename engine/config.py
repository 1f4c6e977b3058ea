"""Engine configuration: frozen dataclasses, turned into the plain arrays the kernel reads."""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from .layout import (
    K_IMPACT_TICKS, K_MAKER_BPS, K_MAKER_PER_UNIT, K_MARK, K_MAX_BURST, K_NF, K_QUEUE_MODEL,
    K_QUEUE_POWER, K_SAMPLE_DT, K_SAMPLE_EVERY, K_SEED, K_TAKER_BPS, K_TAKER_PER_UNIT, L_NF,
    LAT_CONSTANT, LAT_LOGNORMAL, LAT_TRACE,
)

__all__ = ["EngineConfig", "FeeConfig", "Latency", "LatencyConfig"]

_LAT_MODES = {"constant": LAT_CONSTANT, "lognormal": LAT_LOGNORMAL, "trace": LAT_TRACE}


def _check(cond: bool, name: str, value: object, fix: str) -> None:
    if not cond:
        raise ValueError(f"{name}: got {value!r}; {fix}")


@dataclass(frozen=True)
class Latency:
    """One action's latency: ``entry_ns`` to reach the exchange, ``response_ns`` to come back.

    ``mode="lognormal"`` draws each latency as median x exp(sigma x Z), seeded by the engine seed;
    ``mode="trace"`` replays :attr:`LatencyConfig.trace` (the medians are then ignored).
    """

    entry_ns: float = 0.0
    response_ns: float = 0.0
    mode: Literal["constant", "lognormal", "trace"] = "constant"
    entry_sigma: float = 0.0
    response_sigma: float = 0.0

    def __post_init__(self) -> None:
        _check(self.mode in _LAT_MODES, "Latency.mode", self.mode, f"use one of {sorted(_LAT_MODES)}")
        for name in ("entry_ns", "response_ns", "entry_sigma", "response_sigma"):
            v = getattr(self, name)
            _check(math.isfinite(v) and v >= 0, f"Latency.{name}", v, "use a finite value >= 0")


@dataclass(frozen=True)
class LatencyConfig:
    """Latency per action. ``cancel`` and ``modify`` default to ``submit``'s.

    ``trace``: optional (timestamps int64[T], latencies float64[T, 6]) with columns
    entry submit/cancel/modify, response submit/cancel/modify, used by actions in trace mode.
    """

    submit: Latency = field(default_factory=Latency)
    cancel: Latency | None = None
    modify: Latency | None = None
    trace: tuple[np.ndarray, np.ndarray] | None = None

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lat = np.zeros((3, L_NF))
        for row, item in enumerate((self.submit, self.cancel or self.submit, self.modify or self.submit)):
            mode = _LAT_MODES[item.mode]
            lat[row] = (mode, item.entry_ns, item.entry_sigma, mode, item.response_ns, item.response_sigma)
        if self.trace is None:
            if (lat[:, 0] == LAT_TRACE).any():
                raise ValueError("LatencyConfig: an action uses mode='trace' but no trace= was given")
            return lat, np.zeros(1, dtype=np.int64), np.zeros((1, 6))
        # fresh C-contiguous writable copies: the latency kernel is compiled for exactly that type
        ts = np.array(self.trace[0], dtype=np.int64, order="C", copy=True)
        values = np.array(self.trace[1], dtype=np.float64, order="C", copy=True)
        _check(ts.ndim == 1 and len(ts) > 0 and bool(np.all(np.diff(ts) >= 0)), "LatencyConfig.trace[0]",
               ts[:5], "timestamps must be a non-empty, sorted int64 ns array")
        _check(values.shape == (len(ts), 6) and bool(np.all(values >= 0)), "LatencyConfig.trace[1]",
               values.shape, "latencies must be float ns >= 0 of shape (len(timestamps), 6)")
        return lat, ts, values


@dataclass(frozen=True)
class FeeConfig:
    """Fees per fill: notional x bps / 1e4 + units x per_unit. Negative values are rebates."""

    maker_bps: float = 0.0
    taker_bps: float = 0.0
    maker_per_unit: float = 0.0
    taker_per_unit: float = 0.0

    def __post_init__(self) -> None:
        for name in ("maker_bps", "taker_bps", "maker_per_unit", "taker_per_unit"):
            v = getattr(self, name)
            _check(math.isfinite(v), f"FeeConfig.{name}", v, "use a finite number (negative = rebate)")


_QUEUE = {"conservative": 0.0, "probabilistic": 1.0}
_MARK = {"mid": 0.0, "last": 1.0, "side": 2.0}


@dataclass(frozen=True)
class EngineConfig:
    """Everything about a run except the data and the strategy.

    - ``impact_ticks``: on L1 data, size beyond the displayed touch fills this many ticks worse than
      the touch; a negative value means no such fill (market/IOC remainders expire).
    - ``queue_model``: "conservative" (only trades advance our queue position) or "probabilistic"
      (a share f(ahead)/(f(ahead)+f(behind)) of each unexplained size decrease at our level is
      removed from ahead of us, f(x) = x**queue_power).
    - ``mark``: positions marked at "mid", "last" trade or "side" (bid for longs, ask for shorts).
    - ``sample_every`` events and/or ``sample_dt_ns`` of local time: the equity clock, sampling
      after every ``sample_every``-th event and at the first event at or after each multiple of
      ``sample_dt_ns`` (exact integer ns, epoch times included), either resetting the event
      count; a final sample is always taken at the last event.
    - ``book_levels``: price levels per side of the exchange's L2 book, rebuilt from depth rows
      (0 ignores depth rows). With depth, marketable orders walk the book level by level (no
      ``impact_ticks``: what is not displayed within the limit does not fill) and resting orders
      see the size ahead at their price even behind the touch.
    - ``max_requests_per_instant``: the runaway guard. A strategy that answers each response with
      a new request where nothing moves time on (no latency at all: say, a post-only order resent
      at a price the exchange keeps rejecting) would hold the run at one instant forever; more
      requests than this at one local time stop it with a :class:`StrategyError` naming the
      time. Market events sharing a timestamp count together. A run that finishes does not
      depend on it (it is left out of the result hash).
    """

    initial_cash: float = 1_000_000.0
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    fees: FeeConfig = field(default_factory=FeeConfig)
    impact_ticks: float = 1.0
    queue_model: Literal["conservative", "probabilistic"] = "conservative"
    queue_power: float = 2.0
    mark: Literal["mid", "last", "side"] = "mid"
    sample_every: int = 0
    sample_dt_ns: int = 1_000_000_000
    seed: int = 0
    chunk_rows: int = 1 << 18  # ~18 MiB of events: peak memory ~4x lower than 1 << 20, same speed
    book_levels: int = 20
    max_requests_per_instant: int = 100_000

    def __post_init__(self) -> None:
        _check(math.isfinite(self.initial_cash), "EngineConfig.initial_cash", self.initial_cash,
               "use a finite amount")
        _check(math.isfinite(self.impact_ticks), "EngineConfig.impact_ticks", self.impact_ticks,
               "use a finite number of ticks (negative: no fill beyond the touch)")
        _check(self.queue_model in _QUEUE, "EngineConfig.queue_model", self.queue_model,
               f"use one of {sorted(_QUEUE)}")
        _check(self.mark in _MARK, "EngineConfig.mark", self.mark, f"use one of {sorted(_MARK)}")
        _check(self.queue_power > 0, "EngineConfig.queue_power", self.queue_power, "use a value > 0")
        _check(self.sample_every >= 0 and self.sample_dt_ns >= 0, "EngineConfig.sample_every/sample_dt_ns",
               (self.sample_every, self.sample_dt_ns), "use values >= 0 (0 turns that clock off)")
        _check(0 <= self.seed < 2**53, "EngineConfig.seed", self.seed, "use an int in [0, 2**53)")
        _check(self.chunk_rows > 0, "EngineConfig.chunk_rows", self.chunk_rows, "use a value > 0")
        _check(isinstance(self.book_levels, int) and 0 <= self.book_levels <= 1000,
               "EngineConfig.book_levels", self.book_levels, "use an int in [0, 1000] (0: L1 only)")
        _check(isinstance(self.max_requests_per_instant, int) and self.max_requests_per_instant > 0,
               "EngineConfig.max_requests_per_instant", self.max_requests_per_instant,
               "use an int > 0")

    def cfg_array(self) -> np.ndarray:
        cfg = np.zeros(K_NF)
        cfg[K_MAKER_BPS] = self.fees.maker_bps
        cfg[K_TAKER_BPS] = self.fees.taker_bps
        cfg[K_MAKER_PER_UNIT] = self.fees.maker_per_unit
        cfg[K_TAKER_PER_UNIT] = self.fees.taker_per_unit
        cfg[K_IMPACT_TICKS] = self.impact_ticks
        cfg[K_QUEUE_MODEL] = _QUEUE[self.queue_model]
        cfg[K_QUEUE_POWER] = self.queue_power
        cfg[K_MARK] = _MARK[self.mark]
        cfg[K_SAMPLE_EVERY] = self.sample_every
        cfg[K_SAMPLE_DT] = self.sample_dt_ns
        cfg[K_SEED] = self.seed
        cfg[K_MAX_BURST] = self.max_requests_per_instant
        return cfg

    def describe(self) -> dict:
        """JSON-able echo of the config (for summaries and the result hash)."""
        d = asdict(self)
        trace = self.latency.trace
        d["latency"]["trace"] = None if trace is None else {
            "points": int(len(trace[0])),
            "sha256": hashlib.sha256(
                np.ascontiguousarray(trace[0]).tobytes() + np.ascontiguousarray(trace[1]).tobytes()
            ).hexdigest(),
        }
        return d
