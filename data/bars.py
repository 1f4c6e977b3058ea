"""OHLCV bars -> events: each bar becomes four price points under one stated path convention.

Why: bars hide the order in which the high and the low happened, and when the close became
known. A backtest on bars has to assume a path; this module makes the assumption explicit and
makes sure a strategy cannot see a bar's close before the bar has ended.

Convention, for a bar with start ``S``, length ``d = bar_duration_ns`` and end ``E = S + d``:

=========  ==================  ==========================================================
event      time                price
=========  ==================  ==========================================================
1          ``S``               open
2          ``S + d // 3``      low if ``close >= open`` else high
3          ``S + 2 * d // 3``  high if ``close >= open`` else low
4          ``E``               close (known only when the bar is complete)
=========  ==================  ==========================================================

i.e. the usual O-L-H-C path for up bars and O-H-L-C for down bars. Integer division keeps the
four times strictly increasing for every ``d >= 4`` ns; shorter bars are a ``bad_option``.
Every event has ``kind = KIND_BAR | KIND_QUOTE``, ``price = bid_px = ask_px`` = that price,
``bid_sz = ask_sz = volume`` (the bar's volume as the size available), ``size = volume / 4``,
``ts_local = ts_exch``, ``side = 0``, ``level = 0``. When bars are contiguous, a bar's close and
the next bar's open share a timestamp; file order keeps the close first.

``label`` says what the time column marks: ``"end"`` (the usual intraday convention: a 09:31
one-minute bar covers 09:30-09:31) or ``"start"`` (daily bars dated by their session: a date at
local midnight with ``d = DAY_NS``; on DST-change days the close lands an hour off local
midnight, which does not move it across sessions).

Daily data in one line, e.g. the S&P 500 sample shipped with ``arch``::

    events = bars_to_events(arch.data.sp500.load(), instrument=0, bar_duration_ns=DAY_NS,
                            label="start", tz="America/New_York")

A file of bars goes through :func:`tickguard.data.readers.iter_source` with
``preset="bars:<length>[:start|end]"`` (e.g. ``"bars:1min"``, ``"bars:1d:start"``); each chunk
then holds four events per source row and repeats the row's number four times.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from .csv_io import (
    BAR_FIELDS,
    ColumnPlan,
    RawTable,
    RowProblems,
    closest,
    parse_floats,
    table_instruments,
    table_times,
)
from .errors import DataError, Finding
from .parsed import ParsedChunk
from .schema import KIND_BAR, KIND_QUOTE, empty_events
from .timestamps import INT64_MAX, TS_OK, parse_timestamps, status_problem

__all__ = ["BAR_KIND", "DAY_NS", "MIN_BAR_NS", "bar_events", "bar_table_to_chunk", "bars_to_events"]

DAY_NS = 86_400 * 10**9
MIN_BAR_NS = 4
BAR_KIND = np.uint16(KIND_BAR | KIND_QUOTE)
_TIME_NAMES = ("time", "timestamp", "datetime", "date")
_MAX_FINDINGS = 20


def _check_duration(bar_duration_ns: object, label: str, file: str) -> int:
    if not isinstance(bar_duration_ns, (int, np.integer)) or bar_duration_ns < MIN_BAR_NS:
        raise DataError(Finding("bad_option", file, None, "bar_duration_ns", bar_duration_ns,
                                f"bar length must be an int >= {MIN_BAR_NS} ns (four distinct event times)",
                                "pass e.g. bar_duration_ns=60_000_000_000 for one-minute bars"))
    if label not in ("start", "end"):
        raise DataError(Finding("bad_option", file, None, "label", label,
                                "label must be 'start' or 'end'",
                                "'end' if the time marks the bar's close, 'start' if it marks the open"))
    return int(bar_duration_ns)


def bar_events(start_ns: np.ndarray, open_: np.ndarray, high: np.ndarray, low: np.ndarray,
               close: np.ndarray, volume: np.ndarray, bar_duration_ns: int,
               instrument: int | np.ndarray) -> np.ndarray:
    """Four events per bar (see the module docstring); inputs are already validated."""
    d = int(bar_duration_ns)
    start = np.asarray(start_ns, dtype=np.int64)
    n = len(start)
    up = np.asarray(close) >= np.asarray(open_)
    times = np.stack([start, start + d // 3, start + 2 * d // 3, start + d], axis=1).reshape(-1)
    prices = np.stack([open_, np.where(up, low, high), np.where(up, high, low), close], axis=1)
    vol = np.repeat(np.asarray(volume, dtype=np.float64), 4)
    ev = empty_events(4 * n)
    ev["ts_exch"] = times
    ev["ts_local"] = times
    ev["instrument"] = np.repeat(np.broadcast_to(np.asarray(instrument, dtype=np.int32), (n,)), 4)
    ev["kind"] = BAR_KIND
    ev["price"] = prices.reshape(-1)
    ev["bid_px"] = ev["price"]
    ev["ask_px"] = ev["price"]
    ev["bid_sz"] = vol
    ev["ask_sz"] = vol
    ev["size"] = vol / 4.0
    return ev


def _bad_bars(o, h, lo, c, v) -> np.ndarray:
    """True where all five values are present but low <= open, close <= high or volume >= 0 fails."""
    with np.errstate(invalid="ignore"):
        ok = (lo <= o) & (lo <= c) & (o <= h) & (c <= h) & (lo <= h) & (v >= 0)
    present = ~(np.isnan(o) | np.isnan(h) | np.isnan(lo) | np.isnan(c) | np.isnan(v))
    return present & ~ok


_BAD_BAR = ("inconsistent_bar", "bar breaks low <= open, close <= high, volume >= 0",
            "fix the bar's prices or volume at the source")


def bar_table_to_chunk(table: RawTable, plan: ColumnPlan) -> ParsedChunk:
    """Raw rows of ``time,open,high,low,close,volume`` -> four events per good row."""
    assert plan.bars is not None
    d = _check_duration(plan.bars[0], plan.bars[1], plan.file)
    f = plan.fields
    probs = RowProblems(table)
    ts = table_times(table, f["time"], plan, probs)
    inst = table_instruments(table, plan, probs)
    vals = {}
    for key in BAR_FIELDS[1:]:
        v, empty, bad = parse_floats(table.columns[f[key]])
        probs.flag(bad, "unparseable_number", f[key], "not a finite decimal number",
                   "write a plain number such as 101.25")
        probs.flag(empty, "missing_value", f[key], f"bar {key} is empty", f"fill {f[key]!r}")
        vals[key] = v
    code, message, fix = _BAD_BAR
    probs.flag(_bad_bars(*(vals[k] for k in BAR_FIELDS[1:])), code, f["high"], message, fix)
    start = ts - d if plan.bars[1] == "end" else ts
    probs.flag(start > INT64_MAX - d, "unparseable_timestamp", f["time"],
               "bar end overflows int64 ns", "check the value and time_unit=")
    keep = probs.ok
    ev = bar_events(start[keep], *(vals[k][keep] for k in BAR_FIELDS[1:]), d, inst[keep])
    return ParsedChunk(ev, np.repeat(table.rows[keep], 4), probs.rejects())


def _bar_columns(bars: object, file: str) -> tuple[object, dict[str, np.ndarray]]:
    """(time values, {open, high, low, close, volume: float64}) from a DataFrame or a mapping."""
    if isinstance(bars, pd.DataFrame):
        cols = {str(c).lower(): bars[c] for c in bars.columns}
    elif isinstance(bars, Mapping):
        cols = {str(k).lower(): v for k, v in bars.items()}
    else:
        raise DataError(Finding("bad_option", file, None, None, type(bars).__name__,
                                "bars must be a DataFrame or a mapping of arrays",
                                "pass a DataFrame with open/high/low/close/volume columns"))
    out = {}
    for key in BAR_FIELDS[1:]:
        if key not in cols:
            raise DataError(Finding("missing_column", file, None, key, list(cols),
                                    f"bars need a {key!r} column.{closest(key, list(cols))}",
                                    "rename the column (matching is case-insensitive)"))
        out[key] = np.asarray(cols[key], dtype=np.float64)
    name = next((t for t in _TIME_NAMES if t in cols), None)
    if name is not None:
        return cols[name], out
    if isinstance(bars, pd.DataFrame):
        return bars.index, out
    raise DataError(Finding("missing_column", file, None, "time", list(cols),
                            "bars need a time column", f"add one named one of {_TIME_NAMES}"))


def bars_to_events(bars: object, *, instrument: int, bar_duration_ns: int, label: str = "end",
                   time_unit: str | None = None, tz: str | None = None) -> np.ndarray:
    """OHLCV bars (DataFrame — time column or DatetimeIndex — or mapping of arrays) -> events.

    Times follow :func:`~tickguard.data.timestamps.parse_timestamps` (naive dates need ``tz``,
    epoch numbers need ``time_unit``). Any bad bar raises :class:`DataError` listing the rows
    (1-based positions); nothing is dropped.
    """
    file = "<bars>"
    d = _check_duration(bar_duration_ns, label, file)
    if not isinstance(instrument, (int, np.integer)) or not 0 <= int(instrument) < 2**31:
        raise DataError(Finding("bad_option", file, None, "instrument", instrument,
                                "instrument id must be an int in [0, 2**31)", "pass an integer id"))
    times, v = _bar_columns(bars, file)
    parsed = parse_timestamps(times, time_unit=time_unit, tz=tz)
    o, h, lo, c, vol = (v[k] for k in BAR_FIELDS[1:])
    start = parsed.ns - d if label == "end" else parsed.ns
    findings = []
    for i in np.flatnonzero(parsed.status != TS_OK):
        code, message, fix = status_problem(int(parsed.status[i]), time_unit, tz)
        findings.append(Finding(code, file, int(i) + 1, "time", str(np.asarray(times)[i]), message, fix))
    for key in BAR_FIELDS[1:]:
        for i in np.flatnonzero(np.isnan(v[key]) | np.isinf(v[key])):
            findings.append(Finding("missing_value", file, int(i) + 1, key, float(v[key][i]),
                                    f"bar {key} is missing or not finite", "fill or drop the bar"))
    for i in np.flatnonzero(_bad_bars(o, h, lo, c, vol) | (start > INT64_MAX - d)):
        findings.append(Finding(_BAD_BAR[0], file, int(i) + 1, "high",
                                f"o={o[i]} h={h[i]} l={lo[i]} c={c[i]} v={vol[i]}", *_BAD_BAR[1:]))
    if findings:
        findings.sort(key=lambda x: x.row or 0)
        raise DataError(findings[:_MAX_FINDINGS], more=max(0, len(findings) - _MAX_FINDINGS))
    return bar_events(start, o, h, lo, c, vol, d, int(instrument))
