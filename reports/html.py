"""A single-file HTML tear sheet built from a run folder's records alone.

``build_report(run_dir)`` reads what :func:`tickguard.reports.records.write_run` wrote (summary.json,
equity/fills/order_events/risk_events Parquet) and returns one self-contained page: inline CSS,
figures as inline SVG (:mod:`.plots`), no script, no external resource, and a Content-Security-Policy
that forbids fetching or running anything. Every string that comes from the records or the user
(strategy name, rule ids, explanations, params, paths) is HTML-escaped. The same inputs give the
same bytes (no clock, fixed SVG salts).

PnL series for VaR (:func:`pnl_increments`): equity resampled to bars like the metrics do (last
sample in each epoch-aligned ``(t - bar, t]``, empty bars dropped), initial cash first, then
differenced: currency per bar, gains positive. ``bar="auto"`` (:func:`choose_bar`) takes the
coarsest of ``BAR_CANDIDATES`` that gives ``window + MIN_TEST`` increments (a full estimation
window plus enough out-of-sample days to test), else the one giving the most.

Optional strategy diagnostics: ``diagnostics.parquet`` in the run folder (:data:`DIAGNOSTICS_FILE`),
one row per walk-forward fold, as ``WalkForwardClassifier.fold_report()`` returns; see
:func:`write_diagnostics`.
"""

from __future__ import annotations

import difflib
import html
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from . import plots
from .metrics import resample_equity

__all__ = [
    "BAR_CANDIDATES", "DIAGNOSTICS_FILE", "MIN_TEST", "RunRecords", "build_report", "choose_bar",
    "fills_window", "load_run", "load_stress", "parse_window", "pnl_increments", "stress_overflows",
    "write_diagnostics", "write_report",
]

_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:1.5em auto;
max-width:1100px;color:#222;padding:0 1em}h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;
padding-bottom:.2em;margin-top:1.8em}table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:.8em 0}figure svg{max-width:100%;height:auto}figcaption{font-size:.85em;color:#555}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.4em .8em;font-size:.9em}
.zone-green{background:#c7e9c0}.zone-yellow{background:#fff3b0}.zone-red{background:#f4a3a3}
nav a{margin-right:1em}pre{font-size:.8em;background:#f7f7f7;padding:.6em;overflow:auto}"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_HEADLINE = ("total_pnl", "total_return", "sharpe", "sortino", "max_drawdown", "max_drawdown_abs",
             "n_trades", "win_rate", "profit_factor", "n_fills", "n_denied", "n_risk_events",
             "fees_paid", "start", "end")
_MAX_ROWS = 200
DIAGNOSTICS_FILE = "diagnostics.parquet"
#: bars tried by ``bar="auto"``, coarsest first
BAR_CANDIDATES = ("24h", "1h", "15min", "5min", "1min", "10s", "1s", "100ms", "10ms", "1ms")
MIN_TEST = 100  #: out-of-sample bars wanted beyond the estimation window
_RECORDS = ("equity", "fills", "order_events", "risk_events")
_STRESS_COLUMNS = ("scenario", "strategy", "params", "pnl")


# ---------------------------------------------------------------- formatting
def e(value: Any) -> str:
    """HTML-escaped text of anything (quotes too, so it is safe inside attributes)."""
    return html.escape(str(value), quote=True)


def fmt(v: Any) -> str:
    """Plain text of a table value: 6 significant digits, n/a for None/NaN, dicts as k: v."""
    if v is None:
        return "n/a"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}" if math.isfinite(v) else "n/a"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {fmt(x)}" for k, x in v.items()) or "(none)"
    return str(v)


def iso(ns: Any) -> str:
    return pd.Timestamp(int(ns), unit="ns", tz="UTC").isoformat()


def table(headers: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """An HTML table; every header and cell escaped, numbers right-aligned."""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(f'<td class="num">{e(fmt(v))}</td>' if isinstance(v, (int, float, np.number))
                        and not isinstance(v, (bool, np.bool_)) else f"<td>{e(fmt(v))}</td>" for v in row)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


# ---------------------------------------------------------------- reading a run folder
@dataclass(frozen=True)
class RunRecords:
    """A run folder's records as DataFrames; ``diagnostics`` is a DataFrame, None (no file) or a
    note saying why the file was not usable."""

    path: str
    summary: dict[str, Any]
    equity: pd.DataFrame
    fills: pd.DataFrame
    order_events: pd.DataFrame
    risk_events: pd.DataFrame
    diagnostics: pd.DataFrame | str | None

    @property
    def initial_cash(self) -> float:
        return float(self.summary.get("initial_cash", self.summary.get("metrics", {}).get("initial_cash")))


def load_run(run_dir: str | os.PathLike[str]) -> RunRecords:
    """Read a folder written by ``write_run``; clear errors for a missing or incomplete folder."""
    path = Path(run_dir)
    if not path.exists():
        raise FileNotFoundError(f"run folder {str(path)!r} does not exist; write one with "
                                "`tickguard run --out DIR`")
    if not path.is_dir():
        raise ValueError(f"run folder: got {str(path)!r}, which is a file; pass the folder that "
                         "holds summary.json and the records")
    if not (path / "summary.json").is_file():
        raise ValueError(f"run folder {str(path)!r} has no summary.json: not a run folder, or a run "
                         "that did not finish (write_run writes summary.json last)")
    missing = [f"{n}.parquet" for n in _RECORDS if not (path / f"{n}.parquet").is_file()]
    if missing:
        raise ValueError(f"run folder {str(path)!r} lacks {', '.join(missing)}; rewrite it with write_run")
    frames = {n: pd.read_parquet(path / f"{n}.parquet") for n in _RECORDS}
    summary = json.loads((path / "summary.json").read_text())
    diag: pd.DataFrame | str | None = None
    if (path / DIAGNOSTICS_FILE).is_file():
        d = pd.read_parquet(path / DIAGNOSTICS_FILE)
        ok = {"fold", "accuracy"} <= set(d.columns) and pd.api.types.is_numeric_dtype(d["accuracy"])
        diag = d if ok and len(d) else (f"{DIAGNOSTICS_FILE} is present but unusable: it needs rows "
                                        f"and numeric columns 'fold' and 'accuracy'; it has columns "
                                        f"{list(d.columns)} and {len(d)} rows.")
    return RunRecords(str(path), summary, diagnostics=diag, **frames)


def write_diagnostics(folds: pd.DataFrame, run_dir: str | os.PathLike[str]) -> Path:
    """Store per-fold diagnostics (e.g. ``WalkForwardClassifier.fold_report()``) for the report.

    Format of ``diagnostics.parquet``: one row per fold; required ``fold`` (int) and ``accuracy``
    (out-of-sample, in [0, 1]); ``balanced_accuracy`` and ``auc`` are plotted when present; every
    other column is shown in the table.
    """
    if not isinstance(folds, pd.DataFrame) or not {"fold", "accuracy"} <= set(folds.columns):
        got = list(folds.columns) if isinstance(folds, pd.DataFrame) else type(folds).__name__
        raise ValueError(f"folds: got {got}; pass a DataFrame with columns 'fold' and 'accuracy', "
                         "e.g. WalkForwardClassifier.fold_report()")
    out = Path(run_dir) / DIAGNOSTICS_FILE
    tmp = out.with_name(out.name + ".partial")
    folds.to_parquet(tmp, index=False)
    os.replace(tmp, out)
    return out


def pnl_increments(equity: pd.DataFrame, initial: float, bar: str) -> pd.Series:
    """Currency PnL per bar (gains positive), indexed by bar end; the first is from ``initial``."""
    bars = resample_equity(equity, bar)
    vals = np.concatenate([[float(initial)], bars.to_numpy()])
    return pd.Series(np.diff(vals), index=bars.index, name="pnl")


def choose_bar(equity: pd.DataFrame, initial: float, need: int) -> str:
    """The coarsest of BAR_CANDIDATES giving at least ``need`` increments, else the one giving most."""
    counts = [len(resample_equity(equity, b)) for b in BAR_CANDIDATES]
    for b, n in zip(BAR_CANDIDATES, counts):
        if n >= need:
            return b
    return BAR_CANDIDATES[int(np.argmax(counts))]


def parse_window(text: str) -> tuple[int | None, int | None]:
    """``"START..END"`` (timestamps, UTC when naive; a side may be empty) -> ns bounds, inclusive."""
    parts = text.split("..") if isinstance(text, str) else []
    bounds: list[int | None] = []
    try:
        for part in parts:
            ts = pd.Timestamp(part.strip()) if part.strip() else None
            bounds.append(None if ts is None else (ts.tz_localize("UTC") if ts.tzinfo is None
                                                   else ts.tz_convert("UTC")).value)
    except (ValueError, TypeError):
        parts = []
    if len(parts) != 2:
        raise ValueError(f"window: got {text!r}; use START..END with timestamps, e.g. "
                         "2024-01-02T14:30..2024-01-02T14:31 (UTC unless an offset is given)")
    return bounds[0], bounds[1]


def fills_window(fills: pd.DataFrame, window: str | None, max_fills: int) -> tuple[pd.DataFrame, str]:
    """Fills to draw on price and a phrase saying which: the given window or the busiest minute,
    at most ``max_fills`` (the first ones)."""
    f = fills.sort_values("ts", kind="stable")
    if window is not None:
        lo, hi = parse_window(window)
        keep = np.ones(len(f), dtype=bool)
        keep &= f["ts"].to_numpy() >= lo if lo is not None else True
        keep &= f["ts"].to_numpy() <= hi if hi is not None else True
        f, how = f[keep], f"window {window}"
    elif len(f):
        minute = f["ts"].to_numpy() // 60_000_000_000
        ids, counts = np.unique(minute, return_counts=True)
        best = int(ids[int(np.argmax(counts))])
        f, how = f[minute == best], f"the busiest minute, starting {iso(best * 60_000_000_000)}"
    else:
        how = "the run has no fills"
    if len(f) > max_fills:
        f, how = f.head(max_fills), how + f" (first {max_fills} of {len(f)})"
    return f, how


def _read_stress(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A stress grid's results.parquet, checked for the columns the report reads."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"stress: {str(p)!r} does not exist; pass the results.parquet of a "
                                "stress grid")
    df = pd.read_parquet(p)
    missing = [c for c in _STRESS_COLUMNS if c not in df.columns]
    if missing:
        cols = list(map(str, df.columns))
        near = {m: difflib.get_close_matches(m, cols, 1) for m in missing}
        hints = [f"{m!r} (did you mean {near[m][0]!r}?)" if near[m] else repr(m) for m in missing]
        raise ValueError(f"stress: {str(p)!r} lacks column(s) {', '.join(hints)}; it has "
                         f"{list(df.columns)}; need {list(_STRESS_COLUMNS)}")
    if not pd.api.types.is_numeric_dtype(df["pnl"]):
        raise ValueError(f"stress: column 'pnl' of {str(p)!r} has dtype {df['pnl'].dtype}; need numbers")
    return df


def _stress_labels(df: pd.DataFrame) -> list[str]:
    """Each row's strategy and params, as the pivot's columns name them."""
    params = [json.dumps(v, sort_keys=True, default=str) if isinstance(v, dict) else
              ("" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)) for v in df["params"]]
    return [f"{s} {q}".strip() for s, q in zip(df["strategy"].astype(str), params)]


def _pivot(df: pd.DataFrame, labels: list[str]) -> tuple[pd.DataFrame, int]:
    """``labels``: _stress_labels(df), computed once by the caller (the overflows read them too)."""
    d = pd.DataFrame({"scenario": df["scenario"].astype(str), "label": labels, "pnl": df["pnl"]})
    dupes = int((d.groupby(["scenario", "label"]).size() > 1).sum())
    return d.pivot_table(index="scenario", columns="label", values="pnl", aggfunc="mean"), dupes


def load_stress(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, int]:
    """Stress results (scenario, strategy, params, pnl) -> PnL pivot (scenario x strategy/params)
    and the number of cells that averaged several rows."""
    df = _read_stress(path)
    return _pivot(df, _stress_labels(df))


def stress_overflows(path: str | os.PathLike[str]) -> list[tuple[str, str, str, int]]:
    """The runs of a stress grid whose rules' rings filled inside their window (the grid's
    ``ring_overflows`` column, JSON ``{rule id: entries dropped}``): (scenario, strategy/params,
    rule id, entries dropped) per such rule, sorted. Empty when none did, or when the results
    predate the column; a cell that is not such JSON is refused, naming its row."""
    df = _read_stress(path)
    return _overflows_of(df, path, _stress_labels(df))


def _overflows_of(df: pd.DataFrame, path: str | os.PathLike[str],
                  labels: list[str]) -> list[tuple[str, str, str, int]]:
    if "ring_overflows" not in df.columns:
        return []
    out = []
    for k, (scenario, label, cell) in enumerate(zip(df["scenario"].astype(str), labels,
                                                     df["ring_overflows"])):
        if pd.isna(cell):
            continue  # no rulebook in that run
        try:
            dropped = json.loads(cell)
            rules = {str(rule): int(n) for rule, n in dropped.items()}
        except (TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"stress: {str(path)!r} row {k}, column 'ring_overflows': {cell!r} is not a "
                             "JSON object of rule id -> entries dropped (as tickguard.risk.stress writes "
                             f"it): {exc}") from None
        out += [(scenario, label, rule, n) for rule, n in rules.items() if n > 0]
    return sorted(out)


def _note(text: str) -> str:
    return f'<p class="note">{text}</p>'


def _figure(fig: Any, key: str, caption: str) -> str:
    return (f'<figure id="fig-{key}" class="tg-figure">{plots.render_svg(fig, key)}'
            f"<figcaption>{caption}</figcaption></figure>")


def _section(key: str, title: str, body: str) -> str:
    return f'<section id="{key}"><h2>{e(title)}</h2>\n{body}\n</section>'


def _summary(run: RunRecords) -> str:
    s, m = run.summary, run.summary.get("metrics", {})
    top = [(k, s.get(k)) for k in ("strategy", "events", "orders", "fills", "risk_events",
                                   "initial_cash", "final_equity", "pnl", "fees", "result_hash",
                                   "tickguard_version") if k in s]
    head = [(k, m.get(k)) for k in _HEADLINE if k in m]
    echo = json.dumps({"inputs": s.get("inputs", {}), "config": s.get("config", {})}, indent=2,
                      sort_keys=True, default=str)
    return (table(["run", "value"], top) + "<h3>Headline metrics</h3>" + table(["metric", "value"], head)
            + "<details><summary>All metrics (definitions: tickguard.reports.metrics)</summary>"
            + table(["metric", "value"], sorted(m.items())) + "</details>"
            + f"<details><summary>Inputs and engine config</summary><pre>{e(echo)}</pre></details>")


def _equity(run: RunRecords) -> str:
    eq, initial = run.equity, run.initial_cash
    if eq.empty:
        return _note("The run recorded no equity samples.")
    fig = plots.equity_figure(eq["ts"], eq["equity"], initial)
    return _figure(fig, "equity", "Equity (currency, marked to market) and drawdown below the running "
                   "peak, the initial cash counting as the first peak.")


def _exposure(run: RunRecords) -> str:
    eq, f = run.equity, run.fills
    if eq.empty:
        return _note("The run recorded no equity samples.")
    fig = plots.exposure_figure(eq["ts"], eq["gross_exposure"], eq["net_exposure"], f["ts"],
                                f["instrument"], f["position"])
    body = _figure(fig, "exposure", "Position after each fill (units, per instrument id) and gross / "
                   "net exposure (currency: sum |position x mark x multiplier| and its signed sum).")
    return body if len(f) else body + _note("The run has no fills: the position stayed flat.")


def _var(run: RunRecords, level: float, window: int, bar: str, method: str) -> tuple[str, str]:
    """(distribution section, backtest section)."""
    from tickguard.risk import (christoffersen_cc, historical_es, historical_var, kupiec_pof,
                                rolling_var, traffic_light, var_exceptions)

    if run.equity.empty:
        return (_note("No equity samples: no PnL series to measure."),) * 2
    need = window + MIN_TEST
    chosen = choose_bar(run.equity, run.initial_cash, need) if bar == "auto" else bar
    pnl = pnl_increments(run.equity, run.initial_cash, chosen)
    why = (f"chosen automatically: the coarsest bar giving at least {need} increments, else the one "
           "giving the most" if bar == "auto" else "set by the user")
    how = (f"PnL increments: equity resampled to <b>{e(chosen)}</b> bars ({why}); last sample of each "
           "bar, bars without a sample dropped (as in the metrics), the initial cash first. "
           f"{len(pnl)} increments, currency per bar, gains positive.")
    if len(pnl) < 2:
        return (_note(how + " Too short for a PnL distribution or a VaR backtest (need at least 2 "
                      "increments)."),) * 2
    v, es = historical_var(pnl, level), historical_es(pnl, level)
    dist = (f"<p>{how}</p>" + _figure(plots.pnl_histogram_figure(pnl, v, es, level, chosen), "pnl-dist",
            f"Per-bar PnL with the in-sample historical VaR {level:.2%} = {fmt(v)} and ES = {fmt(es)} "
            "(positive losses, linear quantile) marked at their negatives."))
    if len(pnl) < window + 2:
        return dist, _note(f"{len(pnl)} PnL increments at {e(chosen)} bars (see above): too short "
                           f"for a rolling VaR backtest: the {window}-bar window needs at least "
                           f"{window + 2}. Pass a smaller --var-window or a finer --bar, or run longer.")
    fc = rolling_var(pnl, method, window, level)
    exc = var_exceptions(pnl, fc)
    pof, cc, tl = kupiec_pof(exc, level), christoffersen_cc(exc, level), traffic_light(exc, level)
    rows = [(t.test, t.statistic, t.pvalue, t.df, t.n, t.exceptions, t.expected) for t in (pof, cc)]
    fig = plots.rolling_var_figure(exc.index.as_unit("ns").asi8, pnl.to_numpy()[window:],
                                   fc.to_numpy()[window:], exc.to_numpy())
    body = (f"<p>The PnL increments above ({len(pnl)} bars of {e(chosen)}). Rolling {e(method)} VaR at "
            f"{level:.2%} from the previous {window} bars (out of sample: bar t uses bars "
            f"t-{window}..t-1); an exception is PnL &lt; -VaR.</p>"
            + _figure(fig, "rolling-var", f"{len(exc)} forecasts, {int(exc.sum())} exceptions "
                      f"(expected {fmt(tl.expected)})."))
    body += table(["test", "LR statistic", "p-value", "df", "n", "exceptions", "expected"], rows)
    body += (f'<p>Basel traffic light: <span class="zone-{e(tl.zone)}">{e(tl.zone)}</span> '
             f"(P(X &le; {tl.exceptions}) = {fmt(tl.cumulative_probability)} for X ~ Binomial("
             f"{tl.n}, {fmt(tl.p)}); multiplier {fmt(tl.multiplier)}).</p>")
    if len(exc) < 100:
        body += _note(f"Only {len(exc)} forecasts: the tests have little power this short.")
    return dist, body


#: why a rule whose ring filled matters (the run's risk section and the stress section say it)
_OVERFLOW_WHY = ("dropped entries still inside their window because their ring was full: their counts "
                 "covered less than the window their rulebook row says.")


def _overflows(run: RunRecords) -> str:
    """The rules whose ring filled inside their window (metrics' ``risk_ring_overflows``): each
    judged a shorter window than its row says, so its decisions are not what the rulebook
    promises; nothing, when none did (or the summary predates the metric)."""
    dropped = run.summary.get("metrics", {}).get("risk_ring_overflows") or {}
    if not dropped:
        return ""
    rows = sorted(dropped.items())
    return ("<h3>Rules that judged a shorter window</h3>"
            + _note(f"{len(rows)} rule(s) {_OVERFLOW_WHY} Raise the rule's params.capacity and run again.")
            + table(["rule", "entries dropped inside the window"], rows))


def _risk(run: RunRecords) -> str:
    r = run.risk_events
    if r.empty:
        return _note("No risk events: no denial, no kill-switch transition.") + _overflows(run)
    t0 = int(run.equity["ts"].iloc[0]) if len(run.equity) else int(r["ts"].min())
    t1 = int(run.equity["ts"].iloc[-1]) if len(run.equity) else int(r["ts"].max())
    body = _figure(plots.killswitch_figure(r["ts"], r["kind"].astype(str), r["state"].astype(str), t0, t1),
                   "killswitch", "Kill-switch state after each transition or reset; denials as ticks.")
    has_text = "explanation" in r.columns
    if not has_text:
        body += _note("These records hold no rule ids or explanations (run without a RiskGate, or "
                      "written by an older write_run): rule numbers are shown instead.")
    cols = ["ts", "kind", "state", "rule_id" if "rule_id" in r.columns else "rule", "observed",
            "threshold"] + (["explanation"] if has_text else [])
    moves = r[r["kind"] != "denial"]
    body += "<h3>Kill-switch timeline</h3>" + (table(cols, _rows(moves, cols)) if len(moves)
                                               else "<p>No transition or reset.</p>")
    den = r[r["kind"] == "denial"]
    key = cols[3]
    counts = den.groupby(key, sort=True).size()
    body += "<h3>Denied orders</h3>" + table(["rule", "denials"], list(counts.items()))
    oe = run.order_events
    oe = oe[oe["event"] == "denied"][["order_id", "side", "qty", "price"]].drop_duplicates("order_id")
    den = den.merge(oe, on="order_id", how="left")
    dcols = ["ts", "order_id", "side", "qty", "price", key, "observed", "threshold"] + (
        ["explanation"] if has_text else [])
    body += table(dcols, _rows(den.head(_MAX_ROWS), dcols))
    if len(den) > _MAX_ROWS:
        body += _note(f"First {_MAX_ROWS} of {len(den)} denials shown; all are in risk_events.parquet.")
    return body + _overflows(run)


def _rows(df: pd.DataFrame, cols: list[str]) -> list[list[Any]]:
    out = []
    for row in df[cols].itertuples(index=False):
        out.append([iso(v) if c == "ts" else v for c, v in zip(cols, row)])
    return out


def _fills(run: RunRecords, window: str | None, max_fills: int) -> str:
    sel, how = fills_window(run.fills, window, max_fills)
    if sel.empty:
        return _note(f"No fills to show ({e(how)}).")
    fig = plots.fills_figure(sel["ts"], sel["mid"], sel["price"], sel["side"])
    return _figure(fig, "fills", f"{len(sel)} fills, {e(how)}. The records hold no quote stream, so "
                   "the price line is the exchange mid recorded with each fill.")


def _diagnostics(run: RunRecords) -> str:
    d = run.diagnostics
    if isinstance(d, str):
        return _note(e(d))
    scores = {c: d[c] for c in ("accuracy", "balanced_accuracy", "auc") if c in d.columns}
    fig = plots.diagnostics_figure(d["fold"], scores)
    return (_figure(fig, "diagnostics", f"Out-of-sample scores per walk-forward fold ({DIAGNOSTICS_FILE})."
                    f" Mean accuracy {fmt(float(d['accuracy'].mean()))} over {len(d)} folds.")
            + table(list(d.columns), d.head(_MAX_ROWS).itertuples(index=False)))


def _stress(path: str | os.PathLike[str]) -> str:
    df = _read_stress(path)
    labels = _stress_labels(df)
    pivot, dupes = _pivot(df, labels)
    fig = plots.stress_heatmap_figure(pivot.to_numpy(), [str(i) for i in pivot.index],
                                      [str(c) for c in pivot.columns])
    body = _figure(fig, "stress", f"PnL (currency) by scenario and strategy/params from {e(path)}.")
    if dupes:
        body += _note(f"{dupes} scenario x strategy/params cells had several rows: their mean is shown.")
    rows = [[idx, *vals] for idx, vals in zip(pivot.index, pivot.to_numpy())]
    body += table(["scenario", *pivot.columns], rows)
    dropped = _overflows_of(df, path, labels)
    if dropped:
        runs = len({(scenario, label) for scenario, label, _, _ in dropped})
        body += ("<h3>Runs whose rules judged a shorter window</h3>"
                 + _note(f"In {runs} run(s), rules {_OVERFLOW_WHY} Raise those rules' params.capacity "
                         "and run the grid again.")
                 + table(["scenario", "strategy / params", "rule", "entries dropped inside the window"],
                         [list(r) for r in dropped]))
    return body


def build_report(run_dir: str | os.PathLike[str], *, window: str | None = None,
                 stress: str | os.PathLike[str] | None = None, level: float = 0.99,
                 var_window: int = 100, bar: str = "auto", method: str = "historical",
                 max_fills: int = 500) -> str:
    """The tear sheet of a run folder as one HTML string.

    ``window``: fills shown on price, ``"START..END"`` (timestamps, UTC when naive; either side may
    be empty); default the busiest minute. ``stress``: a stress results Parquet (columns scenario,
    strategy, params, pnl) for a heat map. ``level``/``var_window``/``bar``/``method``: the rolling
    VaR backtest (confidence, bars per estimate, bar length or "auto", tickguard.risk method).
    """
    if isinstance(var_window, bool) or not isinstance(var_window, int) or var_window < 2:
        raise ValueError(f"var_window: got {var_window!r}; pass an int >= 2 (bars per VaR estimate)")
    if isinstance(max_fills, bool) or not isinstance(max_fills, int) or max_fills < 1:
        raise ValueError(f"max_fills: got {max_fills!r}; pass an int >= 1")
    run = load_run(run_dir)
    stress_html = _stress(stress) if stress is not None else None
    dist, backtest = _var(run, level, var_window, bar, method)
    name = str(run.summary.get("strategy", "?"))
    sections = [("summary", "Summary", _summary(run)), ("equity", "Equity and drawdown", _equity(run)),
                ("exposure", "Position and exposure", _exposure(run)),
                ("pnl-distribution", "PnL distribution, VaR and ES", dist),
                ("var-backtest", "Rolling VaR backtest", backtest),
                ("risk", "Kill switch and denied orders", _risk(run)),
                ("fills", "Fills on price", _fills(run, window, max_fills))]
    if run.diagnostics is not None:
        sections.append(("diagnostics", "Strategy diagnostics", _diagnostics(run)))
    if stress_html is not None:
        sections.append(("stress", "Stress grid", stress_html))
    nav = "".join(f'<a href="#{k}">{e(t)}</a>' for k, t, _ in sections)
    body = "\n".join(_section(*s) for s in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            f"<title>tickguard report: {e(name)}</title><style>{_CSS}</style></head><body>\n"
            f"<header><h1>tickguard report: {e(name)}</h1><p>Run folder <code>{e(run.path)}</code>, "
            f"result hash <code>{e(run.summary.get('result_hash', '?'))}</code>, tickguard "
            f"{e(run.summary.get('tickguard_version', '?'))}.</p><nav>{nav}</nav></header>\n"
            f"{body}\n</body></html>\n")


def write_report(run_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None,
                 **kwargs: Any) -> Path:
    """Write :func:`build_report` to ``out`` (default ``RUN_DIR/report.html``); returns the path."""
    page = build_report(run_dir, **kwargs)
    path = Path(out) if out is not None else Path(run_dir) / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path

