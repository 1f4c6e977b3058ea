"""The HTML tear sheet: structure, numbers against independent computations, escaping, determinism.

Two runs are made once per module: the bundled demo (`tickguard run`) and a tiny hand-made run
through a RiskGate (a fat-finger denial, then an order-to-trade halt and the denials after it).
Numbers on the page are parsed back and compared with pandas / scipy computed here from the
Parquet records, never with the report code's own helpers.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import math
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tickguard.data.schema import KIND_QUOTE, Instrument, InstrumentTable, empty_events
from tickguard.engine.backtest import run
from tickguard.engine.config import EngineConfig, Latency, LatencyConfig
from tickguard.engine.records import OT_MARKET
from tickguard.engine.scripted import scripted, submit
from tickguard.reports.cli import main as tg_main
from tickguard.reports.html import (
    build_report, fills_window, load_run, load_stress, parse_window, stress_overflows, write_diagnostics,
    write_report,
)
from tickguard.reports.records import write_run
from tickguard.reports.report_cli import add_report_parser, run_report_command
from tickguard.risk import RiskGate

PAYLOAD = '<script>alert(1)</script>"&<>'
INST = InstrumentTable([Instrument(0, "X", tick_size=0.01, lot_size=1)])
RULES = """
[[rule]]
id = "{fat}"
metric = "max_order_qty"
threshold = 1000
action = "deny"
[[rule]]
id = "otr-kill"
metric = "order_to_trade"
threshold = 50
window = "10ms"
action = "halt"
params = {{ min_orders = 50 }}
"""


class Page(HTMLParser):
    """Ids, sections, figures, tables (rows of cell text), title and h1 text of a page."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.ids, self.sections, self.figures, self.tables = [], [], [], []
        self.title = self.h1 = ""
        self._in, self._cell = None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "section":
            self.sections.append(a["id"])
        elif tag == "figure":
            self.figures.append(a["id"])
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag in ("title", "h1"):
            self._in = tag

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell)
            self._cell = None
        elif tag in ("title", "h1"):
            self._in = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._in == "title":
            self.title += data
        elif self._in == "h1":
            self.h1 += data

    def table_after(self, header0: str) -> list[list[str]]:
        return next(t for t in self.tables if t and t[0] and t[0][0] == header0)


def _quotes(n: int) -> np.ndarray:
    ev = empty_events(n)
    ev["ts_exch"] = ev["ts_local"] = 1_000_000 + np.arange(n) * 100_000
    ev["kind"], ev["bid_px"], ev["ask_px"] = KIND_QUOTE, 99.99, 100.0
    ev["bid_sz"] = ev["ask_sz"] = 500.0
    return ev


def gate_run(out, *, rule_id: str = "fat", name: str | None = None):
    """Quotes every 100 us; event 0: a 5000-lot market buy (denied by the 1000 limit), event 1: a
    10-lot market buy (fills), events 2..299: 1-lot buys at 99.00 that never fill. The 51st order
    message without a further fill trips the order-to-trade halt; the 248 later ones are denied."""
    steps = [submit(0, 1, 5000, order_type=OT_MARKET), submit(1, 1, 10, order_type=OT_MARKET)]
    steps += [submit(k, 1, 1, price=99.0) for k in range(2, 300)]
    strategy = scripted(steps)
    if name is not None:
        strategy = dataclasses.replace(strategy, name=name)
    gate = RiskGate.load(RULES.format(fat=rule_id.replace("\\", "\\\\").replace('"', '\\"')), INST)
    lat = LatencyConfig(submit=Latency(entry_ns=100_000, response_ns=100_000))
    result = run(_quotes(600), strategy, instruments=INST, risk=gate,
                 config=EngineConfig(latency=lat, sample_every=1, sample_dt_ns=0))
    return write_run(result, out)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    assert tg_main(["run", "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def demo_page(demo_dir):
    return build_report(demo_dir)


@pytest.fixture(scope="module")
def gate_dir(tmp_path_factory):
    return gate_run(tmp_path_factory.mktemp("gate") / "run")


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def _bars_1s(equity: pd.DataFrame, initial: float, bar_ns: int = 10**9) -> np.ndarray:
    """PnL per bar by hand: bar (t - bar, t] labelled by its end t (a multiple of bar from the
    epoch), last equity sample per bar, the initial cash first."""
    end = -(-equity["ts"].to_numpy() // bar_ns) * bar_ns
    last = equity.assign(end=end).groupby("end", sort=True)["equity"].last().to_numpy()
    return np.diff(np.concatenate([[initial], last]))


# ---------------------------------------------------------------- structure
def test_demo_report_has_every_section_and_figure_and_nothing_external(demo_page):
    p = Page(demo_page)
    assert p.sections == ["summary", "equity", "exposure", "pnl-distribution", "var-backtest", "risk",
                          "fills"]
    assert p.figures == ["fig-equity", "fig-exposure", "fig-pnl-dist", "fig-rolling-var", "fig-fills"]
    assert demo_page.count("<svg") == len(p.figures) == demo_page.count("<figure")
    assert len(p.ids) == len(set(p.ids)), "figures on one page must not share element ids"
    for bad in ("<script", "<img", "<link", "<iframe", " src=", "@import", "url(http"):
        assert bad not in demo_page
    hrefs = re.findall(r'href="([^"]*)"', demo_page)
    assert hrefs and all(h.startswith("#") for h in hrefs)
    assert "Content-Security-Policy" in demo_page and "default-src 'none'" in demo_page
    assert p.title == "tickguard report: ema_crossover(50,200)"


def test_summary_table_shows_the_metrics_of_summary_json(demo_dir, demo_page):
    metrics = json.loads((demo_dir / "summary.json").read_text())["metrics"]
    rows = {r[0]: r[1] for r in Page(demo_page).table_after("metric")[1:]}
    assert _num(rows["total_pnl"]) == pytest.approx(metrics["total_pnl"], rel=1e-5)
    assert _num(rows["sharpe"]) == pytest.approx(metrics["sharpe"], rel=1e-5)
    assert rows["n_trades"] == str(metrics["n_trades"])


def test_demo_var_and_backtests_match_an_independent_computation(demo_dir, demo_page):
    eq = pd.read_parquet(demo_dir / "equity.parquet")
    initial = json.loads((demo_dir / "summary.json").read_text())["initial_cash"]
    # the bar rule: the coarsest bar with >= 100 + 100 increments: 10 s bars are too few, 1 s enough
    assert len(_bars_1s(eq, initial, 10 * 10**9)) < 200 <= len(_bars_1s(eq, initial))
    assert "<b>1s</b>" in demo_page
    pnl = pd.Series(_bars_1s(eq, initial))
    var = -pnl.quantile(0.01)  # pandas' linear quantile
    es = -pnl[pnl <= -var].mean()
    m = re.search(r"VaR 99.00% = ([-\d.e+]+) and ES = ([-\d.e+]+)", demo_page)
    assert (float(m[1]), float(m[2])) == (pytest.approx(var, rel=1e-5), pytest.approx(es, rel=1e-5))
    # rolling 100-bar historical VaR, out of sample: bar t from bars t-100..t-1
    fc = -pnl.rolling(100).quantile(0.01).shift(1)
    hit = (pnl < -fc)[100:].to_numpy()
    n, x = len(hit), int(hit.sum())
    assert f"{n} forecasts, {x} exceptions" in demo_page
    p = 0.01
    lr_pof = -2 * ((n - x) * math.log(1 - p) + x * math.log(p)
                   - (n - x) * math.log(1 - x / n) - x * math.log(x / n))
    prev, cur = hit[:-1], hit[1:]
    n00, n01 = int((~prev & ~cur).sum()), int((~prev & cur).sum())
    n10, n11 = int((prev & ~cur).sum()), int((prev & cur).sum())
    p01, p11, p1 = n01 / (n00 + n01), n11 / (n10 + n11), (n01 + n11) / (n - 1)

    def ll(k, q):  # k ln q with 0 ln 0 = 0
        return k * math.log(q) if k else 0.0

    lr_ind = -2 * (ll(n00 + n10, 1 - p1) + ll(n01 + n11, p1)
                   - ll(n00, 1 - p01) - ll(n01, p01) - ll(n10, 1 - p11) - ll(n11, p11))
    rows = {r[0]: r for r in Page(demo_page).table_after("test")[1:]}
    assert _num(rows["kupiec_pof"][1]) == pytest.approx(lr_pof, rel=1e-5)
    assert _num(rows["kupiec_pof"][2]) == pytest.approx(stats.chi2.sf(lr_pof, 1), rel=1e-5)
    assert _num(rows["christoffersen_cc"][1]) == pytest.approx(lr_pof + lr_ind, rel=1e-5)
    assert _num(rows["christoffersen_cc"][2]) == pytest.approx(stats.chi2.sf(lr_pof + lr_ind, 2), rel=1e-5)
    cum = stats.binom.cdf(x, n, p)
    zone = "green" if cum < 0.95 else "red" if cum >= 0.9999 else "yellow"
    assert f'class="zone-{zone}">{zone}<' in demo_page


# ---------------------------------------------------------------- risk events
def test_gate_run_shows_the_halt_and_every_denial_with_its_reason(gate_dir):
    page = build_report(gate_dir)
    p = Page(page)
    assert p.figures == ["fig-equity", "fig-exposure", "fig-pnl-dist", "fig-killswitch", "fig-fills"]
    assert page.count("<svg") == 5
    # 61 one-millisecond bars cannot feed a 100-bar window: a note, not a crash
    assert "too short for a rolling VaR backtest" in page
    timeline = p.table_after("ts")
    assert timeline[0] == ["ts", "kind", "state", "rule_id", "observed", "threshold", "explanation"]
    assert len(timeline) == 2
    ts, kind, state, rule, obs, thr, why = timeline[1]
    # the 51st order message (event 51, 1 ms + 51 x 100 us) with one fill: 51 > 50
    assert (ts, kind, state, rule) == ("1970-01-01T00:00:00.006100+00:00", "transition", "HALTED", "otr-kill")
    assert (_num(obs), _num(thr)) == (51.0, 50.0) and "order_to_trade" in why
    counts = dict(p.table_after("rule")[1:])
    assert counts == {"fat": "1", "kill-switch:halted": "248"}  # 298 limit orders, 50 passed
    risk = pd.read_parquet(gate_dir / "risk_events.parquet")
    assert counts == {k: str(v) for k, v in risk[risk["kind"] == "denial"]["rule_id"].value_counts().items()}
    denied = next(t for t in p.tables if t[0][:2] == ["ts", "order_id"])
    assert len(denied) == 1 + 200 and f"First 200 of {1 + 248} denials shown" in page
    first = dict(zip(denied[0], denied[1]))
    assert (first["order_id"], first["side"], first["qty"], first["rule_id"]) == ("0", "1", "5000", "fat")
    assert "order quantity 5000 exceeds the limit 1000" in first["explanation"]


def test_records_without_explanations_are_rendered_with_rule_numbers(gate_dir, tmp_path):
    shutil.copytree(gate_dir, tmp_path / "run")
    path = tmp_path / "run" / "risk_events.parquet"
    pd.read_parquet(path).drop(columns=["rule_id", "explanation"]).to_parquet(path)
    page = build_report(tmp_path / "run")
    assert "hold no rule ids or explanations" in page
    assert dict(Page(page).table_after("rule")[1:]) == {"-1": "248", "0": "1"}


# ---------------------------------------------------------------- escaping
def test_every_user_string_is_escaped(tmp_path):
    out = gate_run(tmp_path / 'run<i>&"', rule_id=PAYLOAD, name=PAYLOAD)
    folds = pd.DataFrame({"fold": [0, 1], "accuracy": [0.5, 0.6], "note": [PAYLOAD, "ok"]})
    write_diagnostics(folds, out)
    stress = tmp_path / f"stress{PAYLOAD.replace('/', '')}.parquet"
    pd.DataFrame({"scenario": [PAYLOAD, "flash"], "strategy": [PAYLOAD, "mm"],
                  "params": [{"k": PAYLOAD}, None], "pnl": [1.0, -2.0]}).to_parquet(stress)
    page = build_report(out, stress=stress, window="..2030-01-01")
    for raw in (PAYLOAD, '"&<>', "<script", "<i>"):
        assert raw not in page
    safe = html.escape(PAYLOAD)
    p = Page(page)
    assert p.title == p.h1 == f"tickguard report: {PAYLOAD}"  # shown as text, verbatim
    assert page.count(safe) >= 6  # title, h1, rule ids, explanations, diagnostics, stress
    assert PAYLOAD in dict(p.table_after("rule")[1:])


# ---------------------------------------------------------------- determinism
def test_same_inputs_give_the_same_bytes_in_and_across_processes(demo_dir, demo_page, tmp_path):
    folds = pd.DataFrame({"fold": [0, 1, 2], "accuracy": [0.5, 0.6, 0.7], "auc": [0.5, 0.55, 0.8]})
    run_dir = tmp_path / "run"
    shutil.copytree(demo_dir, run_dir)
    write_diagnostics(folds, run_dir)
    stress = tmp_path / "results.parquet"
    pd.DataFrame({"scenario": ["a", "a", "b"], "strategy": ["x", "y", "x"], "params": ["", "", ""],
                  "pnl": [1.0, -1.0, 2.0]}).to_parquet(stress)
    first = build_report(run_dir, stress=stress)
    assert build_report(run_dir, stress=stress) == first
    assert first.count("<svg") == 7
    code = ("import sys; from tickguard.reports.html import build_report; "
            "sys.stdout.write(build_report(sys.argv[1], stress=sys.argv[2]))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code, str(run_dir), str(stress)], env=env,
                           capture_output=True, check=True, timeout=300).stdout.decode()
    assert other == first


# ---------------------------------------------------------------- diagnostics and stress
def test_diagnostics_file_in_the_fold_report_format_is_plotted(demo_dir, tmp_path):
    from tickguard.strategies.ml import WalkForwardClassifier, svm_pipeline
    from tickguard.strategies.walkforward import WalkForward

    cols = WalkForwardClassifier(svm_pipeline(), WalkForward(50, 10, 1)).fold_report().columns
    folds = pd.DataFrame({c: [0.0, 0.0, 0.0] for c in cols})
    folds["fold"], folds["accuracy"], folds["auc"] = [0, 1, 2], [0.5, 0.6, 0.7], [0.5, 0.62, 0.74]
    run_dir = tmp_path / "run"
    shutil.copytree(demo_dir, run_dir)
    write_diagnostics(folds, run_dir)
    p = Page(page := build_report(run_dir))
    assert p.sections[-1] == "diagnostics" and p.figures[-1] == "fig-diagnostics"
    assert "Mean accuracy 0.6 over 3 folds" in page
    assert [r[list(cols).index("accuracy")] for r in p.table_after("fold")[1:]] == ["0.5", "0.6", "0.7"]
    pd.DataFrame({"fold": [0], "acc": [0.5]}).to_parquet(run_dir / "diagnostics.parquet")
    page = build_report(run_dir)
    assert "diagnostics.parquet is present but unusable" in page and "fig-diagnostics" not in page
    with pytest.raises(ValueError, match="'fold' and 'accuracy'"):
        write_diagnostics(pd.DataFrame({"fold": [0]}), run_dir)


def test_stress_grid_pivot_averages_repeated_cells(tmp_path):
    path = tmp_path / "results.parquet"
    pd.DataFrame({"scenario": ["s1", "s1", "s1", "s2", "s2"], "strategy": ["A", "A", "B", "A", "B"],
                  "params": ["k=1", "k=1", None, "k=1", ""],
                  "pnl": [10.0, 20.0, -5.0, -30.0, 0.0]}).to_parquet(path)
    pivot, dupes = load_stress(path)
    assert dupes == 1  # (s1, "A k=1") twice: mean (10 + 20) / 2 = 15
    assert list(pivot.columns) == ["A k=1", "B"]  # no params (None or ""): the strategy alone
    assert pivot.to_numpy().tolist() == [[15.0, -5.0], [-30.0, 0.0]]
    pd.DataFrame({"scenario": ["s"], "strategy": ["A"], "params": [""], "pnl_usd": [1.0]}).to_parquet(path)
    with pytest.raises(ValueError, match="did you mean 'pnl_usd'"):
        load_stress(path)


def test_stress_overflows_reads_the_grids_column_and_refuses_a_bad_cell(tmp_path, demo_dir):
    path = tmp_path / "results.parquet"
    base = {"scenario": ["s1", "s2", "s3"], "strategy": ["A", "A", "B"], "params": ["k=1", "k=2", None],
            "pnl": [1.0, 2.0, 3.0]}
    pd.DataFrame(base).to_parquet(path)
    assert stress_overflows(path) == []  # results that predate the column: nothing to say
    # as the grid writes it: JSON per run, "{}" when no ring dropped, null without a rulebook
    pd.DataFrame(dict(base, ring_overflows=['{"b": 3, "a": 1}', "{}", None])).to_parquet(path)
    assert stress_overflows(path) == [("s1", "A k=1", "a", 1), ("s1", "A k=1", "b", 3)]
    pd.DataFrame(dict(base, ring_overflows=['{"a": 1}', "a: 1", None])).to_parquet(path)
    with pytest.raises(ValueError, match=r"row 1, column 'ring_overflows': 'a: 1' is not a JSON object"):
        stress_overflows(path)
    with pytest.raises(ValueError, match=r"row 1, column 'ring_overflows'"):
        build_report(demo_dir, stress=path)


# ---------------------------------------------------------------- fills window
def test_fills_window_default_is_the_busiest_minute_and_bounds_are_inclusive(demo_dir):
    fills = pd.read_parquet(demo_dir / "fills.parquet")
    minute = pd.to_datetime(fills["ts"], utc=True).dt.floor("min")
    counts = minute.value_counts().sort_index()
    busiest = counts.idxmax()  # first of the largest counts
    sel, how = fills_window(fills, None, 500)
    assert len(sel) == counts.max() and f"starting {busiest.isoformat()}" in how
    lo, hi = fills["ts"].iloc[10], fills["ts"].iloc[20]
    window = f"{pd.Timestamp(lo, tz='UTC').isoformat()}..{pd.Timestamp(hi, tz='UTC').isoformat()}"
    sel, _ = fills_window(fills, window, 500)
    assert len(sel) == int(((fills["ts"] >= lo) & (fills["ts"] <= hi)).sum())
    sel, how = fills_window(fills, None, 3)
    assert len(sel) == 3 and f"first 3 of {counts.max()}" in how


@pytest.mark.parametrize("bad", ["foo", "a..b..c", "2024-13-45..", "2024-01-02"])
def test_bad_window_names_the_argument_and_the_format(bad):
    with pytest.raises(ValueError, match=r"window: got .*START\.\.END"):
        parse_window(bad)


def test_parse_window_treats_naive_times_as_utc_and_keeps_offsets():
    assert parse_window("1970-01-01T00:00:01..") == (10**9, None)
    assert parse_window("..1970-01-01T01:00:00+01:00") == (None, 0)


# ---------------------------------------------------------------- folders and the command
def test_too_short_equity_gives_notes_not_errors(demo_dir, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(demo_dir, run_dir)
    pd.read_parquet(run_dir / "equity.parquet").head(1).to_parquet(run_dir / "equity.parquet")
    page = build_report(run_dir)
    assert "Too short for a PnL distribution" in page and "fig-pnl-dist" not in page


def test_load_run_rejects_missing_and_incomplete_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="tickguard run --out"):
        load_run(tmp_path / "nope")
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="which is a file"):
        load_run(tmp_path / "f")
    with pytest.raises(ValueError, match="no summary.json"):
        load_run(tmp_path)


def _report(argv):
    parser = argparse.ArgumentParser(prog="tickguard")
    add_report_parser(parser.add_subparsers(dest="command", required=True))
    return run_report_command(parser.parse_args(["report", *argv]))


def test_report_command_writes_the_file_and_prints_its_path(demo_dir, tmp_path, capsys):
    out = tmp_path / "sub" / "r.html"
    assert _report([str(demo_dir), "--out", str(out), "--max-fills", "5"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert "5 fills, the busiest minute" in out.read_text()
    assert write_report(demo_dir, tmp_path / "r2.html", max_fills=5).read_text() == out.read_text()


@pytest.mark.parametrize("args, message", [
    (["{missing}"], "does not exist"),
    (["{run}", "--window", "yesterday"], "window: got 'yesterday'"),
    (["{run}", "--var-window", "1"], "var_window: got 1"),
    (["{run}", "--stress", "{missing}"], "stress:"),
])
def test_report_command_bad_input_exits_2_with_a_message(demo_dir, tmp_path, capsys, args, message):
    argv = [a.format(run=demo_dir, missing=tmp_path / "nope") for a in args]
    assert _report(argv) == 2
    assert message in capsys.readouterr().err
