"""Causal tick features and dead-zone direction labels for one instrument.

Everything here is computed from the events of one instrument (its *stream*: the rows of that
instrument, in array order). Horizons and windows count events of that stream. The public
functions return arrays aligned to the full event array; rows of other instruments are NaN.

Mid price: only rows with ``kind & KIND_QUOTE`` carry a book. The mid of a quote row is
``(bid_px + ask_px) / 2`` when both sides are finite; every other row (trades, depth updates,
one-sided quotes) carries forward the last two-sided mid, NaN before the first one. The spread and
L1 sizes used by OFI and the spread feature come from the last quote row as it is (an empty side
gives NaN).

Features (columns of :func:`compute_features`), value at stream row ``i`` uses rows ``0..i`` only:

* ``ret_{h}``: log mid return ``log(mid[i] / mid[i-h])``; NaN while ``i < h``.
* ``rv_{w}``: realized volatility ``sqrt(sum_{j=i-w+1..i} ret_1[j]**2)`` (log-return units, not
  annualised); NaN while ``i < w``.
* ``ofi_{w}``: Cont, Kukanov & Stoikov (2014, J. Financial Econometrics 12(1), eq. 10) order-flow
  imbalance summed over the last ``w`` rows, in units of the instrument (shares). Per row
  ``e = 1{Pb>=Pb'}qb - 1{Pb<=Pb'}qb' - 1{Pa<=Pa'}qa + 1{Pa>=Pa'}qa'`` where primes are the L1 state
  after the previous row; positive = net buying pressure. A side that is empty (NaN price or
  size) before or after the row contributes 0; NaN while ``i < w``.
* ``imbalance``: L1 queue imbalance ``(qb - qa) / (qb + qa)`` in [-1, 1].
* ``spread_rel``: ``(ask - bid) / mid`` (dimensionless).
* ``tod_sin``, ``tod_cos``: time of day of ``ts_local`` (UTC) on the unit circle, period 86 400 s.

Labels (:func:`direction_labels`): ``d = mid[i+h] - mid[i]`` (price units). The dead zone is half
the spread at row ``i`` (or a fixed ``threshold`` in price units): ``label = sign(d)`` when
``|d| > dead_zone`` else 0 ("no tradable move"; learners drop these rows); NaN where ``i + h`` is
past the end or a mid is unknown. Labels look ``h`` rows ahead by design: only use a label once
row ``i + h`` is in the past (see :mod:`tickguard.strategies.walkforward`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tickguard.data.schema import EVENT_DTYPE, KIND_QUOTE

__all__ = [
    "FeatureConfig",
    "compute_features",
    "direction_labels",
    "l1_state",
    "mid_price",
    "ofi_increments",
    "realized_vol",
    "stream_features",
    "stream_index",
]

_NS_PER_DAY = 86_400 * 1_000_000_000


def _check_events(events: np.ndarray) -> None:
    if not isinstance(events, np.ndarray) or events.dtype != EVENT_DTYPE:
        got = events.dtype if isinstance(events, np.ndarray) else type(events).__name__
        raise TypeError(f"events must be an EVENT_DTYPE array, got {got}; "
                        "read data with tickguard.data loaders")


def _check_positive_ints(name: str, values: tuple[int, ...] | int) -> None:
    for v in np.atleast_1d(values):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be ints >= 1, got {values!r}; pass e.g. (1, 5, 20)")


def stream_index(events: np.ndarray, instrument: int = 0) -> np.ndarray:
    """Positions (int64) of ``instrument``'s rows in ``events``: its stream."""
    _check_events(events)
    return np.flatnonzero(events["instrument"] == instrument)


def _last_quote_row(stream: np.ndarray) -> np.ndarray:
    """For each row, the position of the last quote row at or before it (-1 if none)."""
    is_quote = (stream["kind"] & KIND_QUOTE) != 0
    pos = np.where(is_quote, np.arange(len(stream)), -1)
    return np.maximum.accumulate(pos) if len(pos) else pos


def l1_state(stream: np.ndarray) -> dict[str, np.ndarray]:
    """bid/ask price and size after each row of a one-instrument stream, from its last quote row."""
    _check_events(stream)
    last = _last_quote_row(stream)
    out = {}
    for name in ("bid_px", "bid_sz", "ask_px", "ask_sz"):
        col = np.where(last >= 0, stream[name][np.maximum(last, 0)], np.nan)
        out[name] = col.astype(np.float64)
    return out


def mid_price(stream: np.ndarray) -> np.ndarray:
    """Mid after each row of a one-instrument stream: last two-sided quote mid, forward-filled."""
    _check_events(stream)
    is_quote = (stream["kind"] & KIND_QUOTE) != 0
    mid = np.where(is_quote, 0.5 * (stream["bid_px"] + stream["ask_px"]), np.nan)
    return pd.Series(mid).ffill().to_numpy(dtype=np.float64)


def ofi_increments(stream: np.ndarray) -> np.ndarray:
    """Per-row OFI contribution ``e`` [units] (see module docstring); NaN on row 0."""
    s = l1_state(stream)
    pb, qb, pa, qa = s["bid_px"], s["bid_sz"], s["ask_px"], s["ask_sz"]
    e = np.full(len(stream), np.nan)
    if len(stream) < 2:
        return e
    pb0, qb0, pa0, qa0 = pb[:-1], qb[:-1], pa[:-1], qa[:-1]
    pb1, qb1, pa1, qa1 = pb[1:], qb[1:], pa[1:], qa[1:]
    with np.errstate(invalid="ignore"):
        bid = (pb1 >= pb0) * qb1 - (pb1 <= pb0) * qb0
        ask = (pa1 >= pa0) * qa0 - (pa1 <= pa0) * qa1
    # a side that is empty (NaN price or size) before or after contributes nothing
    e[1:] = np.where(np.isfinite(bid), bid, 0.0) + np.where(np.isfinite(ask), ask, 0.0)
    return e


def _log_returns(mid: np.ndarray, h: int) -> np.ndarray:
    m = np.where(mid > 0, mid, np.nan)  # log returns need positive mids
    out = np.full(len(mid), np.nan)
    # log1p of the relative change: a few ulps, where log(a) - log(b) cancels ~1e-13 away
    out[h:] = np.log1p((m[h:] - m[:-h]) / m[:-h])
    return out


def realized_vol(stream: np.ndarray, window: int) -> np.ndarray:
    """``rv_{window}`` of a one-instrument stream (see module docstring)."""
    _check_positive_ints("window", window)
    r2 = _log_returns(mid_price(stream), 1) ** 2
    return np.sqrt(pd.Series(r2).rolling(window, min_periods=window).sum().to_numpy())


@dataclass(frozen=True)
class FeatureConfig:
    """Which features :func:`compute_features` builds (horizons and windows in stream events)."""

    return_horizons: tuple[int, ...] = (1, 5, 20, 100)
    vol_windows: tuple[int, ...] = (20, 200)
    ofi_windows: tuple[int, ...] = (10, 100)
    imbalance: bool = True
    spread: bool = True
    time_of_day: bool = True

    def __post_init__(self) -> None:
        for name in ("return_horizons", "vol_windows", "ofi_windows"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
            _check_positive_ints(f"FeatureConfig.{name}", getattr(self, name))
        if not self.names():
            raise ValueError("FeatureConfig selects no feature; keep at least one horizon, window or flag")

    @property
    def warmup(self) -> int:
        """Stream rows before every column can be finite (given quotes from row 0)."""
        return max((*self.return_horizons, *self.vol_windows, *self.ofi_windows, 0))

    def names(self) -> list[str]:
        cols = [f"ret_{h}" for h in self.return_horizons] + [f"rv_{w}" for w in self.vol_windows]
        cols += [f"ofi_{w}" for w in self.ofi_windows]
        cols += ["imbalance"] * self.imbalance + ["spread_rel"] * self.spread
        return cols + ["tod_sin", "tod_cos"] * self.time_of_day


def stream_features(stream: np.ndarray, cfg: FeatureConfig) -> dict[str, np.ndarray]:
    """Feature columns (name -> float64[len(stream)]) of a one-instrument stream."""
    mid = mid_price(stream)
    out: dict[str, np.ndarray] = {}
    for h in cfg.return_horizons:
        out[f"ret_{h}"] = _log_returns(mid, h)
    r2 = pd.Series(_log_returns(mid, 1) ** 2)
    for w in cfg.vol_windows:
        out[f"rv_{w}"] = np.sqrt(r2.rolling(w, min_periods=w).sum().to_numpy())
    e = pd.Series(ofi_increments(stream))
    for w in cfg.ofi_windows:
        out[f"ofi_{w}"] = e.rolling(w, min_periods=w).sum().to_numpy()
    s = l1_state(stream)
    with np.errstate(invalid="ignore", divide="ignore"):
        if cfg.imbalance:
            out["imbalance"] = (s["bid_sz"] - s["ask_sz"]) / (s["bid_sz"] + s["ask_sz"])
        if cfg.spread:
            out["spread_rel"] = (s["ask_px"] - s["bid_px"]) / mid
    if cfg.time_of_day:
        angle = (2.0 * np.pi / _NS_PER_DAY) * (stream["ts_local"] % _NS_PER_DAY).astype(np.float64)
        out["tod_sin"], out["tod_cos"] = np.sin(angle), np.cos(angle)
    return {k: np.where(np.isfinite(v), v, np.nan) for k, v in out.items()}


def compute_features(events: np.ndarray, config: FeatureConfig | None = None,
                     instrument: int = 0) -> pd.DataFrame:
    """Feature table aligned to ``events`` (one row per event, float64, NaN for other instruments
    and wherever a window is not full); columns in :meth:`FeatureConfig.names` order."""
    cfg = config or FeatureConfig()
    idx = stream_index(events, instrument)
    feats = stream_features(events[idx], cfg)
    table = np.full((len(events), len(feats)), np.nan)
    table[idx] = np.column_stack(list(feats.values()))
    return pd.DataFrame(table, columns=list(feats))


def direction_labels(events: np.ndarray, horizon: int, instrument: int = 0,
                     threshold: float | None = None) -> np.ndarray:
    """Dead-zone sign of the forward mid change over ``horizon`` stream rows (see module docstring).

    ``threshold`` (price units, >= 0) replaces the half-spread dead zone when given. Returns
    float64 in {-1, 0, +1} or NaN, aligned to ``events``.
    """
    _check_positive_ints("horizon", horizon)
    if threshold is not None and not (np.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"threshold must be a finite price difference >= 0 or None (half spread), "
                         f"got {threshold!r}")
    idx = stream_index(events, instrument)
    stream = events[idx]
    mid = mid_price(stream)
    fwd = np.full(len(stream), np.nan)
    fwd[:-horizon] = mid[horizon:] - mid[:-horizon]
    if threshold is None:
        s = l1_state(stream)
        dead = 0.5 * (s["ask_px"] - s["bid_px"])
    else:
        dead = np.full(len(stream), float(threshold))
    lab = np.where(np.abs(fwd) > dead, np.sign(fwd), 0.0)
    lab[~(np.isfinite(fwd) & np.isfinite(dead))] = np.nan
    out = np.full(len(events), np.nan)
    out[idx] = lab
    return out
