"""Real daily index data (S&P 500, NASDAQ Composite, 1999-2018) from the installed ``arch`` package.

Why: tests, examples and benchmarks need a real, licence-clean price series that is always there
offline. ``arch`` ships two (``arch.data.sp500``, ``arch.data.nasdaq``: daily OHLC, Adj Close,
Volume, 1999-01-04 .. 2018-12-31); we read them from the installed package rather than copying
them into the repo.

:func:`daily_bar_events` turns a series into bar events through :func:`tickguard.data.bars.bars_to_events`
with the regular NYSE/NASDAQ session: each day is one bar from 09:30 to 16:00 New York time
(DST aware), so a strategy sees the open at 09:30 and the close only at 16:00. Half-day sessions
(e.g. the day after Thanksgiving) still end at 16:00: the close arrives later than it really did,
which can delay but never leak information.
"""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd

from .bars import bars_to_events
from .errors import DataError, Finding
from .schema import Instrument, InstrumentTable

__all__ = [
    "DAILY_NAMES",
    "SESSION_CLOSE",
    "SESSION_OPEN",
    "SESSION_TZ",
    "daily_bar_events",
    "daily_returns",
    "load_daily",
]

#: name -> (arch module, instrument symbol)
DAILY_NAMES: dict[str, tuple[str, str]] = {
    "nasdaq": ("arch.data.nasdaq", "NASDAQ"),
    "sp500": ("arch.data.sp500", "SP500"),
}
SESSION_TZ = "America/New_York"
SESSION_OPEN = pd.Timedelta(hours=9, minutes=30)
SESSION_CLOSE = pd.Timedelta(hours=16)


def _check_name(name: str) -> tuple[str, str]:
    try:
        return DAILY_NAMES[name]
    except (KeyError, TypeError):
        raise DataError(Finding("unknown_dataset", "<daily>", None, "name", name,
                                "unknown daily data set", f"use one of {sorted(DAILY_NAMES)}")) from None


def load_daily(name: str) -> pd.DataFrame:
    """The ``arch`` data set as a DataFrame: DatetimeIndex ``Date`` (session dates, naive) and
    columns Open, High, Low, Close, Adj Close, Volume. A fresh copy on every call."""
    module, _ = _check_name(name)
    df = importlib.import_module(module).load()
    return df.sort_index().copy()


def daily_returns(name: str, kind: str = "log", column: str = "Adj Close") -> pd.Series:
    """Close-to-close returns of ``column``: ``"log"`` = ln(p_t / p_{t-1}), ``"simple"`` = p_t / p_{t-1} - 1.

    One value per day after the first (length = rows - 1), indexed by the later date.
    """
    df = load_daily(name)
    if column not in df.columns:
        raise DataError(Finding("missing_column", f"<daily {name}>", None, column, list(df.columns),
                                "no such column", f"use one of {list(df.columns)}"))
    if kind not in ("log", "simple"):
        raise ValueError(f"kind must be 'log' or 'simple', got {kind!r}")
    p = df[column].astype(np.float64)
    ratio = (p / p.shift(1)).iloc[1:]
    out = np.log(ratio) if kind == "log" else ratio - 1.0
    return out.rename(f"{name}_{kind}_return")


def daily_bar_events(name: str, instrument_id: int = 0) -> tuple[np.ndarray, InstrumentTable]:
    """Daily OHLCV bars as events (four per day, 09:30-16:00 New York) and a one-row instrument table.

    Uses the unadjusted Open/High/Low/Close (for these indices Adj Close equals Close).
    """
    _, symbol = _check_name(name)
    df = load_daily(name)
    bars = df[["Open", "High", "Low", "Close", "Volume"]].copy()
    bars.index = bars.index + SESSION_OPEN  # naive local 09:30 of each session date
    session_ns = int((SESSION_CLOSE - SESSION_OPEN).value)
    events = bars_to_events(bars, instrument=instrument_id, bar_duration_ns=session_ns,
                            label="start", tz=SESSION_TZ)
    table = InstrumentTable([Instrument(instrument_id, symbol, tick_size=0.01)])
    return events, table
