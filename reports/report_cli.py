"""``tickguard report`` (the HTML tear sheet of a run folder) and ``tickguard risk var|backtest``.

The lead's :mod:`tickguard.reports.cli` adds these with :func:`add_report_parser` /
:func:`add_risk_parser` and dispatches to :func:`run_report_command` / :func:`run_risk_command`.
Exit codes: 0 success; 2 bad usage or unreadable input (the message says what and how to fix it).
Both take ``--quiet`` and ``--json`` (:mod:`tickguard.data.cli_common`).

``risk`` commands read a series of returns or PnL (gains positive) from a CSV or Parquet file
(one numeric column, or the one named by ``--column``; rows with NaN are dropped and counted), or
from a run folder, whose equity is turned into currency PnL per bar exactly as the report does
(:func:`tickguard.reports.html.pnl_increments`). VaR and ES come back as positive losses in the
series' units.
"""

from __future__ import annotations

import argparse
import difflib
import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from tickguard.data.cli_common import add_output_flags, emit, notice

__all__ = ["METHODS", "add_report_parser", "add_risk_parser", "load_series", "run_report_command",
           "run_risk_command"]

METHODS = ("historical", "parametric", "ewma", "cornish_fisher", "monte_carlo", "fhs")
_PREFERRED = ("pnl", "return", "returns", "ret")


def _method(text: str) -> str:
    """argparse type for --method: a known method, else an error with the closest name."""
    if text in METHODS:
        return text
    near = difflib.get_close_matches(text, METHODS, 1)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    raise argparse.ArgumentTypeError(f"got {text!r}{hint} (choose from {', '.join(METHODS)})")


def add_report_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``report RUN_DIR [--out FILE.html] [--window START..END] [--stress PATH] ...``."""
    p = subparsers.add_parser("report", help="write the self-contained HTML tear sheet of a run folder")
    p.add_argument("run_dir", metavar="RUN_DIR", help="folder written by `tickguard run`")
    p.add_argument("--out", help="HTML file to write (default RUN_DIR/report.html)")
    p.add_argument("--window", help="fills shown on price: START..END timestamps, UTC unless an "
                   "offset is given, either side may be empty (default: the busiest minute)")
    p.add_argument("--stress", help="stress grid results.parquet (scenario, strategy, params, pnl) "
                   "to draw as a heat map")
    p.add_argument("--level", type=float, default=0.99, help="VaR confidence (default 0.99)")
    p.add_argument("--var-window", dest="var_window", type=int, default=100,
                   help="bars per rolling VaR estimate (default 100)")
    p.add_argument("--bar", default="auto", help="PnL bar for VaR, e.g. 1s, 1min, 1h (default auto)")
    p.add_argument("--method", type=_method, default="historical",
                   help=f"rolling VaR method: {', '.join(METHODS)} (default historical)")
    p.add_argument("--max-fills", dest="max_fills", type=int, default=500,
                   help="most fills drawn on price (default 500)")
    add_output_flags(p)
    return p


def run_report_command(ns: argparse.Namespace) -> int:
    """Write the report and print its path (``--json``: report, run_dir, bytes); 2 on bad input."""
    from tickguard.reports.html import write_report

    try:
        path = write_report(ns.run_dir, ns.out, window=ns.window, stress=ns.stress, level=ns.level,
                            var_window=ns.var_window, bar=ns.bar, method=ns.method,
                            max_fills=ns.max_fills)
    except (FileNotFoundError, ValueError, TypeError) as exc:
        print(f"tickguard report: {_hinted(exc)}", file=sys.stderr)
        return 2
    emit(ns, {"report": str(path), "run_dir": str(ns.run_dir), "bytes": path.stat().st_size}, str(path))
    return 0


def add_risk_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``risk var FILE ...`` and ``risk backtest FILE ...``."""
    p = subparsers.add_parser("risk", help="VaR / ES of a return or PnL series, and VaR backtests")
    sub = p.add_subparsers(dest="risk_command", required=True)
    v = sub.add_parser("var", help="VaR and ES (positive losses) of a series")
    b = sub.add_parser("backtest", help="rolling out-of-sample VaR against realized values: "
                       "Kupiec POF, Christoffersen conditional coverage, Basel traffic light")
    for q, window_help in ((v, "use only the last N observations (default: all)"),
                           (b, "observations per rolling VaR estimate (default 250)")):
        q.add_argument("source", metavar="PNL_OR_RETURNS_FILE",
                       help="CSV or Parquet of returns/PnL (gains positive), a run folder, or a "
                       "bundled daily series: daily:sp500, daily:nasdaq")
        q.add_argument("--method", type=_method, default="historical",
                       help=f"{', '.join(METHODS)} (default historical; monte_carlo and fhs are slow "
                       "when rolling)")
        q.add_argument("--level", type=float, default=0.99, help="confidence (default 0.99)")
        q.add_argument("--window", type=int, default=None if q is v else 250, help=window_help)
        q.add_argument("--column", help="column holding the series (default: the only numeric "
                       "column, else one named pnl/return/returns/ret)")
        q.add_argument("--bar", default="auto", help="run folders: PnL bar, e.g. 1s, 1min (default auto)")
        add_output_flags(q)
    return p


def _hinted(exc: BaseException) -> str:
    """The error text; for a missing file, with the closest names in its folder."""
    text = str(exc.args[0]) if isinstance(exc, FileNotFoundError) and exc.args else str(exc)
    path = getattr(exc, "filename", None)
    if isinstance(exc, FileNotFoundError) and path:
        parent = Path(path).parent
        near = difflib.get_close_matches(Path(path).name, [q.name for q in parent.iterdir()], 1) \
            if parent.is_dir() else []
        text = f"{path!s} does not exist" + (f"; did you mean {str(parent / near[0])!r}?" if near else "")
    return text


def load_series(source: str, column: str | None = None, *, bar: str = "auto",
                need: int = 250) -> tuple[pd.Series, str, int]:
    """(series, description, NaN rows dropped) from a CSV/Parquet file or a run folder.

    A run folder gives currency PnL per bar from its equity; ``bar="auto"`` picks the coarsest bar
    giving ``need`` increments (:func:`tickguard.reports.html.choose_bar`).
    """
    from tickguard.reports.html import choose_bar, load_run, pnl_increments

    if source.startswith("daily:"):  # the long daily index series that ship with `arch`
        from tickguard.data.daily import DAILY_NAMES, daily_returns

        name = source.split(":", 1)[1]
        if name not in DAILY_NAMES:
            raise ValueError(f"{source!r}: no bundled daily series {name!r}; use one of "
                             f"{['daily:' + n for n in sorted(DAILY_NAMES)]}")
        s = daily_returns(name, kind="simple")
        return s, f"{name} daily simple returns of the adjusted close ({s.index[0].date()} to {s.index[-1].date()})", 0
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(2, "no such file", str(path))
    if path.is_dir():
        if column is not None:
            raise ValueError(f"--column: got {column!r} with a run folder; a run folder's series is "
                             "its equity PnL per bar, so drop --column (or pass a CSV/Parquet file)")
        run = load_run(path)
        if run.equity.empty:
            raise ValueError(f"run folder {source!r} has no equity samples; nothing to measure")
        chosen = choose_bar(run.equity, run.initial_cash, need) if bar == "auto" else bar
        s = pnl_increments(run.equity, run.initial_cash, chosen)
        return s, f"run folder {source}: equity PnL per {chosen} bar (currency)", 0
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            df = pd.read_csv(path)
        elif suffix in (".parquet", ".pq"):
            df = pd.read_parquet(path)
        else:
            raise ValueError(f"{source!r}: unknown file type {suffix or '(none)'!r}; pass a .csv or "
                             ".parquet file of returns/PnL, or a run folder")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
        raise ValueError(f"{source!r} could not be read ({exc}); pass a CSV with a header row or a "
                         "Parquet file") from None
    numeric = [str(c) for c in df.columns if pd.api.types.is_numeric_dtype(df[c])
               and not pd.api.types.is_bool_dtype(df[c])]
    if column is None:
        pref = [c for c in numeric if c.lower() in _PREFERRED]
        if len(numeric) != 1 and not pref:
            raise ValueError(f"{source!r}: numeric columns {numeric} (of {list(map(str, df.columns))}); "
                             "pass --column NAME to say which holds the returns/PnL")
        column = numeric[0] if len(numeric) == 1 else pref[0]
    elif column not in df.columns:
        near = difflib.get_close_matches(column, list(map(str, df.columns)), 1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ValueError(f"--column: {source!r} has no column {column!r}{hint} "
                         f"(columns: {list(map(str, df.columns))})")
    elif column not in numeric:
        raise ValueError(f"--column: {column!r} in {source!r} has dtype {df[column].dtype}, not "
                         f"numbers; numeric columns are {numeric}")
    s = df[column].astype(float)
    finite = s.notna() & s.abs().lt(math.inf)
    return s[finite].reset_index(drop=True), f"{source}, column {column!r}", int((~finite).sum())


def _estimators(method: str) -> tuple[Any, Any]:
    from tickguard import risk

    return getattr(risk, f"{method}_var"), getattr(risk, f"{method}_es")


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def _var(ns: argparse.Namespace) -> dict[str, Any]:
    s, desc, dropped = load_series(ns.source, ns.column, bar=ns.bar, need=ns.window or 250)
    if ns.window is not None:
        if ns.window < 2:
            raise ValueError(f"--window: got {ns.window}; pass at least 2 observations")
        s = s.iloc[-ns.window:]
    var_fn, es_fn = _estimators(ns.method)
    return {"source": desc, "method": ns.method, "level": ns.level, "window": ns.window,
            "n_obs": int(len(s)), "dropped_nan": dropped, "var": var_fn(s, ns.level),
            "es": es_fn(s, ns.level), "sign": "positive losses; input gains positive"}


def _backtest(ns: argparse.Namespace) -> dict[str, Any]:
    from tickguard.reports.html import MIN_TEST
    from tickguard.risk import christoffersen_cc, kupiec_pof, rolling_var, traffic_light, var_exceptions

    w = ns.window
    if w < 2:
        raise ValueError(f"--window: got {w}; pass at least 2 observations per estimate")
    s, desc, dropped = load_series(ns.source, ns.column, bar=ns.bar, need=w + MIN_TEST)
    if len(s) < w + 2:
        raise ValueError(f"{desc}: {len(s)} observations, too few for a {w}-observation rolling "
                         f"window (need at least {w + 2}); pass a smaller --window")
    exc = var_exceptions(s, rolling_var(s, ns.method, w, ns.level))
    pof, cc, tl = kupiec_pof(exc, ns.level), christoffersen_cc(exc, ns.level), traffic_light(exc, ns.level)
    return {"source": desc, "method": ns.method, "level": ns.level, "window": w,
            "n_forecasts": pof.n, "exceptions": pof.exceptions, "expected": pof.expected,
            "dropped_nan": dropped, "kupiec_lr": pof.statistic, "kupiec_pvalue": pof.pvalue,
            "christoffersen_cc_lr": cc.statistic, "christoffersen_cc_pvalue": cc.pvalue,
            "traffic_light": tl.zone, "traffic_light_cum_prob": tl.cumulative_probability,
            "basel_multiplier": tl.multiplier}


def run_risk_command(ns: argparse.Namespace) -> int:
    """Run ``risk var`` / ``risk backtest``; print text or JSON; 2 with a message on bad input."""
    name = f"tickguard risk {ns.risk_command}"
    try:
        out = _clean(_var(ns) if ns.risk_command == "var" else _backtest(ns))
    except (FileNotFoundError, ValueError, TypeError) as exc:
        print(f"{name}: {_hinted(exc)}", file=sys.stderr)
        return 2
    if out["dropped_nan"]:  # a note, not an error: also in the JSON as dropped_nan
        notice(ns, f"{name}: dropped {out['dropped_nan']} row(s) with NaN/inf")
    emit(ns, out, "" if ns.json or ns.quiet else _risk_text(ns, out))
    return 0


def _risk_text(ns: argparse.Namespace, out: dict[str, Any]) -> str:
    """The human-readable result of ``risk var`` / ``risk backtest``."""
    lev = f"{ns.level:.4g}"
    lines = [f"source: {out['source']}"]
    if ns.risk_command == "var":
        lines.append(f"{ns.method} VaR at {lev}: {out['var']:.6g}   ES: {out['es']:.6g}   "
                     f"({out['n_obs']} observations; {out['sign']})")
        return "\n".join(lines)
    lines += [f"{ns.method} VaR at {lev}, window {out['window']}: {out['n_forecasts']} forecasts, "
              f"{out['exceptions']} exceptions (expected {out['expected']:.4g})",
              f"Kupiec POF LR {out['kupiec_lr']:.4g} (p = {out['kupiec_pvalue']:.4g});  Christoffersen cc "
              f"LR {out['christoffersen_cc_lr']:.4g} (p = {out['christoffersen_cc_pvalue']:.4g})",
              f"traffic light: {out['traffic_light']} (P(X <= exceptions) = "
              f"{out['traffic_light_cum_prob']:.4g}; multiplier {out['basel_multiplier']:.4g})"]
    return "\n".join(lines)
