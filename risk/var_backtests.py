"""Backtests of VaR and ES forecasts.

Conventions: returns/P&L have gains positive; VaR and ES are positive losses (as in
:mod:`tickguard.risk.var`). An *exception* (hit) on day t is ``return_t < -VaR_t``. Give the VaR
confidence as ``level`` (e.g. 0.99) **or** the exception probability as ``p`` (= 1 - level, e.g.
0.01), never both. Likelihoods use the convention ``0 * ln(0) = 0`` (``scipy.special.xlogy``),
which keeps every statistic finite with zero exceptions, all exceptions, or no transitions of
some kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import xlogy

__all__ = [
    "LRTestResult", "TrafficLightResult", "Z2Result", "christoffersen_cc",
    "christoffersen_independence", "es_backtest_z2", "kupiec_pof", "traffic_light", "var_exceptions",
]


@dataclass(frozen=True)
class LRTestResult:
    """A likelihood-ratio test: ``statistic`` ~ chi2(``df``) under the null, ``pvalue`` its upper
    tail. ``expected`` = n * p (None when the test does not use p); ``transitions`` = (n00, n01,
    n10, n11) counts of consecutive day pairs (previous, current), for the independence tests."""

    test: str
    statistic: float
    pvalue: float
    df: int
    n: int
    exceptions: int
    p: float | None
    expected: float | None
    transitions: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class TrafficLightResult:
    """Basel traffic light: ``cumulative_probability`` = P(X <= exceptions), X ~ Binomial(n, p);
    ``zone`` "green"/"yellow"/"red"; ``multiplier`` = 3 + ``plus_factor``."""

    zone: str
    plus_factor: float
    multiplier: float
    cumulative_probability: float
    n: int
    exceptions: int
    p: float
    expected: float


@dataclass(frozen=True)
class Z2Result:
    """Acerbi-Szekely Z2: ``statistic`` (0 expected under the null, negative when ES is
    underestimated) and its one-sided simulated ``pvalue`` (small = reject)."""

    statistic: float
    pvalue: float
    n: int
    exceptions: int
    p: float
    expected: float
    null: str
    n_sims: int


# ---------------------------------------------------------------- input handling
def _coverage(level: Any, p: Any) -> float:
    if (level is None) == (p is None):
        raise ValueError(f"level/p: got level={level!r}, p={p!r}; pass exactly one: the VaR "
                         "confidence level (e.g. 0.99) or the exception probability p (e.g. 0.01)")
    name, v = ("level", level) if level is not None else ("p", p)
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) or not 0 < v < 1:
        raise ValueError(f"{name}: got {v!r}; pass a probability in (0, 1)")
    return 1.0 - float(v) if name == "level" else float(v)


def _hit_array(exceptions: Any) -> np.ndarray:
    if isinstance(exceptions, (bool, np.bool_)) or np.ndim(exceptions) != 1:
        raise TypeError(f"exceptions: got {type(exceptions).__name__}; pass a 1-D boolean "
                        "Series/array of exceptions (see var_exceptions) or, where allowed, a count")
    arr = np.asarray(exceptions)
    if arr.dtype != bool:
        if not (np.issubdtype(arr.dtype, np.number) and np.isin(arr, (0, 1)).all()):
            raise ValueError("exceptions: values must be booleans or 0/1; build them with "
                             "var_exceptions(returns, var)")
        arr = arr.astype(bool)
    return arr


def _count(exceptions: Any, n: Any) -> tuple[int, int]:
    """(exceptions, observations) from a boolean sequence or from a count plus ``n``."""
    if isinstance(exceptions, (bool, np.bool_)):
        raise TypeError(f"exceptions: got the bool {exceptions!r}; pass a boolean sequence or an "
                        "integer count with n")
    if np.ndim(exceptions) == 0:
        if not isinstance(exceptions, (int, np.integer)) or isinstance(n, bool) or \
                not isinstance(n, (int, np.integer)) or not 0 <= exceptions <= n or n < 1:
            raise ValueError(f"exceptions/n: got {exceptions!r} exceptions in n={n!r} days; pass "
                             "integers with 0 <= exceptions <= n and n >= 1")
        return int(exceptions), int(n)
    if n is not None:
        raise ValueError(f"n: got {n!r} with an exception sequence; n is its length, drop n")
    hits = _hit_array(exceptions)
    if hits.size == 0:
        raise ValueError("exceptions: empty sequence; need at least one observed day")
    return int(hits.sum()), int(hits.size)


def var_exceptions(returns: Any, var: Any) -> pd.Series:
    """Boolean exception series ``returns < -var`` (gains positive, VaR a positive loss).

    Rows where ``var`` is NaN (e.g. the warm-up of :func:`~tickguard.risk.var.rolling_var`) are
    dropped. Two Series must share the same index; arrays must have the same length.
    """
    if isinstance(returns, pd.Series) and isinstance(var, pd.Series):
        if not returns.index.equals(var.index):
            raise ValueError("var: its index differs from returns'; align them first, e.g. "
                             "var.reindex(returns.index)")
    r, v = np.asarray(returns, dtype=float), np.asarray(var, dtype=float)
    if r.ndim != 1 or v.shape != r.shape:
        raise ValueError(f"returns/var: shapes {r.shape} and {v.shape}; pass 1-D of equal length")
    index = returns.index if isinstance(returns, pd.Series) else pd.RangeIndex(r.size)
    keep = np.isfinite(v)
    return pd.Series(r[keep] < -v[keep], index=index[keep], name="exception")


def _chi2_sf(stat: float, df: int) -> float:
    return float(stats.chi2.sf(stat, df))


# ---------------------------------------------------------------- LR tests
def kupiec_pof(exceptions: Any, level: float | None = None, n: int | None = None, *,
               p: float | None = None) -> LRTestResult:
    """Kupiec (1995) proportion-of-failures test of unconditional coverage.

    ``exceptions``: boolean sequence, or an exception count together with ``n`` days.
    ``LR = -2 [ln L(p) - ln L(x/n)]`` with ``ln L(q) = (n-x) ln(1-q) + x ln q`` and 0 ln 0 = 0, so
    zero or all exceptions give finite values; ~ chi2(1) under the null that the hit rate is p.
    """
    q = _coverage(level, p)
    x, nn = _count(exceptions, n)
    phat = x / nn
    ll0 = xlogy(nn - x, 1 - q) + xlogy(x, q)
    ll1 = xlogy(nn - x, 1 - phat) + xlogy(x, phat)
    stat = max(0.0, float(-2.0 * (ll0 - ll1)))  # clip rounding noise at the minimum
    return LRTestResult("kupiec_pof", stat, _chi2_sf(stat, 1), 1, nn, x, q, nn * q)


def _transitions(hits: np.ndarray) -> tuple[int, int, int, int]:
    prev, cur = hits[:-1], hits[1:]
    return (int((~prev & ~cur).sum()), int((~prev & cur).sum()),
            int((prev & ~cur).sum()), int((prev & cur).sum()))


def _independence_stat(t: tuple[int, int, int, int]) -> float:
    n00, n01, n10, n11 = t
    # A state never left (0/0) has no likelihood terms; 0 stands in for its undefined rate.
    p01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    p11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    p1 = (n01 + n11) / (n00 + n01 + n10 + n11)
    ll1 = xlogy(n00, 1 - p01) + xlogy(n01, p01) + xlogy(n10, 1 - p11) + xlogy(n11, p11)
    ll0 = xlogy(n00 + n10, 1 - p1) + xlogy(n01 + n11, p1)
    return max(0.0, float(-2.0 * (ll0 - ll1)))


def christoffersen_independence(exceptions: Any) -> LRTestResult:
    """Christoffersen (1998) test that exceptions are independent (first-order Markov alternative).

    From the n-1 consecutive pairs: ``LR = -2 [ln L(pi) - ln L(pi01, pi11)]`` where pi01 = P(hit |
    no hit yesterday), pi11 = P(hit | hit yesterday), pi the pooled hit rate; ~ chi2(1). 0 ln 0 = 0:
    no exceptions, all exceptions, or no hit-after-hit pairs (n11 = 0) give finite values; a
    sequence with a single hit state throughout gives 0. Needs at least 2 days (one pair).
    """
    hits = _hit_array(exceptions)
    if hits.size < 2:
        raise ValueError(f"exceptions: got {hits.size} day(s); the independence test needs at "
                         "least 2 consecutive days")
    t = _transitions(hits)
    stat = _independence_stat(t)
    return LRTestResult("christoffersen_independence", stat, _chi2_sf(stat, 1), 1, int(hits.size),
                        int(hits.sum()), None, None, t)


def christoffersen_cc(exceptions: Any, level: float | None = None, *,
                      p: float | None = None) -> LRTestResult:
    """Christoffersen conditional-coverage test: ``LR_cc = LR_pof + LR_ind`` ~ chi2(2).

    LR_pof (:func:`kupiec_pof`) uses all n days and LR_ind the n-1 pairs, the usual textbook
    form (Christoffersen's original scores both parts on the n-1 pairs; the two differ by the
    first day's term only). Same 0 ln 0 = 0 convention; needs at least 2 days.
    """
    pof, ind = kupiec_pof(exceptions, level, p=p), christoffersen_independence(exceptions)
    stat = pof.statistic + ind.statistic
    return LRTestResult("christoffersen_cc", stat, _chi2_sf(stat, 2), 2, pof.n, pof.exceptions,
                        pof.p, pof.expected, ind.transitions)


# ---------------------------------------------------------------- Basel traffic light
_GREEN_BELOW, _RED_FROM = 0.95, 0.9999
# Basel Committee (1996), "Supervisory framework for the use of backtesting", Table 2: plus
# factors for 5..9 exceptions in 250 days at 99%.
_BASEL_PLUS = ((5, 0.40), (6, 0.50), (7, 0.65), (8, 0.75), (9, 0.85))
_BASEL_CUM = tuple(float(stats.binom.cdf(k, 250, 0.01)) for k, _ in _BASEL_PLUS)
_TOL = 1e-12  # p = 1 - 0.99 is 0.010000000000000009 in floating point


def traffic_light(exceptions: Any, level: float | None = None, n: int | None = None, *,
                  p: float | None = None) -> TrafficLightResult:
    """Basel traffic-light zone for any number of days, from the Binomial(n, p) distribution.

    cumulative_probability = P(X <= exceptions). Green if < 95%, red if >= 99.99%, else yellow
    (at n = 250, p = 1%: green 0-4, yellow 5-9, red 10+, as in the Basel table). Plus factor:
    0 green, 1.0 red; in yellow, the Basel 250-day factor (0.40, 0.50, 0.65, 0.75, 0.85 for 5..9)
    of the largest k whose 250-day cumulative probability P(X_250 <= k) does not exceed the observed
    one, and 0.40 below P(X_250 <= 5) = 95.88%. This reproduces the table at n = 250 and maps other
    n by probability, not by count. ``exceptions``: boolean sequence, or a count with ``n``.
    """
    q = _coverage(level, p)
    x, nn = _count(exceptions, n)
    cum = float(stats.binom.cdf(x, nn, q))
    if cum < _GREEN_BELOW:
        zone, plus = "green", 0.0
    elif cum >= _RED_FROM:
        zone, plus = "red", 1.0
    else:
        zone, plus = "yellow", _BASEL_PLUS[0][1]
        for (_, factor), threshold in zip(_BASEL_PLUS, _BASEL_CUM):
            if cum >= threshold - _TOL:
                plus = factor
    return TrafficLightResult(zone, plus, 3.0 + plus, cum, nn, x, q, nn * q)


# ---------------------------------------------------------------- Acerbi-Szekely Z2
def _null_loc_scale(var: np.ndarray, es: np.ndarray, a: float, null: str,
                    dof: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Location and scale of the null return distribution whose VaR and ES equal the forecasts."""
    if null == "normal":
        if dof is not None:
            raise ValueError(f"dof: got {dof!r} with null='normal'; drop dof or use null='t'")
        q = float(stats.norm.ppf(1 - a))
        e = float(stats.norm.pdf(q)) / a
    elif null == "t":
        if isinstance(dof, bool) or not isinstance(dof, (int, float)) or not dof > 1:
            raise ValueError(f"dof: got {dof!r}; null='t' needs degrees of freedom > 1 (finite ES)")
        q = float(stats.t.ppf(1 - a, dof))
        e = (dof + q * q) / (dof - 1) * float(stats.t.pdf(q, dof)) / a
    else:
        raise ValueError(f"null: got {null!r}; use 'normal' or 't'")
    # VaR = -loc + scale*q and ES = -loc + scale*e (losses positive) -> solve for loc, scale.
    scale = (es - var) / (e - q)
    return scale * q - var, scale


def es_backtest_z2(returns: Any, var: Any, es: Any, level: float | None = None, *,
                   p: float | None = None, null: str = "normal", dof: float | None = None,
                   n_sims: int = 10_000, seed: Any = 0) -> Z2Result:
    """Acerbi and Szekely (2014) test 2 of Expected Shortfall (gains positive; VaR, ES positive).

    ``Z2 = sum_t X_t I_t / (T * alpha * ES_t) + 1``, I_t = 1{X_t < -VaR_t}, alpha = p; E[Z2] = 0
    when the forecasts are right and Z2 < 0 when tail losses exceed the forecast ES. ``var`` and
    ``es`` are scalars or aligned with ``returns`` (no NaN: drop rolling warm-up rows first).
    P-value by simulation: under the null, X_t = loc_t + scale_t * Z with Z standard ``null``
    ("normal" or "t" with ``dof``), loc/scale solved so that the null's VaR and ES equal the
    forecasts; ``n_sims`` seeded draws of Z2, p-value = (1 + #{Z2_sim <= Z2}) / (n_sims + 1),
    one-sided (small = ES underestimated).
    """
    a = _coverage(level, p)
    x = np.asarray(returns, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"returns: got shape {x.shape}; pass a non-empty 1-D series")
    for name, s in (("var", var), ("es", es)):
        if isinstance(returns, pd.Series) and isinstance(s, pd.Series) and \
                not s.index.equals(returns.index):
            raise ValueError(f"{name}: its index differs from returns'; align them first")
    v, e = (np.broadcast_to(np.asarray(s, dtype=float), x.shape) for s in (var, es))
    if not (np.isfinite(x).all() and np.isfinite(v).all() and np.isfinite(e).all()):
        raise ValueError("returns/var/es: NaN or inf present; drop the rows (e.g. rolling warm-up)")
    if (e <= v).any():
        raise ValueError("es: must exceed var on every row (ES is the mean loss beyond VaR)")
    if isinstance(n_sims, bool) or not isinstance(n_sims, (int, np.integer)) or n_sims < 100:
        raise ValueError(f"n_sims: got {n_sims!r}; pass an int >= 100")
    loc, scale = _null_loc_scale(v, e, a, null, dof)
    denom = x.size * a * e

    def z2(sample: np.ndarray) -> np.ndarray:
        return (np.where(sample < -v, sample, 0.0) / denom).sum(axis=-1) + 1.0

    obs = float(z2(x))
    rng, below, done = np.random.default_rng(seed), 0, 0
    chunk = max(1, 2_000_000 // x.size)  # bound memory at ~16 MB of draws
    while done < n_sims:
        m = min(chunk, n_sims - done)
        zs = rng.standard_normal((m, x.size)) if null == "normal" else rng.standard_t(dof, (m, x.size))
        below += int((z2(loc + scale * zs) <= obs).sum())
        done += m
    hits = int((x < -v).sum())
    return Z2Result(obs, (1 + below) / (n_sims + 1), int(x.size), hits, a, x.size * a, null,
                    int(n_sims))
