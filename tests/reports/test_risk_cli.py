"""``tickguard risk var|backtest``: numbers against pandas/scipy, exit codes, error messages."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tickguard.reports.cli import main as tg_main
from tickguard.reports.report_cli import add_risk_parser, run_risk_command


def risk(argv):
    parser = argparse.ArgumentParser(prog="tickguard")
    add_risk_parser(parser.add_subparsers(dest="command", required=True))
    return run_risk_command(parser.parse_args(["risk", *argv]))


def as_json(capsys, argv):
    assert risk(["var", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def returns():
    # Student-t(4) daily returns with a volatility regime switch halfway: the second half has
    # twice the scale, so a rolling VaR fitted on calm days is breached more often after it.
    rng = np.random.default_rng(7)
    x = rng.standard_t(4, 800) * 0.01
    x[400:] *= 2.0
    return pd.Series(x)


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory, returns):
    path = tmp_path_factory.mktemp("r") / "daily.csv"
    pd.DataFrame({"date": pd.date_range("2020-01-01", periods=len(returns)).astype(str),
                  "ret": returns}).to_csv(path, index=False)
    return path


def test_historical_var_and_es_of_the_only_numeric_column(capsys, csv_file, returns):
    out = as_json(capsys, [str(csv_file)])
    q = returns.quantile(0.01)  # pandas' linear quantile
    assert out["var"] == pytest.approx(-q, rel=1e-12)
    assert out["es"] == pytest.approx(-returns[returns <= q].mean(), rel=1e-12)
    assert (out["n_obs"], out["method"], out["level"]) == (800, "historical", 0.99)
    assert "column 'ret'" in out["source"]


def test_parametric_var_last_window_matches_the_normal_formula(capsys, csv_file, returns):
    out = as_json(capsys, [str(csv_file), "--method", "parametric", "--level", "0.95", "--window", "250"])
    tail = returns.iloc[-250:]
    mu, sd = tail.mean(), tail.std(ddof=1)
    assert out["n_obs"] == 250
    assert out["var"] == pytest.approx(-(mu + sd * stats.norm.ppf(0.05)), rel=1e-10)
    # normal ES: -mu + sd * pdf(z) / alpha
    assert out["es"] == pytest.approx(-mu + sd * stats.norm.pdf(stats.norm.ppf(0.95)) / 0.05, rel=1e-10)


def test_text_output_names_method_level_and_values(capsys, csv_file, returns):
    assert risk(["var", str(csv_file)]) == 0
    text = capsys.readouterr().out
    assert f"historical VaR at 0.99: {-returns.quantile(0.01):.6g}" in text


def test_backtest_matches_a_pandas_rolling_quantile_and_hand_written_tests(capsys, tmp_path, returns):
    path = tmp_path / "pnl.parquet"
    pd.DataFrame({"pnl": returns, "other": 1.0}).to_parquet(path)
    out = _backtest_json(capsys, [str(path), "--window", "250", "--column", "pnl"])
    fc = -returns.rolling(250).quantile(0.01).shift(1)  # forecast for day t from days t-250..t-1
    hit = (returns < -fc)[250:].to_numpy()
    n, x, p = len(hit), int(hit.sum()), 0.01
    assert (out["n_forecasts"], out["exceptions"]) == (n, x) and x > 0
    lr = -2 * ((n - x) * math.log(1 - p) + x * math.log(p) - (n - x) * math.log(1 - x / n)
               - x * math.log(x / n))
    assert out["kupiec_lr"] == pytest.approx(lr, rel=1e-9)
    assert out["kupiec_pvalue"] == pytest.approx(stats.chi2.sf(lr, 1), rel=1e-9)
    cum = stats.binom.cdf(x, n, p)
    assert out["traffic_light_cum_prob"] == pytest.approx(cum, rel=1e-12)
    assert out["traffic_light"] == ("green" if cum < 0.95 else "red" if cum >= 0.9999 else "yellow")
    assert out["christoffersen_cc_lr"] >= out["kupiec_lr"]  # LR_cc = LR_pof + LR_ind, LR_ind >= 0


def _backtest_json(capsys, argv):
    assert risk(["backtest", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_run_folder_gives_equity_pnl_per_bar(capsys, tmp_path):
    run_dir = tmp_path / "run"
    assert tg_main(["run", "--out", str(run_dir), "--quiet", "--no-report"]) == 0
    out = as_json(capsys, [str(run_dir), "--bar", "1min"])
    eq = pd.read_parquet(run_dir / "equity.parquet")
    initial = json.loads((run_dir / "summary.json").read_text())["initial_cash"]
    # by hand: minute bars (t - 1 min, t], last sample of each, initial cash first, differenced
    end = -(-eq["ts"] // 60_000_000_000)
    last = eq.assign(end=end).groupby("end")["equity"].last().to_numpy()
    pnl = pd.Series(np.diff(np.concatenate([[initial], last])))
    assert out["n_obs"] == len(pnl) and "per 1min bar" in out["source"]
    assert out["var"] == pytest.approx(-pnl.quantile(0.01), rel=1e-9)


def test_nan_rows_are_dropped_and_counted(capsys, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("pnl\n1.0\n\n-2.0\nnan\n3.0\n-1.0\n")
    out = as_json(capsys, [str(path)])
    assert out["n_obs"] == 4 and out["dropped_nan"] == 1  # the blank line is skipped by the reader
    assert out["var"] == pytest.approx(-pd.Series([1.0, -2.0, 3.0, -1.0]).quantile(0.01))


@pytest.mark.parametrize("make, args, message", [
    (None, ["{dir}/daily.csvv"], "did you mean"),
    ("csv", ["{f}", "--column", "rett"], "did you mean 'ret'"),
    ("csv", ["{f}", "--column", "date"], "not numbers"),
    ("two", ["{f}"], "pass --column NAME"),
    ("csv", ["{f}", "--level", "1.5"], "level: got 1.5"),
    ("json", ["{f}"], "unknown file type '.json'"),
    ("csv", ["backtest", "{f}", "--window", "900"], "too few for a 900-observation rolling window"),
])
def test_bad_input_exits_2_with_a_clear_message(capsys, tmp_path, make, args, message):
    f = tmp_path / "daily.csv"
    f.write_text("date,ret\n2020-01-01,0.01\n2020-01-02,-0.02\n2020-01-03,0.005\n")
    if make == "two":
        f.write_text("a,b\n1,2\n3,4\n")
    elif make == "json":
        f = tmp_path / "x.json"
        f.write_text("{}")
    argv = [a.format(dir=tmp_path, f=f) for a in args]
    if argv[0] != "backtest":
        argv = ["var", *argv]
    assert risk(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("tickguard risk")


def test_unknown_method_is_a_usage_error_with_a_suggestion(capsys, csv_file):
    with pytest.raises(SystemExit) as exc:
        risk(["var", str(csv_file), "--method", "histrical"])
    assert exc.value.code == 2
    assert "did you mean 'historical'" in capsys.readouterr().err


def test_bundled_sp500_series_var_and_traffic_light(capsys):
    # the S&P 500 adjusted closes shipped with `arch` (1999-2018): VaR against a pandas quantile of
    # the returns computed here, and the backtest's zone from the exceptions counted here
    import arch.data.sp500

    px = arch.data.sp500.load()["Adj Close"].sort_index()
    r = (px / px.shift(1) - 1.0).iloc[1:]
    out = as_json(capsys, ["daily:sp500"])
    assert out["n_obs"] == len(r) == 5030
    assert out["var"] == pytest.approx(-r.quantile(0.01), rel=1e-12)
    assert tg_main(["risk", "backtest", "daily:sp500", "--method", "historical", "--window", "250",
                    "--json"]) == 0
    bt = json.loads(capsys.readouterr().out)
    var = -r.rolling(250).quantile(0.01).shift(1)  # forecast for day t from the 250 days before it
    exc = (r < -var)[var.notna()]
    assert bt["exceptions"] == int(exc.sum())
    zone = "green" if stats.binom.cdf(exc.sum(), len(exc), 0.01) < 0.95 else (
        "yellow" if stats.binom.cdf(exc.sum(), len(exc), 0.01) < 0.9999 else "red")
    assert bt["traffic_light"] == zone and bt["n_forecasts"] == len(exc)


def test_unknown_daily_series_names_the_choices(capsys):
    assert tg_main(["risk", "var", "daily:ftse"]) == 2
    assert "daily:nasdaq" in capsys.readouterr().err
