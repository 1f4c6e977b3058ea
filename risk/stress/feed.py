"""Feed and market-state stress transforms: outages, stale quotes, trading halts, latency spikes.

Frozen dataclasses like :mod:`.transforms`; windows are on the local clock (``ts_local``),
``[start, end)``; ``instrument=None`` acts on every instrument. A zero-length window changes
nothing (identity at magnitude 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tickguard.data.schema import (
    EVENT_DTYPE, KIND_CONTROL, KIND_DEPTH, KIND_LAST_IN_BATCH, KIND_QUOTE, KIND_TRADE, KIND_TYPE_MASK,
)

from .core import Duration, StressContext, TimePoint, Transform, _bad, _check_scale, batch_keys, reflag
from .transforms import _instrument, _log_k, _number

__all__ = ["FeedOutage", "LatencySpike", "StaleFeed", "TradingHalt"]

_QUOTE_FIELDS = ("bid_px", "bid_sz", "ask_px", "ask_sz")


def _window_length(start: TimePoint, end: TimePoint, name: str) -> float:
    """Window length in the unit of its ends (ns or share of the session); needs one form."""
    start.toward(end, 1.0, name)  # raises when the forms differ
    sign = -1.0 if start.base == "end" else 1.0  # "-10min" counts back from the end
    return sign * (end.value - start.value)


def _move(events: np.ndarray, moved: np.ndarray, new_ts: int) -> np.ndarray:
    """``ts_local`` of the ``moved`` rows set to ``new_ts``, stably re-sorted (whole batches move:
    their rows share one ``ts_local``, so batch flags stay right)."""
    out = events.copy()
    out["ts_local"][moved] = new_ts
    return out[np.argsort(out["ts_local"], kind="stable")]


@dataclass(frozen=True)
class FeedOutage(Transform):
    """Nothing arrives for ``duration`` from ``start``; then the held events arrive in one burst.

    Rows with ``start <= ts_local < start + duration`` get ``ts_local = start + duration``, in their
    original order; ``ts_exch`` is unchanged, so the gap shows as feed latency. Magnitude: the
    duration (ns, or share of the session); ``scaled(s)`` scales it.
    """

    start: TimePoint | str | int
    duration: Duration | str | int
    instrument: int | None = None
    name = "feed_outage"

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", TimePoint.parse(self.start, "feed_outage.start"))
        object.__setattr__(self, "duration", Duration.parse(self.duration, "feed_outage.duration"))
        object.__setattr__(self, "instrument", _instrument("feed_outage.instrument", self.instrument))

    def apply(self, events: np.ndarray, ctx: StressContext) -> np.ndarray:
        a = ctx.at(self.start)
        b = a + ctx.span(self.duration)
        ts = events["ts_local"]
        held = (ts >= a) & (ts < b) & np.isin(events["instrument"], ctx.instruments(self.instrument))
        return _move(events, held, b) if held.any() else events.copy()

    @property
    def magnitude(self) -> float:
        return self.duration.value

    def scaled(self, s: float) -> "FeedOutage":
        return replace(self, duration=self.duration.scaled(_check_scale(s)))


@dataclass(frozen=True)
class StaleFeed(Transform):
    """Quotes frozen in ``[start, end)`` while trades go on.

    Every quote row in the window repeats the last quote of its instrument before ``start`` (the
    first quote in the window if there is none); trade fields keep printing. Depth updates in the
    window are held and delivered at ``end`` in order (like an outage), followed by one quote row
    (a copy of the last true quote of the window, ``ts_local = end``) that closes the burst: the
    book is the old one during the window and right again after it. That row is left out when it
    would only repeat the quote shown (the last true quote equals the frozen one) and no depth row
    was held: it would correct nothing and close no burst, and it is a copy of the window's last
    quote row but for ``ts_local`` (a later outage moving both to one time made two identical rows).
    Magnitude: the window length (``end - start`` in the unit of its ends, which must share one
    form); ``scaled(s)`` shrinks the window from ``start``.
    """

    start: TimePoint | str | int
    end: TimePoint | str | int
    instrument: int | None = None
    name = "stale_feed"

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", TimePoint.parse(self.start, "stale_feed.start"))
        object.__setattr__(self, "end", TimePoint.parse(self.end, "stale_feed.end"))
        object.__setattr__(self, "instrument", _instrument("stale_feed.instrument", self.instrument))

    def apply(self, events: np.ndarray, ctx: StressContext) -> np.ndarray:
        a, b = ctx.at(self.start), ctx.at(self.end)
        out = events.copy()
        ts, kind = events["ts_local"], events["kind"]
        inside = (ts >= a) & (ts < b)
        held = np.zeros(len(events), dtype=bool)
        refresh = []
        for j in ctx.instruments(self.instrument):
            mine = events["instrument"] == j
            quotes = np.flatnonzero(mine & ((kind & KIND_QUOTE) != 0))
            frozen = quotes[inside[quotes]]
            if not len(frozen):
                continue
            before = quotes[ts[quotes] < a]
            src = before[-1] if len(before) else frozen[0]
            for f in _QUOTE_FIELDS:
                out[f][frozen] = events[f][src]
            held_j = mine & inside & ((kind & KIND_DEPTH) != 0)
            held |= held_j
            # nothing to correct or close: the frozen quote already is the true one (e.g. a second
            # stale window over the first, whose "true" quotes are the frozen ones)
            last = frozen[-1]
            if not held_j.any() and all(np.array_equal(out[f][last], events[f][last], equal_nan=True)
                                        for f in _QUOTE_FIELDS):
                continue
            fresh = events[last].copy()  # the true quote, re-sent when the feed is live again
            fresh["ts_local"], fresh["kind"], fresh["side"], fresh["level"] = b, KIND_QUOTE | KIND_LAST_IN_BATCH, 0, 0
            fresh["price"] = fresh["size"] = np.nan
            refresh.append(fresh)
        if not refresh:
            return out
        key, closed = batch_keys(events)
        reflag(out["kind"], key, closed, held.astype(np.int64))
        # held depth rows join the burst that the refreshed quote closes
        out["kind"][held] &= ~np.uint16(KIND_LAST_IN_BATCH)
        out["ts_local"][held] = b
        extra = np.array(refresh, dtype=EVENT_DTYPE)
        merged = np.concatenate([out, extra])
        n = len(out)
        at_b = merged["ts_local"] == b
        # at time b: the held rows (in order), then the refreshed quotes, then what arrived at b
        phase = np.where(np.r_[held, np.zeros(len(extra), bool)], 0, np.where(np.arange(len(merged)) >= n, 1, 2))
        order = np.lexsort((np.arange(len(merged)), np.where(at_b, phase, 2), merged["ts_local"]))
        return merged[order]

    @property
    def magnitude(self) -> float:
        return _window_length(self.start, self.end, "stale_feed")

    def scaled(self, s: float) -> "StaleFeed":
        return replace(self, end=self.start.toward(self.end, _check_scale(s), "stale_feed.scaled"))


@dataclass(frozen=True)
class TradingHalt(Transform):
    """A trading halt of ``duration`` from ``start``: CONTROL rows in, prints out.

    Inserts a CONTROL row (``level`` 0 = exchange trading state) with ``side`` -1 (halt begins) at
    ``start`` and one with ``side`` +1 (trading resumes) at ``start + duration``, each a batch of its
    own (``ts_exch = ts_local`` = that time), placed before the rows at that time. Trades inside
    are removed — no fill happens in a halt: a trade-only row is dropped, a row that is also a
    quote keeps its quote and loses ``KIND_TRADE`` and its print fields (``price``, ``size`` NaN,
    ``side`` 0). Quotes go on (the book the data shows).
    Magnitude: the duration; ``scaled(s)`` scales it.
    """

    start: TimePoint | str | int
    duration: Duration | str | int
    instrument: int | None = None
    name = "trading_halt"

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", TimePoint.parse(self.start, "trading_halt.start"))
        object.__setattr__(self, "duration", Duration.parse(self.duration, "trading_halt.duration"))
        object.__setattr__(self, "instrument", _instrument("trading_halt.instrument", self.instrument))

    def apply(self, events: np.ndarray, ctx: StressContext) -> np.ndarray:
        a = ctx.at(self.start)
        b = a + ctx.span(self.duration)
        if b <= a:
            return events.copy()
        ids = ctx.instruments(self.instrument)
        ts, kind = events["ts_local"], events["kind"]
        trade = ((kind & KIND_TRADE) != 0) & (ts >= a) & (ts < b) & np.isin(events["instrument"], ids)
        only_trade = trade & ((kind & KIND_TYPE_MASK) == KIND_TRADE)
        out = events.copy()
        demoted = trade & ~only_trade  # the print goes, the row stays a plain book update
        out["kind"][demoted] &= ~np.uint16(KIND_TRADE)
        out["price"][demoted], out["size"][demoted], out["side"][demoted] = np.nan, np.nan, 0
        keep = ~only_trade
        ctrl = np.zeros(2 * len(ids), dtype=EVENT_DTYPE)
        ctrl["ts_exch"] = ctrl["ts_local"] = np.tile([a, b], len(ids))
        ctrl["instrument"] = np.repeat(ids, 2)
        ctrl["kind"] = KIND_CONTROL | KIND_LAST_IN_BATCH
        ctrl["side"] = np.tile([-1, 1], len(ids))
        for f in ("price", "size", *_QUOTE_FIELDS):
            ctrl[f] = np.nan
        ctrl = ctrl[np.lexsort((ctrl["instrument"], ctrl["ts_local"]))]  # time order among themselves
        have = (kind & KIND_CONTROL) != 0  # the same message twice (a halt applied twice) is sent once
        seen = set(zip(ts[have].tolist(), events["instrument"][have].tolist(), events["side"][have].tolist(),
                       events["level"][have].tolist()))
        ctrl = ctrl[[(t, i, sd, 0) not in seen for t, i, sd in ctrl[["ts_local", "instrument", "side"]].tolist()]]
        key, closed = batch_keys(events)
        pos = np.searchsorted(ts, ctrl["ts_local"], side="left")
        rank = np.concatenate([2 * np.flatnonzero(keep) + 1, 2 * pos])
        order = np.argsort(rank, kind="stable")
        merged = np.concatenate([out[keep], ctrl])[order]
        # inserted rows are closed batches of their own (distinct keys: negative)
        mkey = np.concatenate([key[keep], -1 - np.arange(len(ctrl), dtype=np.int64)])[order]
        mclosed = np.concatenate([closed[keep], np.ones(len(ctrl), dtype=bool)])[order]
        inst = merged["instrument"]
        for p in np.flatnonzero(order >= keep.sum()):
            prev = np.flatnonzero(inst[:p] == inst[p])
            if len(prev) and not mclosed[prev[-1]]:  # after an unterminated (cut-off) batch: join it
                mkey[p], mclosed[p] = mkey[prev[-1]], False
                merged["kind"][p] &= ~np.uint16(KIND_LAST_IN_BATCH)
        reflag(merged["kind"], mkey, mclosed, np.zeros(len(merged), dtype=np.int64))
        return merged

    @property
    def magnitude(self) -> float:
        return self.duration.value

    def scaled(self, s: float) -> "TradingHalt":
        return replace(self, duration=self.duration.scaled(_check_scale(s)))


@dataclass(frozen=True)
class LatencySpike(Transform):
    """Order entry and response latencies x ``k`` for actions at local times in ``[start, end)``.

    Events are unchanged; :meth:`latency` turns an engine ``LatencyConfig`` into a trace-mode one
    (the engine replays a trace as a step function: the latency recorded at or before ``now``):
    constant latencies become exact steps; an existing trace is multiplied inside the window;
    lognormal latencies are drawn from ``ctx.rng`` on a grid of ``resolution`` over the session
    (within one step every action sees the same draw — an approximation, documented so).
    ``k >= 1``. Magnitude: ``ln k``; ``scaled(s)``: ``k**s``.
    """

    start: TimePoint | str | int
    end: TimePoint | str | int
    k: float
    resolution: Duration | str | int = "1s"
    name = "latency_spike"

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", TimePoint.parse(self.start, "latency_spike.start"))
        object.__setattr__(self, "end", TimePoint.parse(self.end, "latency_spike.end"))
        object.__setattr__(self, "k", _number("latency_spike.k", self.k, 1.0, math.inf,
                                              "use a factor >= 1 (10 = ten times slower)"))
        res = Duration.parse(self.resolution, "latency_spike.resolution")
        if not res.value > 0:
            raise _bad("latency_spike.resolution", self.resolution, "use a step > 0, e.g. '1s'")
        object.__setattr__(self, "resolution", res)

    def apply(self, events: np.ndarray, ctx: StressContext) -> np.ndarray:
        return events.copy()

    def latency(self, base: Any, ctx: StressContext) -> Any:
        """``base`` (a ``LatencyConfig``) with the spike; ``base`` itself when the spike is empty."""
        from tickguard.engine.config import Latency, LatencyConfig

        if not isinstance(base, LatencyConfig):
            raise _bad("latency", base, "pass a tickguard.engine.config.LatencyConfig")
        a, b = ctx.at(self.start), ctx.at(self.end)
        if self.k == 1.0 or b <= a:
            return base
        acts = (base.submit, base.cancel or base.submit, base.modify or base.submit)
        modes = {x.mode for x in acts}
        points = [np.array([0, a, b], dtype=np.int64)]
        if "trace" in modes:
            points.append(np.asarray(base.trace[0], dtype=np.int64))  # type: ignore[index]
        grid = np.zeros(0, dtype=np.int64)
        if "lognormal" in modes:
            step = max(ctx.span(self.resolution), 1)
            grid = np.arange(ctx.t0, ctx.t1 + step, step, dtype=np.int64)
            points.append(grid)
        t = np.unique(np.concatenate(points))
        vals = np.zeros((len(t), 6))
        for col in range(6):
            act, response = acts[col % 3], col >= 3
            if act.mode == "constant":
                vals[:, col] = act.response_ns if response else act.entry_ns
            elif act.mode == "trace":
                ts, v = np.asarray(base.trace[0]), np.asarray(base.trace[1], dtype=float)  # type: ignore[index]
                vals[:, col] = v[np.maximum(np.searchsorted(ts, t, side="right") - 1, 0), col]
            else:
                median = act.response_ns if response else act.entry_ns
                sigma = act.response_sigma if response else act.entry_sigma
                draws = median * np.exp(sigma * ctx.rng.standard_normal(len(grid)))
                vals[:, col] = draws[np.maximum(np.searchsorted(grid, t, side="right") - 1, 0)]
        vals[(t >= a) & (t < b)] *= self.k
        trace = Latency(mode="trace")
        return LatencyConfig(submit=trace, cancel=trace, modify=trace, trace=(t, vals))

    @property
    def magnitude(self) -> float:
        return _log_k(self.k)

    def scaled(self, s: float) -> "LatencySpike":
        return replace(self, k=self.k ** _check_scale(s))
