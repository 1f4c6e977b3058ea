"""Stress scenarios, the frame: time specs, the run context, the transform base, ``Scenario``, ``apply``.

A stress transform is a pure function from an :data:`~tickguard.data.schema.EVENT_DTYPE` array to
a new one (the input is never written to). A :class:`Scenario` is an ordered tuple of transforms;
:func:`apply` runs them in order, checking the stream after every step with the data layer's own
row checks (:func:`tickguard.data.checks.stateless_checks`) plus the ``ts_local`` order, so a
transform that broke the stream is named at once.

Times. Every time is resolved against the *input* stream's local clock: ``t0``/``t1`` are the
first/last ``ts_local`` (the "session"), so one scenario applies to any day.

* a time point (:class:`TimePoint`): ``"+30min"`` (after ``t0``), ``"-10min"`` (before ``t1``),
  ``"40%"`` (fraction of the session), or an ``int`` (absolute ns since the epoch);
* a duration (:class:`Duration`): ``"20min"``, ``"90s"``, ``"250ms"`` (any unit
  :class:`pandas.Timedelta` reads), ``"5%"`` (of the session length), or an ``int`` (ns).

Floats are refused for both: ``0.4`` could mean 40 % or 0.4 ns.

Magnitude. Every transform has one scalar :attr:`Transform.magnitude` (0 = no stress) and
``scaled(s)``, the same transform with that scalar multiplied by ``s`` (for factors ``k`` the
magnitude is ``ln k`` so ``scaled(s)`` has ``k**s``). ``Scenario.scaled(s)`` scales every
transform, so a reverse stress test can bisect on ``s`` alone.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Sequence

import numpy as np
import pandas as pd

from tickguard.data.checks import CODES, plausible_window, stateless_checks
from tickguard.data.schema import EVENT_DTYPE, EVENT_FIELDS, KIND_LAST_IN_BATCH, InstrumentTable

__all__ = [
    "Duration",
    "Scenario",
    "StressContext",
    "TimePoint",
    "Transform",
    "apply",
    "check_stream",
    "scenario_latency",
]

_FRACTION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*%\s*$")


def _bad(name: str, value: object, fix: str) -> ValueError:
    return ValueError(f"{name}: got {value!r} ({type(value).__name__}); {fix}")


def _is_int(v: object) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _timedelta_ns(text: str, name: str) -> int:
    if not re.search(r"[a-zA-Z]", text):
        raise _bad(name, text, "give a unit, e.g. '20min', '90s', '250ms', or a share of the session '5%'")
    try:
        return int(pd.Timedelta(text).value)
    except (ValueError, TypeError):
        raise _bad(name, text, "write a duration pandas.Timedelta reads, e.g. '20min', '1h30min', '90s'") from None


@dataclass(frozen=True)
class Duration:
    """A length of time: ``value`` ns (``unit="ns"``) or a share of the session (``unit="session"``)."""

    value: float
    unit: str = "ns"

    @classmethod
    def parse(cls, spec: "Duration | str | int", name: str = "duration") -> "Duration":
        if isinstance(spec, Duration):
            return spec
        if _is_int(spec):
            if spec < 0:
                raise _bad(name, spec, "a duration in ns must be >= 0")
            return cls(float(spec), "ns")
        if isinstance(spec, str):
            m = _FRACTION.match(spec)
            if m:
                return cls(float(m[1]) / 100.0, "session")
            ns = _timedelta_ns(spec.strip().lstrip("+"), name)
            if ns < 0:
                raise _bad(name, spec, "a duration must be >= 0")
            return cls(float(ns), "ns")
        raise _bad(name, spec, "use a string like '20min' or '5%' (of the session), or an int of ns")

    def resolve(self, t0: int, t1: int) -> int:
        return int(round(self.value * (t1 - t0))) if self.unit == "session" else int(round(self.value))

    def scaled(self, s: float) -> "Duration":
        return Duration(self.value * s, self.unit)

    def __str__(self) -> str:
        return f"{self.value * 100:g}%" if self.unit == "session" else f"{int(self.value)}ns"


@dataclass(frozen=True)
class TimePoint:
    """A moment: ``base`` is "start" (ns after t0), "end" (ns before t1), "session" (fraction) or "abs"."""

    value: float
    base: str = "session"

    @classmethod
    def parse(cls, spec: "TimePoint | str | int", name: str = "time") -> "TimePoint":
        if isinstance(spec, TimePoint):
            return spec
        if _is_int(spec):
            if spec < 0:
                raise _bad(name, spec, "an absolute time is ns since the epoch, >= 0")
            return cls(float(spec), "abs")
        if isinstance(spec, str):
            m = _FRACTION.match(spec)
            if m:
                return cls(float(m[1]) / 100.0, "session")
            text = spec.strip()
            if text[:1] in "+-":
                ns = _timedelta_ns(text[1:], name)
                if ns < 0:
                    raise _bad(name, spec, "write '+20min' (after the start) or '-20min' (before the end)")
                return cls(float(ns), "start" if text[0] == "+" else "end")
            raise _bad(name, spec, "write '+30min' (after the first event), '-10min' (before the last), "
                       "'40%' (of the session) or an int of ns since the epoch")
        raise _bad(name, spec, "use a string like '+30min', '-10min' or '40%', or an int of ns since the epoch")

    def resolve(self, t0: int, t1: int) -> int:
        if self.base == "session":
            return t0 + int(round(self.value * (t1 - t0)))
        if self.base == "start":
            return t0 + int(round(self.value))
        if self.base == "end":
            return t1 - int(round(self.value))
        return int(round(self.value))

    def toward(self, other: "TimePoint", s: float, name: str) -> "TimePoint":
        """The point a share ``s`` of the way from ``self`` to ``other`` (same base needed)."""
        if self.base != other.base:
            raise ValueError(f"{name}: cannot scale a window whose ends are given in different forms "
                             f"({self} and {other}); write both as '+..', '-..', '..%' or ns")
        return TimePoint(self.value + s * (other.value - self.value), self.base)

    def __str__(self) -> str:
        if self.base == "session":
            return f"{self.value * 100:g}%"
        if self.base == "abs":
            return str(int(self.value))
        return f"{'+' if self.base == 'start' else '-'}{int(self.value)}ns"


class StressContext:
    """What a transform needs beyond the events: the session, tick and lot per instrument, the RNG."""

    def __init__(self, events: np.ndarray, *, seed: int, instruments: InstrumentTable | None = None,
                 tick: float | None = None, lot: float | None = None) -> None:
        if not _is_int(seed) or seed < 0:
            raise _bad("seed", seed, "use an int >= 0 (np.random.default_rng(seed) draws every random number)")
        ts = events["ts_local"]
        self.t0, self.t1 = (int(ts[0]), int(ts[-1])) if len(ts) else (0, 0)
        self.rng = np.random.default_rng(seed)
        self.table = instruments
        ids = np.unique(events["instrument"]).astype(np.int64)
        self.ids = ids
        dense = instruments.dense_arrays() if instruments is not None else None
        size = int(max(ids.max() + 1 if len(ids) else 0, len(dense["tick_size"]) if dense else 0))
        self.tick = np.full(size, np.nan)
        self.lot = np.full(size, np.nan)
        if dense is not None:
            self.tick[: len(dense["tick_size"])] = dense["tick_size"]
            self.lot[: len(dense["lot_size"])] = dense["lot_size"]
        for name, value, arr in (("tick", tick, self.tick), ("lot", lot, self.lot)):
            if value is not None:
                if not (np.isfinite(value) and value > 0):
                    raise _bad(name, value, f"give the {name} size as a finite number > 0")
                arr[:] = float(value)

    def at(self, spec: TimePoint) -> int:
        return spec.resolve(self.t0, self.t1)

    def span(self, spec: Duration) -> int:
        return spec.resolve(self.t0, self.t1)

    def instruments(self, instrument: int | None) -> np.ndarray:
        """The ids a transform acts on: all in the data, or the one asked for (which must be there)."""
        if instrument is None:
            return self.ids
        if instrument not in set(self.ids.tolist()):
            raise _bad("instrument", instrument, f"the events hold instrument ids {self.ids.tolist()}")
        return np.array([instrument], dtype=np.int64)

    def tick_of(self, inst: int, who: str) -> float:
        t = self.tick[inst] if inst < len(self.tick) else np.nan
        if not (np.isfinite(t) and t > 0):
            raise ValueError(f"{who} needs the tick size of instrument {inst} to keep prices on the grid; "
                             "pass instruments= (an InstrumentTable with tick_size) or tick=0.01")
        return float(t)

    def lot_of(self, inst: int) -> float:
        """Lot size, 0 when not known (sizes are then scaled without rounding)."""
        v = self.lot[inst] if inst < len(self.lot) else np.nan
        return float(v) if np.isfinite(v) and v > 0 else 0.0


class Transform:
    """Base of the stress transforms: frozen dataclasses with a snake-case :attr:`name`."""

    name: ClassVar[str] = ""

    def apply(self, events: np.ndarray, ctx: StressContext) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    @property
    def magnitude(self) -> float:  # pragma: no cover
        raise NotImplementedError

    def scaled(self, s: float) -> "Transform":  # pragma: no cover
        raise NotImplementedError


def _check_scale(s: float) -> float:
    if isinstance(s, bool) or not isinstance(s, (int, float, np.floating, np.integer)) or not np.isfinite(s) or s < 0:
        raise _bad("scaled(s)", s, "s is a finite factor >= 0 (0 = no stress, 1 = as given)")
    return float(s)


@dataclass(frozen=True)
class Scenario:
    """An ordered list of transforms, with a name, a description and the sources it is calibrated to."""

    transforms: tuple[Transform, ...]
    name: str = "custom"
    description: str = ""
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "transforms", tuple(self.transforms))
        object.__setattr__(self, "sources", tuple(self.sources))
        for i, t in enumerate(self.transforms):
            if not isinstance(t, Transform):
                raise TypeError(f"Scenario.transforms[{i}]: got {type(t).__name__}; use the transforms of "
                                "tickguard.risk.stress (PriceGap, FlashCrash, ...)")

    def scaled(self, s: float) -> "Scenario":
        """Every transform scaled by ``s`` (see the module docstring)."""
        s = _check_scale(s)
        return Scenario(tuple(t.scaled(s) for t in self.transforms), self.name, self.description, self.sources)


def _as_scenario(scenario: "Scenario | Transform | Sequence[Transform]") -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, Transform):
        return Scenario((scenario,))
    if isinstance(scenario, Iterable) and not isinstance(scenario, (str, bytes)):
        return Scenario(tuple(scenario))
    raise TypeError(f"scenario: got {type(scenario).__name__}; pass a Scenario, a transform or a list of transforms")


def check_stream(events: np.ndarray, ctx: StressContext) -> list[str]:
    """Problems that make ``events`` unreplayable: the data layer's row checks and ``ts_local`` order.

    Locked quotes (bid == ask) are allowed, as in validation. Returns one line per problem kind.
    """
    if events.dtype != EVENT_DTYPE:
        raise TypeError(f"events must have EVENT_DTYPE, got {events.dtype}")
    lo, hi = plausible_window(time.time_ns())
    hits, _ = stateless_checks(events, lo_ns=lo, hi_ns=hi,
                               known_ids=ctx.table.ids if ctx.table is not None else None,
                               tick=ctx.tick, lot=ctx.lot)
    out = []
    for code in np.unique(hits["code"]):
        first = hits[hits["code"] == code][0]
        field = EVENT_FIELDS[first["field"]] if first["field"] >= 0 else "-"
        out.append(f"{CODES[code]} in {int((hits['code'] == code).sum())} row(s), first at row "
                   f"{int(first['idx'])} (field {field})")
    back = np.flatnonzero(np.diff(events["ts_local"]) < 0)
    if len(back):
        out.append(f"ts_local decreases at {len(back)} row(s), first at row {int(back[0]) + 1}")
    return out


def apply(events: np.ndarray, scenario: "Scenario | Transform | Sequence[Transform]", *, seed: int,
          instruments: InstrumentTable | None = None, tick: float | None = None,
          lot: float | None = None, validate: bool = True) -> np.ndarray:
    """Run the scenario's transforms in order on a copy of ``events``; return the stressed events.

    ``instruments`` (or the scalars ``tick``/``lot`` for every instrument) give the price and size
    grids. ``seed`` feeds :attr:`StressContext.rng` for transforms that draw. With ``validate`` the
    input must pass :func:`check_stream` (ValueError otherwise) and every step's output is checked
    again (RuntimeError naming the step: a transform must never break a valid stream).
    Latency spikes leave events alone; see :func:`scenario_latency`.
    """
    sc = _as_scenario(scenario)
    if not isinstance(events, np.ndarray) or events.dtype != EVENT_DTYPE:
        raise TypeError(f"events: got {getattr(events, 'dtype', type(events).__name__)}; "
                        "pass an EVENT_DTYPE array (tickguard.data readers return one)")
    ctx = StressContext(events, seed=seed, instruments=instruments, tick=tick, lot=lot)
    if validate and (problems := check_stream(events, ctx)):
        raise ValueError("events: the input stream is not valid: " + "; ".join(problems)
                         + ". Load it through tickguard.data (validation) before stressing it")
    out = events
    for i, t in enumerate(sc.transforms):
        out = t.apply(out, ctx)
        if validate and (problems := check_stream(out, ctx)):
            raise RuntimeError(f"stress step {i} ({t.name}) produced an invalid stream: " + "; ".join(problems))
    return out.copy() if out is events else out


def scenario_latency(latency: Any, events: np.ndarray, scenario: "Scenario | Transform | Sequence[Transform]",
                     *, seed: int) -> Any:
    """The engine :class:`~tickguard.engine.config.LatencyConfig` with the scenario's latency spikes.

    ``latency`` is the unstressed config; transforms without a latency effect are skipped; windows
    resolve against ``events`` (the unstressed stream, like :func:`apply`).
    """
    sc = _as_scenario(scenario)
    ctx = StressContext(events, seed=seed)
    for t in sc.transforms:
        hook = getattr(t, "latency", None)
        if hook is not None:
            latency = hook(latency, ctx)
    return latency


# --- helpers shared by the transforms ------------------------------------------------------------
def batch_keys(events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: an id of its batch (rows up to a ``KIND_LAST_IN_BATCH`` row, per instrument), and
    whether that batch is closed by such a flag (streams without flags have no closed batches)."""
    n = len(events)
    inst = events["instrument"].astype(np.int64)
    last = (events["kind"] & KIND_LAST_IN_BATCH) != 0
    order = np.argsort(inst, kind="stable")
    si, sl = inst[order], last[order]
    start = np.r_[True, si[1:] != si[:-1]] if n else np.zeros(0, bool)
    before = np.cumsum(sl) - sl  # flags before this row, overall
    base = np.maximum.accumulate(np.where(start, before, 0)) if n else before
    idx = np.empty(n, dtype=np.int64)
    idx[order] = before - base
    key = (inst << 32) | idx
    closed_keys = np.unique(key[last])
    return key, np.isin(key, closed_keys)


def reflag(kind: np.ndarray, key: np.ndarray, closed: np.ndarray, part: np.ndarray) -> None:
    """Rewrite ``KIND_LAST_IN_BATCH`` in place after rows were dropped or moved: within every
    closed batch, the last row (in the given order) of each ``part`` carries the flag, no other."""
    if not closed.any():
        return
    flag = np.uint16(KIND_LAST_IN_BATCH)
    kind[closed] &= ~flag
    group = np.stack([key, part.astype(np.int64)], axis=1)[closed]
    rows = np.flatnonzero(closed)
    _, first_rev = np.unique(group[::-1], axis=0, return_index=True)
    kind[rows[len(rows) - 1 - first_rev]] |= flag


def reference_prices(events: np.ndarray, inst: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ts_local, price)`` of the instrument's reference path: the mid of every two-sided quote,
    else (streams without quotes, e.g. bars) the price of trade and bar rows."""
    sel = events["instrument"] == inst
    bid, ask = events["bid_px"], events["ask_px"]
    ok = sel & np.isfinite(bid) & np.isfinite(ask)
    if ok.any():
        return events["ts_local"][ok], 0.5 * (bid[ok] + ask[ok])
    ok = sel & np.isfinite(events["price"]) & ((events["kind"] & np.uint16(2 | 16)) != 0)
    if ok.any():
        return events["ts_local"][ok], events["price"][ok]
    raise ValueError(f"instrument {inst} has no two-sided quote and no trade or bar price to measure "
                     "a move from; a price stress needs one")


def price_at(ts: np.ndarray, px: np.ndarray, when: np.ndarray, *, strict: bool = False) -> np.ndarray:
    """The reference price in force at each time (the last one at or before it; ``strict``: before
    it); times before the first observation get the first one."""
    k = np.searchsorted(ts, when, side="left" if strict else "right") - 1
    return px[np.maximum(k, 0)]
