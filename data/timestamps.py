"""Timestamps in: ISO-8601 strings and epoch numbers -> int64 nanoseconds since the Unix epoch, UTC.

Why a module of its own: a backtest is only as honest as its clock, and the classic ways to get
time wrong are silent — a naive string read as UTC, a float that drops the last nanoseconds, a
number in milliseconds read as seconds. The rules here are:

* ISO-8601 strings carry their offset (``Z``, ``+05:30``, ``-0500``). A string without one
  (``2024-01-02 09:30:00``, or a bare date) is *naive*: it needs ``tz=`` (an IANA name such as
  ``"America/New_York"``). Local times that do not exist or occur twice at a DST change are
  rejected, never guessed. When a string has an offset, ``tz`` is ignored for it.
* Epoch numbers need an explicit ``time_unit`` in ``{"s", "ms", "us", "ns"}``. The *decimal text*
  is converted with integer arithmetic, so ``"34200.123456789"`` seconds is exactly
  ``34_200_123_456_789`` ns. Digits finer than 1 ns are rounded half away from zero. ``tz`` does
  not apply: epoch numbers are UTC by definition. Units are never inferred; validation flags
  implausible dates and suggests the unit.

Parsing is vectorised (pyarrow compute for the decimal split, pandas for ISO strings). Each value
gets a status code (``TS_*``) instead of an exception, so a reader can turn bad rows into rejects.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .errors import DataError, Finding

__all__ = [
    "INT64_MAX",
    "ParsedTimes",
    "TIME_UNITS",
    "TS_DST",
    "TS_EMPTY",
    "TS_NEEDS_TZ",
    "TS_NEEDS_UNIT",
    "TS_OK",
    "TS_OUT_OF_RANGE",
    "TS_UNPARSEABLE",
    "check_time_options",
    "parse_epoch",
    "parse_iso",
    "parse_timestamps",
    "status_problem",
    "timestamp_style",
]

TIME_UNITS: dict[str, int] = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
INT64_MAX = 2**63 - 1

# Status of each parsed value.
TS_OK, TS_EMPTY, TS_UNPARSEABLE, TS_NEEDS_TZ, TS_NEEDS_UNIT, TS_DST, TS_OUT_OF_RANGE = range(7)

_EPOCH_RE = r"^(?P<sign>[+-]?)(?P<int>\d*)(?:\.(?P<frac>\d*))?$"
_EXP_RE = r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$"
# An offset counts only after a time of day, so the "-02" of "2024-01-02" is not one.
_OFFSET_RE = r"(\d{2}:\d{2}(:\d{2}([.,]\d+)?)?|T\d{6}([.,]\d+)?)\s*([Zz]|[+-]\d{2}(:?\d{2})?)$"
_ISO_START = re.compile(r"^\d{4}-?\d{2}")


@dataclass(frozen=True)
class ParsedTimes:
    """``ns``: int64 ns UTC (0 where ``status != TS_OK``); ``status``: uint8 ``TS_*`` per value."""

    ns: np.ndarray
    status: np.ndarray

    @property
    def ok(self) -> np.ndarray:
        return self.status == TS_OK


def check_time_options(time_unit: str | None, tz: object, file: str = "<arguments>") -> None:
    """Raise ``DataError("bad_option")`` for an unknown unit or time zone name."""
    if time_unit is not None and time_unit not in TIME_UNITS:
        raise DataError(Finding("bad_option", file, None, "time_unit", time_unit,
                                "unknown time unit", f"use one of {sorted(TIME_UNITS)}"))
    if isinstance(tz, str):
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise DataError(Finding("bad_option", file, None, "tz", tz, "unknown time zone",
                                    "use an IANA name such as 'UTC' or 'America/New_York'")) from None
    elif tz is not None and not hasattr(tz, "utcoffset"):
        raise DataError(Finding("bad_option", file, None, "tz", tz, "tz must be a time zone name",
                                "pass e.g. tz='America/New_York'"))


def timestamp_style(value: object) -> str:
    """Classify one raw value: ``"empty"``, ``"epoch"``, ``"iso"`` (with offset), ``"iso_naive"``
    or ``"unknown"`` — used to fail fast on missing ``time_unit=`` / ``tz=``."""
    text = "" if value is None else str(value).strip()
    if not text or text.lower() == "nan":
        return "empty"
    if re.match(_EPOCH_RE, text) and any(ch.isdigit() for ch in text) or re.match(_EXP_RE, text):
        return "epoch"
    if _ISO_START.match(text):
        return "iso" if re.search(_OFFSET_RE, text) else "iso_naive"
    return "unknown"


def status_problem(status: int, time_unit: str | None, tz: object) -> tuple[str, str, str]:
    """``(code, message, fix)`` for a non-OK status, for the reader's Finding."""
    if status == TS_EMPTY:
        return "missing_value", "timestamp is empty", "fill the timestamp or remove the row"
    if status == TS_NEEDS_TZ:
        return ("unparseable_timestamp", "timestamp has no UTC offset and no tz= was given",
                "pass tz= (e.g. tz='America/New_York') or write times with an offset / 'Z'")
    if status == TS_NEEDS_UNIT:
        return ("unparseable_timestamp", "epoch number given but no time_unit=",
                "pass time_unit= one of 's', 'ms', 'us', 'ns'")
    if status == TS_DST:
        return ("unparseable_timestamp", f"local time does not exist or is ambiguous in {tz} "
                "(daylight-saving change)", "write times with a UTC offset around DST changes")
    if status == TS_OUT_OF_RANGE:
        unit = f" (read as {time_unit})" if time_unit else ""
        return ("unparseable_timestamp", f"timestamp outside 1677..2262, not representable in "
                f"int64 ns{unit}", "check the value and time_unit=")
    return ("unparseable_timestamp", "not an ISO-8601 time or an epoch number",
            "write ISO-8601 with an offset (2024-01-02T14:30:00Z) or epoch numbers with time_unit=")


def _clean(values: object) -> pa.Array:
    """Trimmed pyarrow string array; None/NaN become ""."""
    arr = np.asarray(values, dtype=object)
    try:  # the common case, str objects (None -> null): converted at C speed
        out = pa.array(arr, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = np.where(pd.isna(arr), "", arr) if len(arr) else arr
        out = pa.array([v if isinstance(v, str) else str(v) for v in arr], type=pa.string())
    return pc.utf8_trim_whitespace(pc.fill_null(out, ""))


def _np(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False))


def _int_field(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative decimal digit strings -> (int64 values, fits-in-int64 mask)."""
    lengths = _np(pc.utf8_length(strings))
    fits = (lengths < 19) | ((lengths == 19) & _np(pc.less_equal(strings, str(INT64_MAX))))
    safe = pc.if_else(pa.array(fits & (lengths > 0)), strings, "0")
    return _np(pc.cast(safe, pa.int64())), fits


def parse_epoch(values: object, time_unit: str) -> ParsedTimes:
    """Epoch numbers as text (``"1704187800"``, ``"34200.123456789"``, ``"1.7e9"``) -> ns, exactly."""
    check_time_options(time_unit, None)
    if time_unit is None:
        raise DataError(Finding("bad_option", "<arguments>", None, "time_unit", None,
                                "epoch numbers need a unit", "pass time_unit='s'/'ms'/'us'/'ns'"))
    factor = TIME_UNITS[time_unit]
    digits = len(str(factor)) - 1
    text = _clean(values)
    n = len(text)
    status = np.full(n, TS_UNPARSEABLE, dtype=np.uint8)
    ns = np.zeros(n, dtype=np.int64)
    if n == 0:
        return ParsedTimes(ns, status)
    raw = _np(text).astype(object)
    empty = _np(pc.equal(pc.utf8_lower(text), "nan")) | (_np(pc.utf8_length(text)) == 0)
    parts = pc.extract_regex(text, _EPOCH_RE)
    ip_s, fp_s = parts.field("int"), parts.field("frac")
    matched = _np(parts.is_valid()) & ((_np(pc.utf8_length(ip_s)) + _np(pc.utf8_length(fp_s))) > 0)
    ip, fits = _int_field(ip_s)
    padded = pc.utf8_rpad(fp_s, width=digits + 1, padding="0")
    frac = _int_field(pc.utf8_slice_codeunits(padded, 0, digits))[0] if digits else np.zeros(n, np.int64)
    half_up = _np(pc.greater_equal(pc.utf8_slice_codeunits(padded, digits, digits + 1), "5"))
    negative = _np(pc.equal(parts.field("sign"), "-"))
    in_range = fits & (ip <= (INT64_MAX - factor) // factor)
    good = matched & in_range
    mag = np.where(good, ip, 0) * factor + frac + half_up
    ns[:] = np.where(negative, -mag, mag)
    status[good] = TS_OK
    status[matched & ~in_range] = TS_OUT_OF_RANGE
    # Scientific notation is rare: exact Decimal arithmetic, value by value.
    for i in np.flatnonzero(~matched & ~empty):
        if re.match(_EXP_RE, raw[i]):
            try:
                val = int((Decimal(raw[i]) * factor).to_integral_value(ROUND_HALF_UP))
            except InvalidOperation:  # pragma: no cover - regex already checked the shape
                continue
            if abs(val) <= INT64_MAX:
                ns[i], status[i] = val, TS_OK
            else:
                status[i] = TS_OUT_OF_RANGE
    status[empty] = TS_EMPTY
    ns[status != TS_OK] = 0
    return ParsedTimes(ns, status)


def _datetimes_to_ns(dt: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """A UTC-aware or naive datetime Series -> (int64 ns, representable mask); NaT is not."""
    if isinstance(dt.dtype, pd.DatetimeTZDtype):
        dt = dt.dt.tz_convert("UTC").dt.tz_localize(None)
    raw = dt.to_numpy()
    factor = TIME_UNITS[np.datetime_data(raw.dtype)[0]]
    vals = raw.view(np.int64)
    ok = ~np.isnat(raw) & (np.abs(vals) <= INT64_MAX // factor)
    return np.where(ok, vals, 0) * factor, ok


def parse_iso(values: object, tz: object = None) -> ParsedTimes:
    """ISO-8601 strings -> ns UTC. Strings with an offset need nothing; naive ones need ``tz``."""
    check_time_options(None, tz)
    text = _clean(values)
    n = len(text)
    status = np.full(n, TS_UNPARSEABLE, dtype=np.uint8)
    ns = np.zeros(n, dtype=np.int64)
    if n == 0:
        return ParsedTimes(ns, status)
    raw = _np(pc.replace_substring_regex(text, r"(\d)z$", r"\1Z")).astype(object)  # RFC 3339 'z'
    empty = _np(pc.equal(pc.utf8_lower(text), "nan")) | (_np(pc.utf8_length(text)) == 0)
    has_offset = _np(pc.match_substring_regex(text, _OFFSET_RE)) & ~empty
    naive = ~has_offset & ~empty & _np(pc.match_substring_regex(text, _ISO_START.pattern))
    for mask, aware in ((has_offset, True), (naive, False)):
        idx = np.flatnonzero(mask)
        if not len(idx):
            continue
        if not aware and tz is None:
            status[idx] = TS_NEEDS_TZ
            continue
        series = pd.Series(raw[idx], dtype=object)
        try:
            parsed = pd.to_datetime(series, utc=aware, format="ISO8601", errors="coerce")
        except (ValueError, TypeError):  # e.g. an offset our pattern missed: value by value
            parsed = pd.Series([_one_iso(v, aware) for v in raw[idx]], dtype="datetime64[ns, UTC]"
                               if aware else "datetime64[ns]")
        parsed_ok = ~parsed.isna().to_numpy()
        if not aware:
            parsed = parsed.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        localized = ~parsed.isna().to_numpy()
        vals, ok = _datetimes_to_ns(parsed)
        sub = np.full(len(idx), TS_UNPARSEABLE, dtype=np.uint8)
        sub[parsed_ok & ~localized] = TS_DST  # parsed, but no such local time (or two of them)
        sub[localized & ~ok] = TS_OUT_OF_RANGE
        sub[ok] = TS_OK
        status[idx], ns[idx] = sub, vals
    status[empty] = TS_EMPTY
    ns[status != TS_OK] = 0
    return ParsedTimes(ns, status)


def _one_iso(value: str, aware: bool):
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        return pd.NaT
    if (ts.tzinfo is not None) != aware:
        return pd.NaT
    return ts.tz_convert("UTC") if aware else ts


def parse_timestamps(values: object, *, time_unit: str | None = None, tz: object = None) -> ParsedTimes:
    """Any column of times -> ns UTC, with a status per value.

    Accepts text (each value is ISO-8601 or an epoch number; numbers need ``time_unit``), integer
    or float epoch arrays (need ``time_unit``; floats are converted through their shortest repr),
    naive ``datetime64`` arrays (need ``tz``) and tz-aware pandas datetimes.
    """
    check_time_options(time_unit, tz)
    if isinstance(values, (pd.Series, pd.Index)) and isinstance(values.dtype, pd.DatetimeTZDtype):
        ns, ok = _datetimes_to_ns(pd.Series(values))
        return ParsedTimes(ns, np.where(ok, TS_OK, TS_EMPTY).astype(np.uint8))
    arr = values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else np.asarray(values)
    if arr.dtype.kind == "M":
        if tz is None:
            return ParsedTimes(np.zeros(len(arr), np.int64), np.full(len(arr), TS_NEEDS_TZ, np.uint8))
        local = pd.Series(arr).dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        ns, ok = _datetimes_to_ns(local)
        status = np.where(ok, TS_OK, np.where(np.isnat(arr), TS_EMPTY, TS_DST)).astype(np.uint8)
        return ParsedTimes(ns, status)
    if arr.dtype.kind in "iu":
        if time_unit is None:
            return ParsedTimes(np.zeros(len(arr), np.int64), np.full(len(arr), TS_NEEDS_UNIT, np.uint8))
        factor = TIME_UNITS[time_unit]
        ok = np.abs(arr.astype(object)) <= INT64_MAX // factor if arr.dtype.kind == "u" else (
            np.abs(arr.astype(np.int64, copy=False)) <= INT64_MAX // factor)
        ok = np.asarray(ok, dtype=bool)
        ns = np.where(ok, arr, 0).astype(np.int64) * factor
        return ParsedTimes(ns, np.where(ok, TS_OK, TS_OUT_OF_RANGE).astype(np.uint8))
    if arr.dtype.kind == "f":
        arr = _np(pc.cast(pa.array(arr, type=pa.float64()), pa.string())).astype(object)
    text = _clean(arr)
    n = len(text)
    status = np.full(n, TS_UNPARSEABLE, dtype=np.uint8)
    ns = np.zeros(n, dtype=np.int64)
    if n == 0:
        return ParsedTimes(ns, status)
    is_num = _np(pc.match_substring_regex(text, _EPOCH_RE)) & _np(
        pc.match_substring_regex(text, r"\d")) | _np(pc.match_substring_regex(text, _EXP_RE))
    raw = _np(text).astype(object)
    if is_num.any():
        idx = np.flatnonzero(is_num)
        if time_unit is None:
            status[idx] = TS_NEEDS_UNIT
        else:
            sub = parse_epoch(raw[idx], time_unit)
            ns[idx], status[idx] = sub.ns, sub.status
    idx = np.flatnonzero(~is_num)
    if len(idx):
        sub = parse_iso(raw[idx], tz)
        ns[idx], status[idx] = sub.ns, sub.status
    return ParsedTimes(ns, status)
