"""Price and liquidity stress transforms: gap, flash crash, volatility scaling, wide spreads, thin books.

Each is a frozen dataclass; ``t.apply(events, ctx)`` returns a new stream (use
:func:`tickguard.risk.stress.apply` to run a scenario). All map the book through
:func:`~tickguard.risk.stress.book.remap_book`, so spreads, depth ladders and the tick grid stay
intact and the L2 book stays consistent (see there for why prices are *shifted* by whole ticks).
Times are on the local clock, ``ts_local``. ``instrument=None`` stresses every instrument.

Reference price: the mid of two-sided quotes (for bar or trade-only streams, the print price);
"pre-shock" is the last one strictly before the shock starts (the first one if none). A move of
``pct`` shifts the book by ``pct`` x the pre-shock mid: at the shock that *is* the pre-shock price
times ``1 + pct``; afterwards the path keeps its own price changes (in price units) on top.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from tickguard.data.schema import KIND_DEPTH

from .book import NO_LEVEL_LIMIT, remap_book, to_half_ticks
from .core import Duration, StressContext, TimePoint, Transform, _bad, _check_scale, _is_int, price_at, reference_prices

__all__ = ["FlashCrash", "LiquidityDrought", "PriceGap", "SpreadWiden", "VolScale"]


def _number(name: str, value: object, lo: float = -math.inf, hi: float = math.inf, fix: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _bad(name, value, fix or "use a number")
    v = float(value)
    if not (math.isfinite(v) and lo <= v <= hi):
        raise _bad(name, value, fix or f"use a finite number in [{lo}, {hi}]")
    return v


def _instrument(name: str, value: object) -> int | None:
    if value is None:
        return None
    if not _is_int(value) or value < 0:
        raise _bad(name, value, "use an instrument id (int >= 0), or None for every instrument")
    return int(value)


def _maps(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros(n, np.int64), np.zeros(n, np.int64), np.ones(n), np.full(n, NO_LEVEL_LIMIT, np.int64)


def _log_k(k: float) -> float:
    return math.log(k) if k > 0 else -math.inf


class _Shift(Transform):
    """A transform that moves the whole book by ``delta(inst, t, tick)`` (price units, per row)."""

    instrument: int | None

    def _delta(self, events: np.ndarray, ctx: StressContext, inst: int, t: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover

    def apply(self, events: np.ndarray, ctx: StressContext) -> np.ndarray:
        off, _, k, lvl = _maps(len(events))
        for j in ctx.instruments(self.instrument):
            rows = np.flatnonzero(events["instrument"] == j)
            tick = ctx.tick_of(int(j), self.name)
            d = self._delta(events, ctx, int(j), events["ts_local"][rows])
            off[rows] = 2 * np.rint(d / tick).astype(np.int64)  # whole ticks, in half ticks
        return remap_book(events, ctx, self.name, off, off, k, lvl)


@dataclass(frozen=True)
class PriceGap(_Shift):
    """Instant jump: from ``at`` on, the book is moved by ``pct`` x the pre-shock mid (whole ticks).

    ``pct`` is a fraction (-0.1 = a 10 % fall), > -1. Magnitude: ``pct``.
    """

    at: TimePoint | str | int
    pct: float
    instrument: int | None = None
    name = "price_gap"

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", TimePoint.parse(self.at, "price_gap.at"))
        object.__setattr__(self, "pct", _number("price_gap.pct", self.pct, -1 + 1e-9, math.inf,
                                                "use a fraction > -1 (-0.1 = a 10 % fall)"))
        object.__setattr__(self, "instrument", _instrument("price_gap.instrument", self.instrument))

    def _delta(self, events, ctx, inst, t):
        at = ctx.at(self.at)
        ts, px = reference_prices(events, inst)
        m0 = price_at(ts, px, np.array([at]), strict=True)[0]
        return np.where(t >= at, m0 * self.pct, 0.0)

    @property
    def magnitude(self) -> float:
        return self.pct

    def scaled(self, s: float) -> "PriceGap":
        return replace(self, pct=self.pct * _check_scale(s))


@dataclass(frozen=True)
class FlashCrash(_Shift):
    """A move of ``pct`` x the pre-shock mid, reached linearly over ``fall``, then ``retrace`` of it
    undone linearly over ``recover`` (1 = back on the original path, 0 = no recovery).

    Shape ``s(t)``: 0 before ``start``; ``(t - start) / fall`` until the bottom ``b = start + fall``;
    ``1 - retrace * min(1, (t - b) / recover)`` after it (``fall``/``recover`` 0: a jump). The book
    moves by ``round_tick(m0 * pct * s(t))``. Magnitude: ``pct``.
    """

    start: TimePoint | str | int
    pct: float
    fall: Duration | str | int
    recover: Duration | str | int
    retrace: float = 1.0
    instrument: int | None = None
    name = "flash_crash"

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", TimePoint.parse(self.start, "flash_crash.start"))
        object.__setattr__(self, "fall", Duration.parse(self.fall, "flash_crash.fall"))
        object.__setattr__(self, "recover", Duration.parse(self.recover, "flash_crash.recover"))
        object.__setattr__(self, "pct", _number("flash_crash.pct", self.pct, -1 + 1e-9, math.inf,
                                                "use a fraction > -1 (-0.09 = a 9 % crash)"))
        object.__setattr__(self, "retrace", _number("flash_crash.retrace", self.retrace, 0.0, 1.0,
                                                    "use the share of the move undone, in [0, 1]"))
        object.__setattr__(self, "instrument", _instrument("flash_crash.instrument", self.instrument))

    def shape(self, t: np.ndarray, ctx: StressContext) -> np.ndarray:
        """``s(t)`` in [0, 1] for local times ``t`` (ns)."""
        t = np.asarray(t, dtype=np.int64)
        a, fall, rec = ctx.at(self.start), ctx.span(self.fall), ctx.span(self.recover)
        b = a + fall
        with np.errstate(divide="ignore", invalid="ignore"):
            down = np.where(fall > 0, (t - a) / max(fall, 1), 1.0)
            up = np.where(rec > 0, np.minimum((t - b) / max(rec, 1), 1.0), np.where(t > b, 1.0, 0.0))
        return np.where(t < a, 0.0, np.where(t < b, down, 1.0 - self.retrace * up))

    def _delta(self, events, ctx, inst, t):
        ts, px = reference_prices(events, inst)
        m0 = price_at(ts, px, np.array([ctx.at(self.start)]), strict=True)[0]
        return m0 * self.pct * self.shape(t, ctx)

    @property
    def magnitude(self) -> float:
        return self.pct

    def scaled(self, s: float) -> "FlashCrash":
        return replace(self, pct=self.pct * _check_scale(s))


@dataclass(frozen=True)
class VolScale(_Shift):
    """Log returns of the mid, measured from the mid ``ms`` at ``start``, times ``k`` over the window.

    Inside ``[start, end)`` the book is moved so the mid follows ``ms * (mid / ms) ** k`` (to half a
    tick). After ``end`` the shift reached at the end *persists* (in whole ticks): the path rejoins
    continuously and carries on with its original price changes from the displaced level.
    ``k >= 0`` (0 freezes the mid, 1 changes nothing). Magnitude: ``ln k``; ``scaled(s)``: ``k**s``.
    """

    start: TimePoint | str | int
    end: TimePoint | str | int
    k: float
    instrument: int | None = None
    name = "vol_scale"

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", TimePoint.parse(self.start, "vol_scale.start"))
        object.__setattr__(self, "end", TimePoint.parse(self.end, "vol_scale.end"))
        object.__setattr__(self, "k", _number("vol_scale.k", self.k, 0.0, math.inf, "use a factor >= 0"))
        object.__setattr__(self, "instrument", _instrument("vol_scale.instrument", self.instrument))

    def _delta(self, events, ctx, inst, t):
        a, b = ctx.at(self.start), ctx.at(self.end)
        if b <= a:
            return np.zeros(len(t))
        ts, px = reference_prices(events, inst)
        ms = price_at(ts, px, np.array([a]), strict=True)[0]
        m = price_at(ts, px, np.minimum(t, b - 1))  # after the window: the mid at its end
        target = ms * np.exp(self.k * np.log(m / ms))
        return np.where(t < a, 0.0, target - m)

    @property
    def magnitude(self) -> float:
        return _log_k(self.k)

    def scaled(self, s: float) -> "VolScale":
        return replace(self, k=self.k ** _check_scale(s))


@dataclass(frozen=True)
class SpreadWiden(Transform):
    """Each two-sided quote in ``[start, end)`` gets spread ``k`` x its own, around its own mid,
    rounded outward to ticks: ``bid' = floor_tick(mid - k*S/2)``, ``ask' = ceil_tick(mid + k*S/2)``.

    Each side of the book moves out with its touch; trades print at the moved touch they hit.
    ``k >= 1``. Magnitude: ``ln k``; ``scaled(s)``: ``k**s``.
    """

    start: TimePoint | str | int
    end: TimePoint | str | int
    k: float
    instrument: int | None = None
    name = "spread_widen"

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", TimePoint.parse(self.start, "spread_widen.start"))
        object.__setattr__(self, "end", TimePoint.parse(self.end, "spread_widen.end"))
        object.__setattr__(self, "k", _number("spread_widen.k", self.k, 1.0, math.inf,
                                              "use a factor >= 1 (the spread is widened, never narrowed)"))
        object.__setattr__(self, "instrument", _instrument("spread_widen.instrument", self.instrument))

    def apply(self, events: np.ndarray, ctx: StressContext) -> np.ndarray:
        ob, oa, k, lvl = _maps(len(events))
        a, b = ctx.at(self.start), ctx.at(self.end)
        for j in ctx.instruments(self.instrument):
            rows = np.flatnonzero(events["instrument"] == j)
            ev = events[rows]
            inside = (ev["ts_local"] >= a) & (ev["ts_local"] < b)
            q = np.flatnonzero(inside & np.isfinite(ev["bid_px"]) & np.isfinite(ev["ask_px"]))
            if not len(q) or self.k == 1.0:
                continue
            tick = ctx.tick_of(int(j), self.name)
            bid2, ask2 = to_half_ticks(ev["bid_px"][q], tick), to_half_ticks(ev["ask_px"][q], tick)
            bt, at = bid2 / 2.0, ask2 / 2.0  # in ticks; +-1e-9 keeps k == 1 exact under binary noise
            half = self.k * (at - bt) / 2.0
            new_b = np.floor((bt + at) / 2.0 - half + 1e-9)
            new_a = np.ceil((bt + at) / 2.0 + half - 1e-9)
            qb, qa = (2 * new_b).astype(np.int64) - bid2, (2 * new_a).astype(np.int64) - ask2
            # every row in the window takes the map of the latest such quote at or before it
            last = np.searchsorted(q, np.arange(len(rows)), side="right") - 1
            use = inside & (last >= 0)
            ob[rows[use]], oa[rows[use]] = qb[last[use]], qa[last[use]]
        return remap_book(events, ctx, self.name, ob, oa, k, lvl)

    @property
    def magnitude(self) -> float:
        return _log_k(self.k)

    def scaled(self, s: float) -> "SpreadWiden":
        return replace(self, k=self.k ** _check_scale(s))


@dataclass(frozen=True)
class LiquidityDrought(Transform):
    """Displayed sizes x ``k`` in ``[start, end)`` and the deepest ``levels_removed`` depth levels hidden.

    Sizes are floored to whole lots but a shown level keeps at least one lot (a level with no size
    would not be shown at all); size 0 (a deletion) stays 0. Depth is ``1 + max(level)`` of the
    instrument's depth rows; levels ``>= depth - levels_removed`` are hidden in the window (the book
    is re-sent at both window ends). Depth and quote sizes follow the same rule row by row, so the
    book's top and the quote agree, also for a level the window's first row updates.
    ``0 < k <= 1``. Magnitude: ``ln k``; ``scaled(s)``: ``k**s`` and ``round(s * levels_removed)`` levels.
    """

    start: TimePoint | str | int
    end: TimePoint | str | int
    k: float
    levels_removed: int = 0
    instrument: int | None = None
    name = "liquidity_drought"

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", TimePoint.parse(self.start, "liquidity_drought.start"))
        object.__setattr__(self, "end", TimePoint.parse(self.end, "liquidity_drought.end"))
        object.__setattr__(self, "k", _number("liquidity_drought.k", self.k, 1e-12, 1.0,
                                              "use a factor in (0, 1] (0.2 = a fifth of the displayed size)"))
        if not _is_int(self.levels_removed) or self.levels_removed < 0:
            raise _bad("liquidity_drought.levels_removed", self.levels_removed, "use an int >= 0")
        object.__setattr__(self, "instrument", _instrument("liquidity_drought.instrument", self.instrument))

    def apply(self, events: np.ndarray, ctx: StressContext) -> np.ndarray:
        ob, oa, k, lvl = _maps(len(events))
        a, b = ctx.at(self.start), ctx.at(self.end)
        for j in ctx.instruments(self.instrument):
            rows = np.flatnonzero(events["instrument"] == j)
            ev = events[rows]
            inside = rows[(ev["ts_local"] >= a) & (ev["ts_local"] < b)]
            k[inside] = self.k
            depth = (ev["kind"] & KIND_DEPTH) != 0
            if self.levels_removed and depth.any():
                n_levels = int(ev["level"][depth].max()) + 1
                lvl[inside] = n_levels - self.levels_removed - 1  # deepest level still shown
        return remap_book(events, ctx, self.name, ob, oa, k, lvl)

    @property
    def magnitude(self) -> float:
        return _log_k(self.k)

    def scaled(self, s: float) -> "LiquidityDrought":
        s = _check_scale(s)
        return replace(self, k=self.k ** s, levels_removed=int(round(s * self.levels_removed)))
