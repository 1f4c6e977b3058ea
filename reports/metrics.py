"""Performance and risk metrics of a backtest: the definitions, in one place.

Inputs are the engine's records (``tickguard.engine.records``): times int64 ns UTC, money in the
quote currency. :func:`compute_metrics` returns a flat, JSON-ready dict (plain int/float/str/bool,
NaN and +-inf -> ``None``; ``risk_events_by_rule`` and ``risk_ring_overflows`` are nested
``{name: count}``).

Return metrics are computed on equity resampled to a fixed bar (``freq``), because the engine
samples equity on an event/wall-clock mix: the bar value is the last sample at or before the bar's
end (bars ``(t - freq, t]`` aligned to the epoch); bars with no sample are dropped (``empty="drop"``:
a trading-time clock, so an overnight gap is one bar, not hundreds of zero returns) or carried
forward (``empty="ffill"``). The initial cash is prepended, so the first return is from the start.
``freq="auto"`` picks 1 minute for runs shorter than 30 days, else 1 day.

Annualization: ``periods_per_year = trading_days * hours_per_day * 3600 s / bar`` for bars shorter
than a day (default 252 x 6.5 h: 98 280 one-minute bars), ``trading_days / bar-in-days`` otherwise.
Pass ``trading_days=365, hours_per_day=24`` for markets that never close.

========================  ==========================================================================
key                       definition (r = bar simple returns, N = len(r), P = periods_per_year)
========================  ==========================================================================
start, end, duration_s    first/last equity sample (ISO 8601 UTC) and the seconds between them
total_return              final equity / initial cash - 1;  total_pnl = final equity - initial cash
bar, periods_per_year     the resampling bar and P; n_periods = N (bars after the initial cash)
annualized_return         (1 + total_return) ** (P / N) - 1  (geometric, on the bar clock)
volatility                std(r, ddof=1) * sqrt(P)
sharpe                    mean(r - rf) / std(r, ddof=1) * sqrt(P); rf per bar (default 0);
                          None when N < 2 or r is constant (never +-inf)
sortino                   (mean(r) - T) / TDD * sqrt(P), TDD = sqrt(mean(min(r - T, 0) ** 2)) over all
                          N bars (target downside deviation, Sortino & Price 1994); T per bar,
                          default 0; None when TDD = 0
max_drawdown              max over samples of 1 - equity / running peak (>= 0), on the raw equity
                          samples with the initial cash first; ``_abs`` = peak - trough (currency)
                          of that episode; ``_peak``/``_trough`` its times (ISO); ``_duration_s``
                          from the peak to the recovery (first sample back at the peak) or to the
                          end if ``max_drawdown_recovered`` is false
longest_drawdown_s        longest time from leaving a peak to regaining it (or to the end)
calmar                    annualized_return / max_drawdown (whole run, not the classic 36 months)
exposure_time             share of [start, end] with any non-zero position (fill exchange times)
traded_notional/turnover  sum(qty * price * multiplier); turnover = that / initial cash
n_orders / n_fills        orders submitted (incl. denied/rejected) / fill records (partials count)
n_order_messages          submits + cancel requests + modify requests
order_to_trade            n_order_messages / n_fills
n_denied, n_rejected      OE_DENIED (risk gate) / OE_REJECT (exchange or validation) order events
n_trades, n_open_trades   closed round trips (average-cost episodes, see metrics_trades) / still open
win_rate                  closed trades with net PnL > 0 / closed trades
profit_factor             sum(net PnL of winners) / |sum(net PnL of losers)|; None without losers
expectancy                mean net PnL per closed trade (currency); avg_win / avg_loss likewise
n_winning/losing_trades   closed trades with net PnL > 0 / < 0; trades_gross/net_pnl their sums
avg_holding_s             mean(exit time - entry time) of closed trades, seconds
fees_paid                 sum of fill fees (currency; rebates negative)
maker_share, taker_share  share of traded notional filled as maker / taker
limit_fill_ratio          filled / final size, summed over OT_LIMIT and OT_POST_ONLY orders
slippage_vs_fill_mid_bps  1e4 * sum(side * (price - mid) * qty * mult) / sum(mid * qty * mult), mid
                          = exchange mid at fill time (the records hold no decision-time mid);
                          positive = paid more than mid (a cost); ``_cost`` in currency
risk_events_by_rule       {rule name or "rule_<n>": count}; n_risk_events the total
risk_ring_overflows       {rule id: entries still inside its window that its full ring dropped}
                          (the engine's ``Result.risk_ring_overflows``; empty when none)
========================  ==========================================================================

VaR/ES and their backtests belong to ``tickguard.risk``; pass them through ``extra=``.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Mapping, NamedTuple

import numpy as np
import pandas as pd

from tickguard.engine.records import EQUITY_DTYPE

from .metrics_trades import execution_stats, exposure_time, risk_events_by_rule, round_trips, trade_stats

__all__ = [
    "Drawdown",
    "annualized_return",
    "compute_metrics",
    "max_drawdown",
    "periods_per_year",
    "resample_equity",
    "returns_from_equity",
    "sharpe",
    "sortino",
    "volatility",
]

_DAY_NS = 86_400 * 10**9


def _bar_ns(freq: str) -> int:
    try:
        off = pd.tseries.frequencies.to_offset(freq)
        nanos = int(off.nanos)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"freq: got {freq!r}, which is not a fixed-length bar; use e.g. '1s', "
                         "'1min', '5min', '1h' or '1D'") from exc
    if nanos <= 0:
        raise ValueError(f"freq: got {freq!r}; use a positive bar length such as '1min'")
    return nanos


def periods_per_year(freq: str, *, trading_days: float = 252.0, hours_per_day: float = 6.5) -> float:
    """Bars per year for ``freq``: trading_days x hours_per_day x 3600 s / bar below a day,
    trading_days / (bar in days) from a day up."""
    if not (trading_days > 0 and 0 < hours_per_day <= 24):
        raise ValueError(f"trading_days/hours_per_day: got {trading_days!r}/{hours_per_day!r}; "
                         "use trading_days > 0 and 0 < hours_per_day <= 24")
    nanos = _bar_ns(freq)
    if nanos >= _DAY_NS:
        return trading_days * _DAY_NS / nanos
    return trading_days * hours_per_day * 3600e9 / nanos


def _equity_series(equity: Any) -> pd.Series:
    """EQUITY_DTYPE array, DataFrame with ``ts``/``equity`` columns, or a Series on a DatetimeIndex."""
    if isinstance(equity, np.ndarray) and equity.dtype == EQUITY_DTYPE:
        ts, val = equity["ts"], equity["equity"]
    elif isinstance(equity, pd.DataFrame) and {"ts", "equity"} <= set(equity.columns):
        ts, val = equity["ts"].to_numpy(), equity["equity"].to_numpy()
    elif isinstance(equity, pd.Series) and isinstance(equity.index, pd.DatetimeIndex):
        s = equity.astype(float)
        return s.tz_localize("UTC") if s.index.tz is None else s.tz_convert("UTC")
    else:
        raise TypeError(f"equity: got {type(equity).__name__}; pass result.equity, result.equity_df() "
                        "or a float Series indexed by timestamps")
    idx = pd.to_datetime(np.asarray(ts, dtype=np.int64), unit="ns", utc=True)
    return pd.Series(np.asarray(val, dtype=float), index=idx, name="equity")


def resample_equity(equity: Any, freq: str = "1min", *,
                    empty: Literal["drop", "ffill"] = "drop") -> pd.Series:
    """Equity at the end of each bar ``(t - freq, t]`` (epoch-aligned), labelled by the bar end."""
    if empty not in ("drop", "ffill"):
        raise ValueError(f"empty: got {empty!r}; use 'drop' or 'ffill'")
    _bar_ns(freq)
    s = _equity_series(equity)
    if s.index.has_duplicates or not s.index.is_monotonic_increasing:
        s = s[~s.index.duplicated(keep="last")].sort_index(kind="stable")
    bars = s.resample(freq, label="right", closed="right", origin="epoch").last()
    return bars.dropna() if empty == "drop" else bars.ffill()


def returns_from_equity(equity: Any, freq: str = "1min", *, initial: float | None = None,
                        empty: Literal["drop", "ffill"] = "drop") -> pd.Series:
    """Simple returns of the bar equity; with ``initial`` the first return is from that value."""
    bars = resample_equity(equity, freq, empty=empty)
    vals = bars.to_numpy()
    if initial is not None:
        vals = np.concatenate([[float(initial)], vals])
    bad = ~np.isfinite(vals) | (vals <= 0.0)
    if bad.any():
        raise ValueError(f"equity: got {vals[bad][0]!r}; returns are undefined for non-positive or "
                         "non-finite equity: check the run or its initial cash")
    rets = vals[1:] / vals[:-1] - 1.0
    index = bars.index if initial is not None else bars.index[1:]
    return pd.Series(rets, index=index, name="return")


def _returns(returns: Any) -> np.ndarray:
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1 or np.any(~np.isfinite(r)):
        raise ValueError(f"returns: need a 1-d array of finite values, got shape {r.shape} "
                         "with non-finite entries; drop NaN bars first")
    return r


def volatility(returns: Any, periods_per_year: float) -> float:
    """std(r, ddof=1) x sqrt(periods_per_year); NaN with fewer than 2 returns."""
    r = _returns(returns)
    return float(np.std(r, ddof=1) * math.sqrt(periods_per_year)) if len(r) >= 2 else math.nan


def sharpe(returns: Any, periods_per_year: float, risk_free: float = 0.0) -> float:
    """Annualized Sharpe ratio; ``risk_free`` per bar. NaN (not inf) when undefined."""
    r = _returns(returns) - risk_free
    if len(r) < 2 or np.ptp(r) == 0.0:
        return math.nan
    return float(r.mean() / np.std(r, ddof=1) * math.sqrt(periods_per_year))


def sortino(returns: Any, periods_per_year: float, target: float = 0.0) -> float:
    """Annualized Sortino ratio with target downside deviation over all bars; ``target`` per bar."""
    r = _returns(returns)
    if len(r) < 1:
        return math.nan
    tdd = math.sqrt(np.mean(np.minimum(r - target, 0.0) ** 2))
    if tdd == 0.0:
        return math.nan
    return float((r.mean() - target) / tdd * math.sqrt(periods_per_year))


def annualized_return(total_return: float, n_periods: int, periods_per_year: float) -> float:
    """(1 + total_return) ** (periods_per_year / n_periods) - 1; NaN if n_periods < 1 or
    total_return <= -1; may overflow to +inf for short, profitable runs."""
    if n_periods < 1 or not total_return > -1.0:
        return math.nan
    with np.errstate(over="ignore"):
        return float(np.expm1(np.log1p(total_return) * periods_per_year / n_periods))


class Drawdown(NamedTuple):
    """The deepest drawdown (fraction of the peak, >= 0) and its timing (same units as ``ts``)."""

    depth: float
    depth_abs: float
    peak_ts: int | None
    trough_ts: int | None
    recovery_ts: int | None  # None when not recovered by the end
    duration: int  # peak -> recovery, or peak -> last sample
    longest: int  # longest peak -> recovery (or -> end) of any drawdown


def max_drawdown(equity: Any, ts: Any = None) -> Drawdown:
    """Maximum drawdown of a positive equity path; ``ts`` defaults to 0, 1, 2, ..."""
    v = np.asarray(equity, dtype=float)
    t = np.arange(len(v), dtype=np.int64) if ts is None else np.asarray(ts, dtype=np.int64)
    if v.ndim != 1 or len(t) != len(v):
        raise ValueError(f"max_drawdown: equity shape {v.shape} and ts shape {t.shape} must be equal 1-d")
    if len(v) == 0:
        return Drawdown(0.0, 0.0, None, None, None, 0, 0)
    if np.any(~np.isfinite(v)) or v[0] <= 0.0:
        raise ValueError("max_drawdown: equity must be finite and start positive; "
                         f"got first value {v[0]!r}")
    peak = np.maximum.accumulate(v)
    dd = 1.0 - v / peak
    under = v < peak
    # longest underwater spell: from the last sample at the peak to the first one back at it
    longest = 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], under.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2]):  # runs [a, b) of underwater samples, a >= 1
        longest = max(longest, int(t[min(b, len(v) - 1)] - t[a - 1]))
    trough = int(np.argmax(dd))
    if dd[trough] <= 0.0:
        return Drawdown(0.0, 0.0, None, None, None, 0, longest)
    start = int(np.flatnonzero(~under[: trough + 1])[-1])
    back = np.flatnonzero(v[trough:] >= peak[trough])
    rec = trough + int(back[0]) if len(back) else None
    end = t[rec] if rec is not None else t[-1]
    return Drawdown(float(dd[trough]), float(peak[trough] - v[trough]), int(t[start]), int(t[trough]),
                    None if rec is None else int(t[rec]), int(end - t[start]), longest)


def _iso(ns: int | None) -> str | None:
    return None if ns is None else pd.Timestamp(int(ns), unit="ns", tz="UTC").isoformat()


def _clean(value: Any) -> Any:
    """JSON-ready: numpy scalars -> Python, NaN/inf -> None, dicts recursively."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"metrics: value {value!r} of type {type(value).__name__} is not JSON-ready; "
                    "pass plain numbers, strings or dicts of them")


def _return_metrics(result: Any, freq: str, ppy: float | None, trading_days: float,
                    hours_per_day: float, risk_free: float, target: float) -> dict[str, Any]:
    eq = result.equity
    initial = float(result.config.initial_cash)
    final = float(eq["equity"][-1]) if len(eq) else initial
    out: dict[str, Any] = {"initial_cash": initial, "final_equity": final, "total_pnl": final - initial,
                           "total_return": final / initial - 1.0 if initial > 0 else math.nan}
    if len(eq):
        t0, t1 = int(eq["ts"][0]), int(eq["ts"][-1])
        out.update(start=_iso(t0), end=_iso(t1), duration_s=(t1 - t0) / 1e9)
    else:
        out.update(start=None, end=None, duration_s=0.0)
    if freq == "auto":
        freq = "1min" if not len(eq) or eq["ts"][-1] - eq["ts"][0] < 30 * _DAY_NS else "1D"
    p = periods_per_year(freq, trading_days=trading_days, hours_per_day=hours_per_day) if ppy is None else ppy
    out.update(bar=freq, periods_per_year=p)
    keys = ("n_periods", "annualized_return", "volatility", "sharpe", "sortino", "max_drawdown",
            "max_drawdown_abs", "max_drawdown_peak", "max_drawdown_trough", "max_drawdown_duration_s",
            "max_drawdown_recovered", "longest_drawdown_s", "calmar")
    out.update(dict.fromkeys(keys))
    if not len(eq) or initial <= 0 or np.any(eq["equity"] <= 0) or not np.all(np.isfinite(eq["equity"])):
        return out  # no samples, or non-positive equity: return ratios undefined (left None)
    rets = returns_from_equity(eq, freq, initial=initial).to_numpy()
    ann = annualized_return(out["total_return"], len(rets), p)
    dd = max_drawdown(np.concatenate([[initial], eq["equity"]]), np.concatenate([eq["ts"][:1], eq["ts"]]))
    out.update(
        n_periods=len(rets), annualized_return=ann, volatility=volatility(rets, p),
        sharpe=sharpe(rets, p, risk_free), sortino=sortino(rets, p, target),
        max_drawdown=dd.depth, max_drawdown_abs=dd.depth_abs, max_drawdown_peak=_iso(dd.peak_ts),
        max_drawdown_trough=_iso(dd.trough_ts), max_drawdown_duration_s=dd.duration / 1e9,
        max_drawdown_recovered=dd.recovery_ts is not None or dd.depth == 0.0,
        longest_drawdown_s=dd.longest / 1e9,
        calmar=ann / dd.depth if dd.depth > 0 else math.nan,
    )
    return out


def compute_metrics(
    result: Any,
    *,
    freq: str = "auto",
    periods_per_year: float | None = None,
    trading_days: float = 252.0,
    hours_per_day: float = 6.5,
    risk_free: float = 0.0,
    target: float = 0.0,
    rule_names: Mapping[int, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """All metrics of the module table for an engine ``Result``, as a JSON-ready flat dict.

    ``periods_per_year`` overrides the value derived from ``freq``/``trading_days``/``hours_per_day``;
    ``risk_free`` and ``target`` are per bar. ``extra`` (e.g. VaR/ES from ``tickguard.risk``) is
    merged in; a key that clashes with a metric raises ValueError.
    """
    if periods_per_year is not None and not periods_per_year > 0:
        raise ValueError(f"periods_per_year: got {periods_per_year!r}; use a value > 0 or None")
    mult = result.instruments.dense_arrays()["multiplier"] if len(result.instruments) else None
    out = _return_metrics(result, freq, periods_per_year, trading_days, hours_per_day, risk_free, target)
    fills, eq = result.fills, result.equity
    out["exposure_time"] = (exposure_time(fills["ts"], fills["instrument"], fills["position"],
                                          int(eq["ts"][0]), int(eq["ts"][-1])) if len(eq) else math.nan)
    out.update(execution_stats(fills, result.orders, result.order_events, mult,
                               float(result.config.initial_cash)))
    out.update(trade_stats(round_trips(fills, mult)))
    out["n_risk_events"] = int(len(result.risk_events))
    out["risk_events_by_rule"] = risk_events_by_rule(result.risk_events, rule_names)
    out["risk_ring_overflows"] = dict(getattr(result, "risk_ring_overflows", {}))
    for key, value in (extra or {}).items():
        if key in out:
            raise ValueError(f"extra: key {key!r} clashes with a built-in metric; rename it "
                             "(e.g. prefix it with its source, 'var_')")
        out[key] = value
    return _clean(out)
