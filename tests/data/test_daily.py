"""Daily real data from ``arch``: the loaded series, returns checked by hand, bar events' timing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tickguard.data.daily import daily_bar_events, daily_returns, load_daily
from tickguard.data.errors import DataError
from tickguard.data.schema import KIND_BAR, KIND_QUOTE

COLUMNS = ["Open", "High", "Low", "Close", "Adj Close", "Volume"]


@pytest.mark.parametrize("name", ["sp500", "nasdaq"])
def test_load_daily_spans_1999_to_2018(name):
    df = load_daily(name)
    assert list(df.columns) == COLUMNS
    assert df.index[0] == pd.Timestamp("1999-01-04") and df.index[-1] == pd.Timestamp("2018-12-31")
    assert df.index.is_monotonic_increasing and df.index.is_unique
    assert len(df) > 5000 and not df.isna().any().any()
    df.iloc[0, 0] = -1.0  # a fresh copy each call: callers cannot corrupt the next load
    assert load_daily(name).iloc[0, 0] > 0


def test_known_closes():
    sp = load_daily("sp500")
    # S&P 500 close on 2008-10-15: 907.84 (a -9.03% day); NASDAQ Composite close at its
    # 2000-03-10 dot-com peak: 5048.62. Stored as float32-ish decimals, hence the 0.01 tolerance.
    assert sp.loc["2008-10-15", "Close"] == pytest.approx(907.84, abs=0.01)
    assert load_daily("nasdaq").loc["2000-03-10", "Close"] == pytest.approx(5048.62, abs=0.01)
    drop = sp.loc["2008-10-15", "Adj Close"] / sp.loc["2008-10-14", "Adj Close"] - 1
    assert drop == pytest.approx(-0.0903, abs=5e-5)
    assert daily_returns("sp500", "simple").loc["2008-10-15"] == pytest.approx(drop, rel=1e-12)


@pytest.mark.parametrize("name", ["sp500", "nasdaq"])
def test_returns_shape_and_definitions(name):
    df = load_daily(name)
    simple = daily_returns(name, "simple")
    log = daily_returns(name)  # default: log returns of Adj Close
    assert len(simple) == len(log) == len(df) - 1
    assert simple.index.equals(df.index[1:])
    assert not simple.isna().any() and not log.isna().any()
    p = df["Adj Close"].to_numpy()
    np.testing.assert_allclose(simple.to_numpy(), p[1:] / p[:-1] - 1, rtol=0, atol=1e-15)
    np.testing.assert_allclose(log.to_numpy(), np.log1p(simple.to_numpy()), rtol=0, atol=1e-14)
    close = daily_returns(name, "simple", column="Close")
    c = df["Close"].to_numpy()
    np.testing.assert_allclose(close.to_numpy(), c[1:] / c[:-1] - 1, rtol=0, atol=1e-15)


def test_bad_arguments():
    with pytest.raises(DataError, match="unknown_dataset"):
        load_daily("ftse")
    with pytest.raises(DataError, match="missing_column"):
        daily_returns("sp500", column="Adj close")
    with pytest.raises(ValueError, match="kind"):
        daily_returns("sp500", kind="pct")


def test_daily_bar_events_session_times():
    df = load_daily("sp500")
    ev, table = daily_bar_events("sp500", instrument_id=4)
    assert len(ev) == 4 * len(df) and table[4].symbol == "SP500"
    assert np.all(ev["instrument"] == 4) and np.all(ev["kind"] == KIND_BAR | KIND_QUOTE)
    assert np.all(np.diff(ev["ts_local"]) > 0)  # sessions never overlap
    utc = lambda s: pd.Timestamp(s, tz="UTC").value  # noqa: E731
    # winter day: 09:30 / 16:00 EST = 14:30 / 21:00 UTC
    assert ev["ts_exch"][0] == utc("1999-01-04 14:30") and ev["ts_exch"][3] == utc("1999-01-04 21:00")
    assert ev["price"][0] == df["Open"].iloc[0] and ev["price"][3] == df["Close"].iloc[0]
    # summer day 2008-10-15: the close (907.84) becomes visible at 16:00 EDT = 20:00 UTC, not before
    i = 4 * df.index.get_loc(pd.Timestamp("2008-10-15")) + 3
    assert ev["ts_exch"][i] == utc("2008-10-15 20:00") and ev["price"][i] == df.loc["2008-10-15", "Close"]
    bar = ev["price"][i - 3 : i + 1]
    row = df.loc["2008-10-15"]
    assert bar.min() == row["Low"] and bar.max() == row["High"]
