"""Reverse stress tests: the smallest stress that breaks a book, by real engine runs or in closed form.

:func:`reverse_stress` takes a scenario *family* (a transform or a scenario; every member is
``family.scaled(s)``, magnitude ``s`` times the family's) and a breaking condition, and finds the
smallest scale that breaks: one probe at ``s = 0`` (no stress; it must not break already), then
``start, 2 start, 4 start, ...`` until a probe breaks (the bracket), then bisection until the
bracket is narrower than ``tol`` in magnitude units. Every probe is a real engine run on the
transformed events (:func:`~tickguard.risk.stress.grid.run_stressed`). Bisection assumes the outcome
is monotone in the magnitude and cannot tell otherwise (every probe below the boundary held and
every one at or above it broke by construction): a book that breaks only inside a window of
magnitudes can hide a smaller breaking stress; ``ReverseResult.probes`` lists what was tried.

Breaking conditions (gains positive, money in the quote currency): :class:`LossBeyond` (final PnL
below ``-amount``), :class:`DrawdownBeyond` (max drawdown of the equity path, fraction of the
running peak with the initial cash first, above ``fraction``), :class:`KillSwitchFires` (the kill
switch reaches ``state`` or worse; needs ``risk=``), or any ``callable(result) -> bool``.

:func:`linear_worst_case` is the closed form for a linear book: P&L ``w . x`` for factor moves
``x``; over the ellipsoid ``x' inv(Sigma) x <= k**2`` the worst loss is ``k sqrt(w' Sigma w)``,
reached at ``x* = -k Sigma w / sqrt(w' Sigma w)`` (Cauchy-Schwarz in the Sigma metric).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np
import pandas as pd

from .core import Scenario, Transform, _check_scale
from .grid import run_stressed

__all__ = ["DrawdownBeyond", "KillSwitchFires", "LossBeyond", "ReverseResult", "WorstCase",
           "linear_worst_case", "reverse_stress"]


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: got {value!r} ({type(value).__name__}); use a finite number >= 0")
    return float(value)


@dataclass(frozen=True)
class LossBeyond:
    """Breaks when the final PnL (final equity - initial cash) is below ``-amount`` (currency)."""

    amount: float

    def __post_init__(self) -> None:
        _positive("LossBeyond.amount", self.amount)

    def __call__(self, result: Any) -> tuple[bool, float]:
        eq = result.equity["equity"]
        loss = result.config.initial_cash - (float(eq[-1]) if len(eq) else result.config.initial_cash)
        return loss > self.amount, loss


@dataclass(frozen=True)
class DrawdownBeyond:
    """Breaks when the max drawdown (fraction of the running peak, initial cash first) exceeds ``fraction``."""

    fraction: float

    def __post_init__(self) -> None:
        _positive("DrawdownBeyond.fraction", self.fraction)

    def __call__(self, result: Any) -> tuple[bool, float]:
        from tickguard.reports.metrics import max_drawdown

        dd = max_drawdown(np.concatenate([[result.config.initial_cash], result.equity["equity"]])).depth
        return dd > self.fraction, dd


@dataclass(frozen=True)
class KillSwitchFires:
    """Breaks when the kill switch escalates to ``state`` ("REDUCING" or "HALTED") or worse."""

    state: str = "REDUCING"

    def __post_init__(self) -> None:
        if self.state not in ("REDUCING", "HALTED"):
            raise ValueError(f"KillSwitchFires.state: got {self.state!r}; use 'REDUCING' or 'HALTED'")

    def __call__(self, result: Any) -> tuple[bool, float]:
        from tickguard.engine.records import RISK_STATE_NAMES, RK_TRANSITION

        if result.risk is None:
            raise ValueError("KillSwitchFires needs a kill switch: pass risk=RiskGate.load(...)")
        rk = result.risk_events
        worst = int(rk["state"][rk["kind"] == RK_TRANSITION].max(initial=0))
        level = {v: k for k, v in RISK_STATE_NAMES.items()}[self.state]
        return worst >= level, float(worst)


@dataclass
class ReverseResult:
    """The boundary and how it was found.

    ``scale``: the smallest breaking scale probed (None if none broke); ``magnitude``: the
    family's magnitude there (a float for a transform, a tuple for a scenario); ``lower``: the
    largest non-breaking scale probed; ``probes``: every probe in order (scale, magnitude, broke,
    value = what the condition measured, result_hash); ``result``: the engine Result at ``scale``.
    """

    found: bool
    scale: float | None
    magnitude: Any
    lower: float | None
    probes: pd.DataFrame
    result: Any
    scenario: Scenario | None
    message: str


def _magnitudes(sc: Scenario) -> tuple[float, ...]:
    return tuple(float(t.magnitude) for t in sc.transforms)


def reverse_stress(events: np.ndarray, family: Scenario | Transform, strategy: Any,
                   breaks: Callable[[Any], Any], *, instruments: Any = None, config: Any = None,
                   risk: Any = None, seed: int = 0, tol: float = 1e-3, start: float = 1.0,
                   max_doublings: int = 16) -> ReverseResult:
    """Smallest scale ``s`` of ``family`` at which ``breaks(result)`` holds (see the module docstring).

    ``tol``: the width of the final bracket in magnitude units (for a scenario, of the transform
    whose magnitude moves most). ``breaks`` returns a bool or ``(bool, value)``. The strategy object
    is reused for every probe (the engine copies its state per run).
    """
    sc = family if isinstance(family, Scenario) else Scenario((family,)) if isinstance(family, Transform) else None
    if sc is None:
        raise TypeError(f"family: got {type(family).__name__}; pass a stress transform or a Scenario")
    unit = max((abs(m) for m in _magnitudes(sc)), default=0.0)
    if not (math.isfinite(unit) and unit > 0):
        raise ValueError(f"family: magnitudes {_magnitudes(sc)} are all 0 (or not finite): scaling cannot "
                         "stress anything; give the family a non-zero size (e.g. pct=-0.01)")
    if not callable(breaks):
        raise TypeError(f"breaks: got {type(breaks).__name__}; pass LossBeyond(...), DrawdownBeyond(...), "
                        "KillSwitchFires(...) or a callable(result) -> bool")
    tol = _positive("tol", tol)
    if tol == 0:
        raise ValueError("tol: got 0; use a bracket width > 0 in magnitude units, e.g. 1e-3")
    start = _check_scale(start)
    if start == 0:
        raise ValueError("start: got 0; use the first scale to try, > 0 (1 = the family as given)")
    if isinstance(max_doublings, bool) or not isinstance(max_doublings, int) or max_doublings < 0:
        raise ValueError(f"max_doublings: got {max_doublings!r}; use an int >= 0")
    single = isinstance(family, Transform)
    rows: list[dict[str, Any]] = []
    runs: dict[float, tuple[Scenario, Any]] = {}

    def probe(s: float) -> bool:
        member = sc.scaled(s)
        result = run_stressed(events, member, strategy, instruments=instruments, config=config, risk=risk,
                              seed=seed)
        out = breaks(result)
        broke, value = (out if isinstance(out, tuple) else (out, math.nan))
        mags = _magnitudes(member)
        rows.append({"scale": s, "magnitude": mags[0] if single else mags, "broke": bool(broke),
                     "value": float(value), "result_hash": result.result_hash})
        if broke:  # every new break is below the last one: keep only the lowest run
            runs.clear()
            runs[s] = (member, result)
        return bool(broke)

    def done(found: bool, hi: float | None, lo: float | None, message: str) -> ReverseResult:
        member, result = runs[hi] if hi is not None else (None, None)
        mags = _magnitudes(member) if member is not None else None
        return ReverseResult(found, hi, (mags[0] if single else mags) if mags else None, lo,
                             pd.DataFrame(rows), result, member, message)

    if probe(0.0):
        return done(True, 0.0, None, "breaks with no stress at all (scale 0)")
    lo, hi = 0.0, start
    for _ in range(max_doublings + 1):
        try:
            sc.scaled(hi)
        except ValueError as exc:  # the family cannot be scaled this far (e.g. a fall beyond -100 %)
            return done(False, None, lo, f"no break up to scale {lo:g}; scale {hi:g} is not a valid "
                        f"member of the family: {exc}")
        if probe(hi):
            break
        lo, hi = hi, 2 * hi
    else:
        return done(False, None, lo, f"no break up to scale {lo:g} ({max_doublings} doublings); "
                    "raise max_doublings or start")
    while (hi - lo) * unit > tol:
        mid = 0.5 * (lo + hi)
        if probe(mid):
            hi = mid
        else:
            lo = mid
    return done(True, hi, lo, f"breaks at scale {hi:.6g} (holds at {lo:.6g}); {len(rows)} engine runs")


class WorstCase(NamedTuple):
    """Worst loss (positive, P&L units) on the ellipsoid and the factor move that causes it."""

    loss: float
    shock: np.ndarray


def linear_worst_case(w: Any, cov: Any, k: float) -> WorstCase:
    """Worst loss of a linear book ``P&L = w . x`` over ``x' inv(cov) x <= k**2``.

    ``w``: exposures (P&L per unit move of each factor); ``cov``: the factor covariance (symmetric,
    positive semi-definite, same units as ``x``); ``k``: the Mahalanobis radius (e.g. 3 for a
    "3 sigma" joint move). Returns ``loss = k sqrt(w' cov w)`` and ``shock = -k cov w / sqrt(w' cov w)``
    (zeros when ``w' cov w = 0``: no move inside the ellipsoid loses anything).
    """
    w = np.asarray(w, dtype=float)
    cov = np.asarray(cov, dtype=float)
    if w.ndim != 1 or not len(w) or not np.all(np.isfinite(w)):
        raise ValueError(f"w: got shape {w.shape}; pass a non-empty 1-D array of finite exposures")
    if cov.shape != (len(w), len(w)) or not np.all(np.isfinite(cov)):
        raise ValueError(f"cov: got shape {cov.shape}; pass a finite ({len(w)}, {len(w)}) covariance matrix")
    scale = max(float(np.abs(cov).max()), 1e-300)
    if not np.allclose(cov, cov.T, rtol=1e-10, atol=1e-12 * scale):
        raise ValueError("cov: not symmetric; pass a covariance matrix (e.g. (cov + cov.T) / 2)")
    if np.linalg.eigvalsh(cov).min() < -1e-10 * scale:
        raise ValueError("cov: has a negative eigenvalue; a covariance matrix is positive semi-definite")
    k = _positive("k", k)
    sw = cov @ w
    var = float(w @ sw)
    if var <= 0.0:
        return WorstCase(0.0, np.zeros_like(w))
    sigma = math.sqrt(var)
    return WorstCase(k * sigma, -k * sw / sigma)
