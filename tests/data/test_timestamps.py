"""Timestamp parsing: exact epoch decimals, ISO offsets, naive + tz, DST, statuses, typed inputs."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickguard.data.errors import DataError
from tickguard.data.timestamps import (
    INT64_MAX,
    TIME_UNITS,
    TS_DST,
    TS_EMPTY,
    TS_NEEDS_TZ,
    TS_NEEDS_UNIT,
    TS_OK,
    TS_OUT_OF_RANGE,
    TS_UNPARSEABLE,
    check_time_options,
    parse_epoch,
    parse_iso,
    parse_timestamps,
    status_problem,
    timestamp_style,
)

NS = 10**9


def utc_ns(*args: int, ns: int = 0) -> int:
    """Independent oracle: calendar.timegm on a UTC tuple, plus sub-second ns."""
    return calendar.timegm(datetime(*args).timetuple()) * NS + ns


def test_decimal_seconds_are_exact_not_float():
    out = parse_epoch(["34200.123456789", "1704187800.000000001", "0.1"], "s")
    assert out.status.tolist() == [TS_OK] * 3
    assert out.ns.tolist() == [34_200_123_456_789, 1_704_187_800_000_000_001, 100_000_000]
    # float arithmetic would have lost the last nanosecond here:
    assert int(float("1704187800.000000001") * 1e9) != 1_704_187_800_000_000_001


@pytest.mark.parametrize(
    ("text", "unit", "expected"),
    [
        ("1704187800", "s", 1_704_187_800 * NS),
        ("1704187800123", "ms", 1_704_187_800_123_000_000),
        ("1704187800123456", "us", 1_704_187_800_123_456_000),
        ("1704187800123456789", "ns", 1_704_187_800_123_456_789),
        ("-1.5", "s", -1_500_000_000),
        ("+2", "ms", 2_000_000),
        (".5", "s", 500_000_000),
        ("7.", "us", 7_000),
        ("1.5e3", "s", 1_500 * NS),
        ("1E-9", "s", 1),
        ("1.0000000005", "s", 1_000_000_001),  # half away from zero
        ("1.0000000004", "s", 1_000_000_000),
        ("-1.0000000005", "s", -1_000_000_001),
        ("2.5", "ns", 3),
        ("  42 ", "s", 42 * NS),
    ],
)
def test_epoch_hand_worked(text, unit, expected):
    out = parse_epoch([text], unit)
    assert out.status[0] == TS_OK
    assert out.ns[0] == expected


def test_epoch_bad_values_get_statuses():
    out = parse_epoch(["", "nan", "abc", "1.2.3", ".", "+", "99999999999999999999", "9223372036854775807"], "s")
    assert out.status.tolist() == [TS_EMPTY, TS_EMPTY, TS_UNPARSEABLE, TS_UNPARSEABLE, TS_UNPARSEABLE,
                                   TS_UNPARSEABLE, TS_OUT_OF_RANGE, TS_OUT_OF_RANGE]
    assert (out.ns == 0).all()
    near_max = parse_epoch(["9223372036854775806"], "ns")
    assert near_max.status[0] == TS_OK and near_max.ns[0] == INT64_MAX - 1


def _oracle(text: str, unit: str) -> int:
    return int((Decimal(text) * TIME_UNITS[unit]).to_integral_value(ROUND_HALF_UP))


@settings(max_examples=200, deadline=None)
@given(
    whole=st.integers(min_value=0, max_value=4_000_000_000),
    frac=st.text(alphabet="0123456789", max_size=12),
    negative=st.booleans(),
    unit=st.sampled_from(["s", "ms", "us", "ns"]),
)
def test_epoch_matches_decimal_oracle(whole, frac, negative, unit):
    text = ("-" if negative else "") + str(whole) + ("." + frac if frac else "")
    out = parse_epoch([text], unit)
    assert out.status[0] == TS_OK
    assert out.ns[0] == _oracle(text, unit)


def test_iso_with_offsets_hand_worked():
    values = ["2024-01-02T14:30:00Z", "2024-01-02 09:30:00.123456789-05:00", "2024-01-02T20:00:00+0530",
              "2024-01-02T14:30:00.5+00:00", "2024-01-02T14:30z"]
    out = parse_iso(values)
    assert out.status.tolist() == [TS_OK] * 5
    assert out.ns.tolist() == [
        utc_ns(2024, 1, 2, 14, 30),
        utc_ns(2024, 1, 2, 14, 30, ns=123_456_789),
        utc_ns(2024, 1, 2, 14, 30),
        utc_ns(2024, 1, 2, 14, 30, ns=500_000_000),
        utc_ns(2024, 1, 2, 14, 30),
    ]


def test_naive_needs_tz_and_tz_localizes_with_dst():
    values = ["2024-01-02 09:30:00", "2024-07-02T09:30:00", "2024-01-02"]
    assert parse_iso(values).status.tolist() == [TS_NEEDS_TZ] * 3
    out = parse_iso(values, tz="America/New_York")
    assert out.status.tolist() == [TS_OK] * 3
    # EST is UTC-5 in January, EDT is UTC-4 in July
    assert out.ns.tolist() == [utc_ns(2024, 1, 2, 14, 30), utc_ns(2024, 7, 2, 13, 30), utc_ns(2024, 1, 2, 5)]
    # the offset wins over tz
    assert parse_iso(["2024-01-02T14:30:00Z"], tz="Asia/Tokyo").ns[0] == utc_ns(2024, 1, 2, 14, 30)


def test_dst_gap_and_overlap_are_rejected_not_guessed():
    out = parse_iso(["2024-03-10 02:30:00", "2024-11-03 01:30:00", "2024-11-03 03:30:00"], tz="America/New_York")
    assert out.status.tolist() == [TS_DST, TS_DST, TS_OK]
    code, message, fix = status_problem(TS_DST, None, "America/New_York")
    assert code == "unparseable_timestamp" and "daylight" in message and "offset" in fix


def test_iso_garbage_and_out_of_range():
    out = parse_iso(["not a time", "2024-13-45T00:00:00Z", "3000-01-01T00:00:00Z", "", "NaN"])
    assert out.status.tolist() == [TS_UNPARSEABLE, TS_UNPARSEABLE, TS_OUT_OF_RANGE, TS_EMPTY, TS_EMPTY]


def test_mixed_column_dispatch_and_needs_unit():
    values = ["1704187800", "2024-01-02T14:30:00Z", "2024-01-02 09:30", "zzz", ""]
    no_unit = parse_timestamps(values)
    assert no_unit.status.tolist() == [TS_NEEDS_UNIT, TS_OK, TS_NEEDS_TZ, TS_UNPARSEABLE, TS_EMPTY]
    both = parse_timestamps(values, time_unit="s", tz="UTC")
    assert both.status.tolist() == [TS_OK, TS_OK, TS_OK, TS_UNPARSEABLE, TS_EMPTY]
    assert both.ns[0] == 1_704_187_800 * NS
    assert both.ns[2] == utc_ns(2024, 1, 2, 9, 30)


def test_typed_inputs():
    ints = parse_timestamps(np.array([1, -2, INT64_MAX // 1000], dtype=np.int64), time_unit="ms")
    assert ints.ns[:2].tolist() == [1_000_000, -2_000_000]
    assert ints.status.tolist() == [TS_OK, TS_OK, TS_OUT_OF_RANGE]
    assert parse_timestamps(np.array([1, 2]), time_unit=None).status.tolist() == [TS_NEEDS_UNIT] * 2
    floats = parse_timestamps(np.array([34200.123456789, np.nan]), time_unit="s")
    assert floats.ns[0] == 34_200_123_456_789 and floats.status.tolist() == [TS_OK, TS_EMPTY]
    naive = pd.DatetimeIndex(["2024-01-02", "2024-07-02"])
    assert parse_timestamps(naive).status.tolist() == [TS_NEEDS_TZ] * 2
    local = parse_timestamps(naive, tz="America/New_York")
    assert local.ns.tolist() == [utc_ns(2024, 1, 2, 5), utc_ns(2024, 7, 2, 4)]
    aware = pd.DatetimeIndex(["2024-01-02 09:30"]).tz_localize("America/New_York")
    assert parse_timestamps(aware).ns.tolist() == [utc_ns(2024, 1, 2, 14, 30)]
    # datetime64 in seconds resolution converts to ns exactly
    secs = np.array(["2024-01-02T00:00:01"], dtype="datetime64[s]")
    assert parse_timestamps(secs, tz="UTC").ns.tolist() == [utc_ns(2024, 1, 2, 0, 0, 1)]


def test_iso_ns_agrees_with_datetime_oracle():
    rng = np.random.default_rng(7)
    base = datetime(2020, 1, 1, tzinfo=timezone.utc)
    for _ in range(50):
        secs = int(rng.integers(0, 10 * 365 * 86400))
        nanos = int(rng.integers(0, NS))
        moment = base + timedelta(seconds=secs)
        text = moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"
        assert parse_iso([text]).ns[0] == calendar.timegm(moment.timetuple()) * NS + nanos


def test_options_are_checked():
    with pytest.raises(DataError) as err:
        check_time_options("sec", None)
    assert err.value.findings[0].code == "bad_option" and err.value.findings[0].field == "time_unit"
    with pytest.raises(DataError) as err:
        parse_iso(["2024-01-02"], tz="Mars/Olympus")
    assert err.value.findings[0].field == "tz"


def test_timestamp_style():
    assert [timestamp_style(v) for v in ["1", "1.5e9", "2024-01-02", "2024-01-02T00:00Z",
                                         "2024-01-02 09:30:00-05:00", "abc", "", None]] == [
        "epoch", "epoch", "iso_naive", "iso", "iso", "unknown", "empty", "empty"]
