"""The ``tickguard`` command line.

Commands: ``data validate|convert|synth`` (the data layer), ``run [CONFIG.toml]`` (a backtest;
with no config, the bundled demo), ``report RUN_DIR`` (the HTML tear sheet), ``risk
var|backtest`` (VaR and its backtests on a PnL or returns file), ``bench --suite quick|full``
(the benchmark suite), ``stress GRID.toml`` (scenario grids), ``strategies`` (plugins).
Every command takes ``--quiet`` (nothing but errors) or ``--json`` (one JSON document on stdout).
Exit codes: 0 success; 1 the data or the run found problems; 2 bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from tickguard.benchmarks.cli import add_bench_parser, run_bench_command
from tickguard.data.cli_common import add_output_flags, emit
from tickguard.reports.report_cli import (
    add_report_parser, add_risk_parser, run_report_command, run_risk_command,
)
from tickguard.risk.stress.cli import add_stress_parser, run_stress_command

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from tickguard.data.cli import add_data_parser

    parser = argparse.ArgumentParser(prog="tickguard", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add_data_parser(sub)
    add_bench_parser(sub)
    add_report_parser(sub)
    add_risk_parser(sub)
    add_stress_parser(sub)
    r = sub.add_parser("run", help="backtest a strategy from a TOML config; with none, the bundled demo")
    r.add_argument("config", nargs="?", help="run config (TOML; see tickguard.reports.run_config)")
    r.add_argument("--data", help="without a config: canonical .parquet or .npy events "
                   "(default: bundled synthetic sample)")
    r.add_argument("--strategy", help="without a config: registered strategy plugin (default ema_crossover)")
    r.add_argument("--out", help="folder for records and summary.json (default: the config's "
                   "[output] dir, else ./tickguard_run)")
    r.add_argument("--latency-us", dest="latency_us", type=float,
                   help="without a config: constant entry and response latency, us (default 100)")
    r.add_argument("--seed", type=int, help="without a config: engine seed (default 0)")
    r.add_argument("--rulebook", help="without a config: a risk rulebook in the loop, \"default\" (the "
                   "shipped one) or a TOML path (default: no risk gate; a config sets it in [risk])")
    r.add_argument("--specialize", action="store_true", default=None,
                   help="without a config, beside --rulebook: the pre-trade gate written for the "
                   "rulebook's shape (same results; compiles once per shape)")
    add_output_flags(r)
    r.add_argument("--no-report", dest="report", action="store_false",
                   help="skip the HTML report (written as report.html beside the records by default)")
    add_output_flags(sub.add_parser("strategies", help="list installed strategy plugins"))
    return parser


def _run(ns: argparse.Namespace) -> int:
    from pathlib import Path

    from tickguard.data.cli_common import notice
    from tickguard.engine.backtest import run
    from tickguard.engine.config import EngineConfig, Latency, LatencyConfig
    from tickguard.engine.strategy import load_strategy
    from tickguard.reports.records import write_run
    from tickguard.reports.run_config import ConfigError, load_run_config

    if ns.config:
        clash = [f"--{k.replace('_', '-')}" for k in ("data", "strategy", "latency_us", "seed", "rulebook",
                                                      "specialize")
                 if getattr(ns, k) is not None]
        if clash:
            print(f"tickguard run: {', '.join(clash)} cannot be combined with a config file; "
                  "set them in the config", file=sys.stderr)
            return 2
        try:
            cfg = load_run_config(ns.config)
            strategy = cfg.build_strategy()
            data, instruments = cfg.build_data()
            risk = cfg.build_risk(instruments)
        except (ConfigError, FileNotFoundError) as exc:
            print(f"tickguard run: {exc}", file=sys.stderr)
            return 2
        config, name = cfg.engine, cfg.strategy
        out_dir = ns.out or cfg.out or Path("tickguard_run")
        inputs = {"config": str(ns.config), "data": cfg.data, "strategy": name,
                  "strategy_params": cfg.strategy_params}
        if risk is not None:  # the rulebook as the config names it (its rules go into the hash)
            inputs["risk"] = {"rulebook": cfg.raw["risk"]["rulebook"], "specialize": cfg.specialize}
    else:
        from tickguard.data.cli import bundled_samples

        data, instruments = ns.data or str(bundled_samples()[0][0]), None
        try:
            risk = _flag_risk(ns)
        except ValueError as exc:  # names the flag, and the rule and field of a bad rulebook
            print(f"tickguard run: {exc}", file=sys.stderr)
            return 2
        name = ns.strategy or "ema_crossover"
        strategy = load_strategy(name)()
        lat_ns = (100.0 if ns.latency_us is None else ns.latency_us) * 1e3
        config = EngineConfig(latency=LatencyConfig(submit=Latency(entry_ns=lat_ns, response_ns=lat_ns)),
                              seed=ns.seed or 0)
        out_dir = ns.out or "tickguard_run"
        inputs = {"data": str(data), "strategy": name}
        if risk is not None:  # as a config's [risk] echoes it
            inputs["risk"] = {"rulebook": ns.rulebook, "specialize": bool(ns.specialize)}
    last_note = [0.0]  # elapsed_s of the last line: at most one line per ~2 s of wall time

    def progress(events_done: int, elapsed_s: float) -> None:
        if elapsed_s - last_note[0] >= 2.0:
            last_note[0] = elapsed_s
            notice(ns, f"tickguard run: {events_done:,} events, "
                       f"{events_done / elapsed_s / 1e6:.1f} M events/s")

    # --quiet and --json: no callback at all, so the engine pays nothing for it
    result = run(data, strategy, config=config, instruments=instruments, risk=risk,
                 progress=None if ns.quiet or ns.json else progress)
    out = write_run(result, out_dir, inputs=inputs)
    report = None
    if ns.report:
        from tickguard.reports.html import write_report

        report = write_report(out)
    summary = json.loads((out / "summary.json").read_text())
    m = summary["metrics"]
    lines = [f"{key:>14}: {value}" for key, value in result.summary.items()]
    lines += [f"{'sharpe':>14}: {m['sharpe']}  max_drawdown: {m['max_drawdown']}  "
              f"trades: {m['n_trades']}  win_rate: {m['win_rate']}",
              f"records and summary.json written to {out}"]
    if report is not None:
        lines.append(f"report: {report}")
    emit(ns, summary, "\n".join(lines))
    return 0


def _flag_risk(ns: argparse.Namespace) -> object:
    """The RiskGate of ``--rulebook`` ("default" or a path, relative to the working directory) and
    ``--specialize``, or None without ``--rulebook``."""
    from pathlib import Path

    from tickguard.risk.inloop import DEFAULT_RULEBOOK, RiskGate

    if ns.rulebook is None:
        if ns.specialize:
            raise ValueError("--specialize needs --rulebook: add --rulebook default (the shipped "
                             "rulebook) or --rulebook PATH.toml, or drop --specialize")
        return None
    path = DEFAULT_RULEBOOK if ns.rulebook == "default" else Path(ns.rulebook)
    if not path.is_file():
        raise ValueError(f"--rulebook {ns.rulebook!r}: no such file; give \"default\" (the shipped "
                         "rulebook) or the path of a rulebook TOML")
    try:
        return RiskGate.load(path, None, specialize=bool(ns.specialize))
    except ValueError as exc:  # RulebookError: names the rule and the field
        raise ValueError(f"--rulebook {ns.rulebook!r}: {exc}") from None


def _strategies(ns: argparse.Namespace) -> int:
    from tickguard.engine.strategy import discover

    found = {name: ep.value for name, ep in sorted(discover().items())}
    emit(ns, found, "\n".join(f"{name:<20} {value}" for name, value in found.items()))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    if ns.command == "data":
        from tickguard.data.cli import run_data_command

        return run_data_command(ns)
    if ns.command == "run":
        return _run(ns)
    if ns.command == "bench":
        return run_bench_command(ns)
    if ns.command == "report":
        return run_report_command(ns)
    if ns.command == "risk":
        return run_risk_command(ns)
    if ns.command == "stress":
        return run_stress_command(ns)
    if ns.command == "strategies":
        return _strategies(ns)
    return 2


if __name__ == "__main__":
    sys.exit(main())
