"""Offline Value-at-Risk and Expected Shortfall from a return or P&L series.

Sign convention (every function here): the input is P&L or returns with **gains positive**; VaR and
ES come back as **positive losses** in the input's units (fraction of value for returns, currency
for P&L). With ``alpha = 1 - level``::

    VaR_level = -quantile_alpha(X)            ES_level = -E[X | X <= quantile_alpha(X)]

so a 99% VaR of 0.03 means "a loss of 3% or more on 1% of days". ``level`` is the confidence in
(0, 1). ``horizon`` (days, int >= 1) scales the one-day figure by ``sqrt(horizon)``: exact only for
zero-mean i.i.d. normal returns, an approximation otherwise (it ignores drift, the fattening or
thinning of tails under aggregation, and volatility clustering).

``rolling_var`` / ``rolling_es`` give out-of-sample forecasts: the value at row t uses only rows
strictly before t.
"""

from __future__ import annotations

import difflib
import math
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy import stats
from scipy.signal import lfilter

__all__ = [
    "cornish_fisher_es", "cornish_fisher_var", "ewma_es", "ewma_var", "ewma_variance", "fhs_es",
    "fhs_var", "historical_es", "historical_var", "monte_carlo_es", "monte_carlo_var",
    "parametric_es", "parametric_var", "rolling_es", "rolling_var",
]

_FHS_MIN_OBS = 100  # GARCH(1,1) maximum likelihood on fewer points is too unstable to trust


# ---------------------------------------------------------------- validation
def _returns(x: Any, name: str = "returns", min_obs: int = 2) -> np.ndarray:
    if isinstance(x, (str, bytes)) or np.ndim(x) != 1:
        raise TypeError(f"{name}: got {type(x).__name__} with ndim={np.ndim(x)}; "
                        "pass a 1-D pandas Series or numpy array of returns/P&L")
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: values are not numeric ({exc}); pass floats") from None
    bad = int((~np.isfinite(arr)).sum())
    if bad:
        raise ValueError(f"{name}: {bad} NaN/inf value(s) among {arr.size}; "
                         "drop them first, e.g. returns.dropna()")
    if arr.size < min_obs:
        raise ValueError(f"{name}: got {arr.size} observation(s); need at least {min_obs}")
    return arr


def _level(level: Any) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating, np.integer)):
        raise TypeError(f"level: got {level!r} ({type(level).__name__}); pass a float such as 0.99")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level: got {level!r}; the confidence must lie in (0, 1), e.g. 0.99")
    return float(level)


def _horizon(h: Any) -> float:
    if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1:
        raise ValueError(f"horizon: got {h!r}; pass a whole number of days >= 1")
    return math.sqrt(int(h))


def _tail_mean(x: np.ndarray, q: float) -> float:
    # Observations at or below the quantile; never empty because q >= min(x) for every method.
    return float(x[x <= q].mean())


# ---------------------------------------------------------------- historical
def historical_var(returns: Any, level: float = 0.99, *, horizon: int = 1,
                   method: str = "linear") -> float:
    """Historical-simulation VaR (positive loss; gains positive in ``returns``).

    ``-np.quantile(returns, 1 - level, method=method) * sqrt(horizon)``. The default ``"linear"``
    (Hyndman-Fan type 7, also pandas' default) interpolates between order statistics; pass e.g.
    ``"inverted_cdf"`` for the plain empirical quantile (an actual observed loss).
    """
    x, a = _returns(returns), 1.0 - _level(level)
    return float(-np.quantile(x, a, method=method)) * _horizon(horizon)


def historical_es(returns: Any, level: float = 0.99, *, horizon: int = 1,
                  method: str = "linear") -> float:
    """Historical ES (positive loss; gains positive): minus the mean of the returns at or below the
    ``1 - level`` quantile (same ``method`` as :func:`historical_var`), times ``sqrt(horizon)``."""
    x, a = _returns(returns), 1.0 - _level(level)
    return -_tail_mean(x, float(np.quantile(x, a, method=method))) * _horizon(horizon)


# ---------------------------------------------------------------- parametric
def _t_params(x: np.ndarray, dof: float | None) -> tuple[float, float, float]:
    """(dof, loc, scale) of the Student-t. Fitted: scipy's MLE of all three. Given ``dof`` (> 2):
    loc = sample mean and scale = s * sqrt((dof - 2) / dof), so the t's variance equals the
    sample variance s**2 (ddof=1)."""
    if dof is None:
        nu, loc, scale = stats.t.fit(x)
        return float(nu), float(loc), float(scale)
    if isinstance(dof, bool) or not isinstance(dof, (int, float, np.number)) or not dof > 2:
        raise ValueError(f"dof: got {dof!r}; pass degrees of freedom > 2 (finite variance) or None "
                         "to fit them")
    return float(dof), float(x.mean()), float(x.std(ddof=1) * math.sqrt((dof - 2.0) / dof))


def _parametric(returns: Any, level: float, dist: str, dof: float | None, es: bool) -> float:
    x, lev = _returns(returns), _level(level)
    a = 1.0 - lev
    if dist == "normal":
        if dof is not None:
            raise ValueError(f"dof: got {dof!r} with dist='normal'; drop dof or use dist='t'")
        mu, s, z = float(x.mean()), float(x.std(ddof=1)), float(stats.norm.ppf(lev))
        return -mu + s * (float(stats.norm.pdf(z)) / a if es else z)
    if dist == "t":
        nu, loc, scale = _t_params(x, dof)
        q = float(stats.t.ppf(lev, nu))
        if not es:
            return -loc + scale * q
        if nu <= 1.0:
            raise ValueError(f"dof: fitted t has dof={nu:.3g} <= 1, whose ES is infinite; pass dof>2")
        # Closed form for the standard t's lower-tail mean: (nu + q^2)/(nu - 1) * pdf(q) / alpha.
        return -loc + scale * (nu + q * q) / (nu - 1.0) * float(stats.t.pdf(q, nu)) / a
    raise ValueError(f"dist: got {dist!r}; use 'normal' or 't'")


def parametric_var(returns: Any, level: float = 0.99, *, dist: str = "normal",
                   dof: float | None = None, horizon: int = 1) -> float:
    """Parametric VaR (positive loss; gains positive): ``-(loc + scale * F^-1(1 - level))``.

    ``dist="normal"``: loc = sample mean, scale = sample std (ddof=1). ``dist="t"``: Student-t with
    ``dof`` given (loc/scale matched to the sample mean and variance, dof > 2) or, when ``dof`` is
    None, dof, loc and scale fitted jointly by ``scipy.stats.t.fit`` (MLE; no variance matching).
    """
    return _parametric(returns, level, dist, dof, es=False) * _horizon(horizon)


def parametric_es(returns: Any, level: float = 0.99, *, dist: str = "normal",
                  dof: float | None = None, horizon: int = 1) -> float:
    """Parametric ES (positive loss; gains positive), in closed form. Normal:
    ``-mu + s * pdf(z) / alpha``; Student-t: ``-loc + scale * (dof + q^2) / (dof - 1) * t.pdf(q) /
    alpha`` with ``q = t.ppf(level, dof)``. Same fitting rules as :func:`parametric_var`."""
    return _parametric(returns, level, dist, dof, es=True) * _horizon(horizon)


# ---------------------------------------------------------------- EWMA (RiskMetrics)
def ewma_variance(returns: Any, lam: float = 0.94) -> np.ndarray:
    """RiskMetrics zero-mean EWMA variance forecasts (squared input units).

    Element t is the forecast for t+1 made with returns 0..t: ``v_t = lam * v_{t-1} + (1 - lam) *
    r_t**2``, seeded with ``v_0 = r_0**2`` (the same recursion as pandas
    ``(r**2).ewm(alpha=1 - lam, adjust=False).mean()``). The seed's weight after n returns is
    ``lam**(n-1)`` (2e-7 after 250 days at 0.94), so its choice fades fast.
    """
    x = _returns(returns, min_obs=1)
    if isinstance(lam, bool) or not isinstance(lam, (int, float, np.floating)) or not 0 < lam < 1:
        raise ValueError(f"lam: got {lam!r}; the decay must lie in (0, 1), RiskMetrics uses 0.94")
    r2 = x * x
    return lfilter([1.0 - lam], [1.0, -lam], r2, zi=[lam * r2[0]])[0]


def ewma_var(returns: Any, level: float = 0.99, *, lam: float = 0.94, horizon: int = 1) -> float:
    """EWMA (RiskMetrics) VaR, zero mean, normal (positive loss; gains positive):
    ``sigma_{T+1} * norm.ppf(level) * sqrt(horizon)`` with sigma from :func:`ewma_variance`."""
    lev = _level(level)
    s = math.sqrt(ewma_variance(returns, lam)[-1])
    return s * float(stats.norm.ppf(lev)) * _horizon(horizon)


def ewma_es(returns: Any, level: float = 0.99, *, lam: float = 0.94, horizon: int = 1) -> float:
    """EWMA (RiskMetrics) ES, zero mean, normal (positive loss; gains positive):
    ``sigma_{T+1} * norm.pdf(z) / (1 - level) * sqrt(horizon)``, z = norm.ppf(level)."""
    lev = _level(level)
    s = math.sqrt(ewma_variance(returns, lam)[-1])
    return s * float(stats.norm.pdf(stats.norm.ppf(lev))) / (1.0 - lev) * _horizon(horizon)


# ---------------------------------------------------------------- Cornish-Fisher
def _cf_z(z: np.ndarray | float, s: float, k: float) -> np.ndarray | float:
    """Cornish-Fisher quantile of a standardized variable (skew s, excess kurtosis k) at normal z."""
    return z + (z**2 - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s * s / 36


def _cf(returns: Any, level: float, es: bool) -> float:
    x, lev = _returns(returns, min_obs=4), _level(level)
    a = 1.0 - lev
    mu, sd = float(x.mean()), float(x.std(ddof=1))
    s, k = float(stats.skew(x, bias=False)), float(stats.kurtosis(x, fisher=True, bias=False))
    c = float(stats.norm.ppf(a))
    if not es:
        return -(mu + sd * float(_cf_z(c, s, k)))
    # E[z_cf(Z); Z <= c] from the truncated normal moments I_k = int_{-inf}^c x^k phi(x) dx.
    f = float(stats.norm.pdf(c))
    i0, i1, i2, i3 = a, -f, a - c * f, -(c * c + 2) * f
    tail = i1 + s / 6 * (i2 - i0) + k / 24 * (i3 - 3 * i1) - s * s / 36 * (2 * i3 - 5 * i1)
    return -(mu + sd * tail / a)


def cornish_fisher_var(returns: Any, level: float = 0.99, *, horizon: int = 1) -> float:
    """Modified (Cornish-Fisher) VaR (positive loss; gains positive): ``-(mu + s * z_cf)`` with
    ``z_cf = z + (z^2-1)S/6 + (z^3-3z)K/24 - (2z^3-5z)S^2/36``, z = norm.ppf(1 - level), S and K
    the bias-corrected sample skewness and excess kurtosis (scipy ``bias=False``), s with ddof=1.
    The expansion is only monotone for moderate S, K; extreme values give meaningless quantiles."""
    return _cf(returns, level, es=False) * _horizon(horizon)


def cornish_fisher_es(returns: Any, level: float = 0.99, *, horizon: int = 1) -> float:
    """Cornish-Fisher ES (positive loss; gains positive): the mean of the CF quantile function over
    the tail, ``-(mu + s / alpha * int_0^alpha z_cf(Phi^-1(u)) du)``, integrated in closed form via
    truncated normal moments (no numerical quadrature). Equals the normal ES when S = K = 0."""
    return _cf(returns, level, es=True) * _horizon(horizon)


# ---------------------------------------------------------------- Monte Carlo
def _mc_pnl(returns: Any, mean: Any, cov: Any, weights: Any, n_sims: int, seed: Any) -> np.ndarray:
    if isinstance(n_sims, bool) or not isinstance(n_sims, (int, np.integer)) or n_sims < 100:
        raise ValueError(f"n_sims: got {n_sims!r}; pass an int >= 100 (tail quantiles need many draws)")
    rng = np.random.default_rng(seed)
    multi = (mean, cov, weights)
    if returns is not None:
        if any(m is not None for m in multi):
            raise ValueError("returns: given together with mean/cov/weights; pass either a return "
                             "series (fitted normal) or mean, cov and weights (multi-asset)")
        x = _returns(returns)
        return float(x.mean()) + float(x.std(ddof=1)) * rng.standard_normal(n_sims)
    if any(m is None for m in multi):
        raise ValueError("mean/cov/weights: multi-asset mode needs all three (returns is None)")
    mu, sig, w = (np.asarray(v, dtype=float) for v in multi)
    k = mu.shape[0] if mu.ndim == 1 else -1
    if k < 1 or sig.shape != (k, k) or w.shape != (k,):
        raise ValueError(f"mean/cov/weights: shapes {mu.shape}, {sig.shape}, {w.shape}; need (k,), "
                         "(k, k), (k,)")
    if not np.allclose(sig, sig.T) or np.linalg.eigvalsh(sig).min() < -1e-12 * np.abs(sig).max():
        raise ValueError("cov: not a symmetric positive semi-definite matrix; check its entries")
    # Asset returns ~ MVN(mean, cov); portfolio P&L = returns @ weights (weights = value held).
    return rng.multivariate_normal(mu, sig, size=n_sims) @ w


def monte_carlo_var(returns: Any = None, level: float = 0.99, *, mean: Any = None, cov: Any = None,
                    weights: Any = None, n_sims: int = 100_000, seed: Any = 0,
                    horizon: int = 1) -> float:
    """Monte-Carlo VaR (positive loss; gains positive), seeded by ``seed``.

    One series: draws from a normal with the sample mean and std (ddof=1). Multi-asset
    (``returns=None``): draws asset returns from N(``mean``, ``cov``) and values them with
    ``weights`` (money held per asset), so the VaR is in money. Then the historical VaR (linear
    quantile) of the ``n_sims`` simulated P&L, times ``sqrt(horizon)``.
    """
    lev = _level(level)
    pnl = _mc_pnl(returns, mean, cov, weights, n_sims, seed)
    return float(-np.quantile(pnl, 1.0 - lev)) * _horizon(horizon)


def monte_carlo_es(returns: Any = None, level: float = 0.99, *, mean: Any = None, cov: Any = None,
                   weights: Any = None, n_sims: int = 100_000, seed: Any = 0,
                   horizon: int = 1) -> float:
    """Monte-Carlo ES (positive loss; gains positive): minus the mean simulated P&L at or below the
    simulated ``1 - level`` quantile. Same simulation as :func:`monte_carlo_var`."""
    lev = _level(level)
    pnl = _mc_pnl(returns, mean, cov, weights, n_sims, seed)
    return -_tail_mean(pnl, float(np.quantile(pnl, 1.0 - lev))) * _horizon(horizon)


# ---------------------------------------------------------------- filtered historical simulation
def _fhs_state(x: np.ndarray, mean: str, scale: float,
               params: pd.Series | None = None) -> tuple[float, float, np.ndarray, pd.Series]:
    """GARCH(1,1) on ``x * scale``: (mean forecast, sigma forecast, standardized residuals, params),
    all back in input units except the residuals. With ``params`` the model is filtered, not fitted."""
    if mean not in ("constant", "zero"):
        raise ValueError(f"mean: got {mean!r}; use 'constant' or 'zero'")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise ValueError(f"scale: got {scale!r}; pass a positive multiplier (100 for daily returns)")
    from arch import arch_model  # imported here: it adds ~1 s to importing this module

    # arch's optimizer is tuned for data with a std around 1-30 (percent returns), hence `scale`.
    # arch's ConvergenceWarning and DataScaleWarning (a `scale` unsuited to the data) are left
    # visible on purpose: a failed or badly scaled fit must not pass silently.
    am = arch_model(x * scale, mean="Constant" if mean == "constant" else "Zero",
                    vol="GARCH", p=1, q=1, dist="normal")
    res = am.fit(disp="off") if params is None else am.fix(params)
    fc = res.forecast(horizon=1, reindex=False)
    mu = float(fc.mean.to_numpy()[-1, 0]) / scale
    sigma = math.sqrt(float(fc.variance.to_numpy()[-1, 0])) / scale
    z = np.asarray(res.std_resid, dtype=float)
    return mu, sigma, z[np.isfinite(z)], res.params


def _fhs(returns: Any, level: float, mean: str = "constant", scale: float = 100.0,
         es: bool = False, params: pd.Series | None = None) -> tuple[float, pd.Series]:
    x, a = _returns(returns, min_obs=_FHS_MIN_OBS), 1.0 - _level(level)
    mu, sigma, z, fitted = _fhs_state(x, mean, scale, params)
    qz = float(np.quantile(z, a))
    return -(mu + sigma * (_tail_mean(z, qz) if es else qz)), fitted


def fhs_var(returns: Any, level: float = 0.99, *, mean: str = "constant", scale: float = 100.0,
            horizon: int = 1) -> float:
    """Filtered historical simulation VaR (positive loss; gains positive).

    Fits GARCH(1,1) with normal quasi-likelihood (``arch``; ``mean`` "constant" or "zero") to
    ``returns * scale``; VaR = ``-(mu_{T+1} + sigma_{T+1} * q)`` where q is the linear empirical
    ``1 - level`` quantile of the standardized residuals, scaled back to input units and by
    ``sqrt(horizon)``. Needs at least 100 observations.
    """
    return _fhs(returns, level, mean, scale, es=False)[0] * _horizon(horizon)


def fhs_es(returns: Any, level: float = 0.99, *, mean: str = "constant", scale: float = 100.0,
           horizon: int = 1) -> float:
    """Filtered historical simulation ES (positive loss; gains positive): as :func:`fhs_var` with q
    replaced by the mean of the standardized residuals at or below their ``1 - level`` quantile."""
    return _fhs(returns, level, mean, scale, es=True)[0] * _horizon(horizon)


# ---------------------------------------------------------------- rolling out-of-sample
_METHODS: dict[str, tuple[Callable[..., float], Callable[..., float]]] = {
    "historical": (historical_var, historical_es), "parametric": (parametric_var, parametric_es),
    "ewma": (ewma_var, ewma_es), "cornish_fisher": (cornish_fisher_var, cornish_fisher_es),
    "monte_carlo": (monte_carlo_var, monte_carlo_es), "fhs": (fhs_var, fhs_es),
}


def _rolling(returns: Any, method: str, window: int, level: float, refit_every: int | None,
             es: bool, kw: dict[str, Any]) -> pd.Series:
    if method not in _METHODS:
        near = difflib.get_close_matches(str(method), list(_METHODS), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ValueError(f"method: got {method!r}; use one of {sorted(_METHODS)}{hint}")
    x = _returns(returns)
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or not 2 <= window < x.size:
        raise ValueError(f"window: got {window!r}; pass an int in [2, len(returns)={x.size})")
    if refit_every is not None and (method != "fhs" or not isinstance(refit_every, int)
                                    or refit_every < 1):
        raise ValueError(f"refit_every: got {refit_every!r} for method {method!r}; it is an int >= 1 "
                         "and only applies to method='fhs'")
    lev, out = _level(level), np.full(x.size, np.nan)
    if method == "fhs":
        # Parameters refitted every `refit_every` forecasts (default: every one); in between, the
        # last parameters filter the current window, so sigma still reacts to each new return.
        h = _horizon(kw.pop("horizon", 1))
        every, params = refit_every or 1, None
        for t in range(window, x.size):
            fixed = None if (t - window) % every == 0 else params
            out[t], params = _fhs(x[t - window:t], lev, es=es, params=fixed, **kw)
        out *= h
    else:
        fn = _METHODS[method][1 if es else 0]
        for t in range(window, x.size):
            out[t] = fn(x[t - window:t], lev, **kw)  # rows t-window .. t-1: strictly before t
    index = returns.index if isinstance(returns, pd.Series) else pd.RangeIndex(x.size)
    return pd.Series(out, index=index, name=f"{method}_{'es' if es else 'var'}_{lev:g}")


def rolling_var(returns: Any, method: str, window: int, level: float = 0.99, *,
                refit_every: int | None = None, **kw: Any) -> pd.Series:
    """Out-of-sample VaR forecasts (positive losses; gains positive in ``returns``).

    Row t holds ``<method>_var(returns[t-window:t], level, **kw)``: only rows strictly before t,
    so the first ``window`` rows are NaN. ``method`` is one of "historical", "parametric", "ewma",
    "cornish_fisher", "monte_carlo", "fhs"; ``kw`` goes to that function (e.g. ``dist="t"``).
    ``refit_every`` (fhs only): refit GARCH every k rows and filter with the last parameters in
    between. Keeps the input's index when given a Series.
    """
    return _rolling(returns, method, window, level, refit_every, False, dict(kw))


def rolling_es(returns: Any, method: str, window: int, level: float = 0.99, *,
               refit_every: int | None = None, **kw: Any) -> pd.Series:
    """Out-of-sample ES forecasts (positive losses; gains positive); same alignment and arguments
    as :func:`rolling_var`."""
    return _rolling(returns, method, window, level, refit_every, True, dict(kw))
