"""OHLCV bars -> four events per bar: hand-worked times and path order, tiny bars, the arch
S&P 500 daily sample, the CSV preset through iter_source, and invariants under hypothesis."""

from __future__ import annotations

import calendar
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickguard.data.bars import BAR_KIND, DAY_NS, bar_events, bars_to_events
from tickguard.data.errors import DataError
from tickguard.data.readers import iter_source
from tickguard.data.schema import KIND_BAR, KIND_QUOTE

NS = 10**9
MIN = 60 * NS
T0 = calendar.timegm(datetime(2024, 1, 2, 14, 30).timetuple()) * NS  # 2024-01-02T14:30:00Z


def test_hand_worked_up_and_down_bars_label_end():
    bars = {"time": np.array([T0 + MIN, T0 + 2 * MIN]), "open": [10.0, 11.0], "high": [12.0, 12.0],
            "low": [9.0, 9.0], "close": [11.0, 10.0], "volume": [100.0, 40.0]}
    ev = bars_to_events(bars, instrument=7, bar_duration_ns=MIN, label="end", time_unit="ns")
    s = 20 * NS
    assert ev["ts_exch"].tolist() == [T0, T0 + s, T0 + 2 * s, T0 + MIN,
                                      T0 + MIN, T0 + MIN + s, T0 + MIN + 2 * s, T0 + 2 * MIN]
    assert ev["price"].tolist() == [10, 9, 12, 11,   # up bar: O-L-H-C
                                    11, 12, 9, 10]   # down bar: O-H-L-C
    assert (ev["ts_local"] == ev["ts_exch"]).all()
    assert (ev["bid_px"] == ev["price"]).all() and (ev["ask_px"] == ev["price"]).all()
    assert ev["bid_sz"].tolist() == [100.0] * 4 + [40.0] * 4 == ev["ask_sz"].tolist()
    assert ev["size"].tolist() == [25.0] * 4 + [10.0] * 4
    assert (ev["kind"] == int(KIND_BAR | KIND_QUOTE)).all() and BAR_KIND == KIND_BAR | KIND_QUOTE
    assert (ev["instrument"] == 7).all() and (ev["side"] == 0).all() and (ev["level"] == 0).all()
    # label="start": the same times shifted by one bar
    start = bars_to_events(bars, instrument=7, bar_duration_ns=MIN, label="start", time_unit="ns")
    assert (start["ts_exch"] - ev["ts_exch"] == MIN).all()


@pytest.mark.parametrize(("d", "offsets"), [(4, [0, 1, 2, 4]), (5, [0, 1, 3, 5]), (6, [0, 2, 4, 6])])
def test_tiny_bars_still_strictly_increasing(d, offsets):
    ev = bar_events(np.array([100]), [1.0], [2.0], [0.5], [1.5], [8.0], d, 0)
    assert (ev["ts_exch"] - 100).tolist() == offsets


@pytest.mark.parametrize("d", [3, 0, -60, 1.5])
def test_too_short_bar_is_bad_option(d):
    with pytest.raises(DataError) as err:
        bars_to_events({"time": [0], "open": [1], "high": [1], "low": [1], "close": [1], "volume": [1]},
                       instrument=0, bar_duration_ns=d, time_unit="s")
    assert err.value.findings[0].code == "bad_option" and err.value.findings[0].field == "bar_duration_ns"


def test_bad_bars_raise_listing_rows():
    bars = pd.DataFrame({"Open": [10.0, 10.0, 10.0, np.nan], "High": [12.0, 9.0, 12.0, 1.0],
                         "Low": [9.0, 9.5, 9.0, 1.0], "Close": [11.0, 10.0, 13.0, 1.0], "Volume": [1, 1, 1, 1]},
                        index=pd.date_range("2024-01-02", periods=4, freq="D"))
    with pytest.raises(DataError) as err:
        bars_to_events(bars, instrument=0, bar_duration_ns=DAY_NS, label="start", tz="UTC")
    got = [(f.row, f.code) for f in err.value.findings]
    assert got == [(2, "inconsistent_bar"), (3, "inconsistent_bar"), (4, "missing_value")]
    with pytest.raises(DataError) as err:  # naive dates need tz
        bars_to_events(bars.iloc[:1], instrument=0, bar_duration_ns=DAY_NS, label="start")
    assert "tz=" in err.value.findings[0].fix
    with pytest.raises(DataError) as err:
        bars_to_events(bars.rename(columns={"Volume": "Vol"}), instrument=0, bar_duration_ns=DAY_NS, tz="UTC")
    assert err.value.findings[0].code == "missing_column" and "volume" in err.value.findings[0].field


def test_arch_sp500_daily_one_liner():
    arch_sp500 = pytest.importorskip("arch.data.sp500", reason="arch is a project dependency")
    df = arch_sp500.load()
    ev = bars_to_events(df, instrument=0, bar_duration_ns=DAY_NS, label="start", tz="America/New_York")
    n = len(df)
    assert len(ev) == 4 * n
    t = ev["ts_exch"].reshape(n, 4)
    p = ev["price"].reshape(n, 4)
    assert (np.diff(t, axis=1) > 0).all()                 # strictly increasing within each bar
    assert (t[:, 3] - t[:, 0] == DAY_NS).all()            # close exactly one day after the open
    assert (t[1:, 0] >= t[:-1, 3]).all()                  # bars do not overlap
    o, h, lo, c = (df[k].to_numpy() for k in ("Open", "High", "Low", "Close"))
    assert (p[:, 0] == o).all() and (p[:, 3] == c).all()
    assert (p.min(axis=1) == lo).all() and (p.max(axis=1) == h).all()
    assert ((p[:, 1:3].min(axis=1) <= np.minimum(p[:, 0], p[:, 3]))
            & (np.maximum(p[:, 0], p[:, 3]) <= p[:, 1:3].max(axis=1))).all()
    up = c >= o
    assert (p[up, 1] == lo[up]).all() and (p[~up, 1] == h[~up]).all()
    # first session 1999-01-04 starts at New York midnight = 05:00 UTC
    assert t[0, 0] == calendar.timegm(datetime(1999, 1, 4, 5).timetuple()) * NS
    assert (ev["bid_sz"].reshape(n, 4)[:, 0] == df["Volume"].to_numpy()).all()


def test_csv_bars_preset_rows_repeat_and_counts(tmp_path: Path):
    text = ("Time,Open,High,Low,Close,Volume\n"
            "2024-01-02T14:31:00Z,10,12,9,11,100\n"
            "2024-01-02T14:32:00Z,11,10,9,10,100\n"      # high < open: rejected
            "2024-01-02T14:33:00Z,11,12,9,,100\n"        # missing close
            "2024-01-02T14:34:00Z,11,12,9,10,40\n")
    path = tmp_path / "bars.csv"
    path.write_text(text)
    chunks = list(iter_source(path, preset="bars:1min", instrument=2, chunk_rows=3))
    rows = np.concatenate([c.rows for c in chunks])
    ev = np.concatenate([c.events for c in chunks])
    rejects = [r for c in chunks for r in c.rejects]
    assert rows.tolist() == [1, 1, 1, 1, 4, 4, 4, 4]
    assert sum(len(np.unique(c.rows)) + len(c.rejects) for c in chunks) == 4  # source rows conserved
    assert [(r.finding.row, r.finding.code, r.finding.field) for r in rejects] == [
        (2, "inconsistent_bar", "High"), (3, "missing_value", "Close")]
    assert ev["ts_exch"][0] == T0 and ev["ts_exch"][3] == T0 + MIN
    assert ev["price"].tolist() == [10, 9, 12, 11, 11, 12, 9, 10] and (ev["instrument"] == 2).all()
    daily = list(iter_source(path, preset="bars:1d:start", instrument=2))[0].events
    assert daily["ts_exch"][0] == T0 + MIN and daily["ts_exch"][3] == T0 + MIN + DAY_NS


@pytest.mark.parametrize("preset", ["bars", "bars:", "bars:soon", "bars:1min:middle"])
def test_bars_preset_needs_length(tmp_path: Path, preset):
    path = tmp_path / "b.csv"
    path.write_text("time,open,high,low,close,volume\n2024-01-02T14:31:00Z,1,1,1,1,1\n")
    with pytest.raises(DataError) as err:
        iter_source(path, preset=preset, instrument=0)
    assert err.value.findings[0].code == "bad_option" and "bars:1min" in err.value.findings[0].fix


finite = st.floats(min_value=0.01, max_value=1e6, allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(
    prices=st.lists(st.tuples(finite, finite, finite, finite, st.floats(0, 1e9)), min_size=1, max_size=20),
    d=st.integers(min_value=4, max_value=10 * DAY_NS),
)
def test_bar_invariants(prices, d):
    arr = np.array(prices)
    srt = np.sort(arr[:, :4], axis=1)  # build valid bars: low, two inner values, high
    o, c, lo, h, v = srt[:, 1], srt[:, 2], srt[:, 0], srt[:, 3], arr[:, 4]
    flip = np.arange(len(arr)) % 2 == 1
    o, c = np.where(flip, c, o), np.where(flip, o, c)  # half of the bars go down
    start = np.arange(len(arr), dtype=np.int64) * d
    ev = bars_to_events({"time": start, "open": o, "high": h, "low": lo, "close": c, "volume": v},
                        instrument=1, bar_duration_ns=d, label="start", time_unit="ns")
    t = ev["ts_exch"].reshape(-1, 4)
    p = ev["price"].reshape(-1, 4)
    assert (np.diff(t, axis=1) > 0).all() and (t[:, 3] - t[:, 0] == d).all()
    assert (p[:, 0] == o).all() and (p[:, 3] == c).all()
    assert (p.min(axis=1) == lo).all() and (p.max(axis=1) == h).all()
    assert (ev["size"].reshape(-1, 4) == (v / 4)[:, None]).all()
