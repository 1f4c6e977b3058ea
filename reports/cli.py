"""The ``tickguard`` command line.

Commands: ``data validate|convert|synth`` (the data layer), ``run`` (a backtest; with no options,
the bundled demo), ``strategies`` (installed strategy plugins).
Exit codes: 0 success; 1 the data or the run found problems; 2 bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from tickguard.data.cli import add_data_parser

    parser = argparse.ArgumentParser(prog="tickguard", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add_data_parser(sub)
    r = sub.add_parser("run", help="backtest a strategy; with no options, the bundled demo")
    r.add_argument("--data", help="canonical .parquet or .npy events (default: bundled synthetic sample)")
    r.add_argument("--strategy", default="ema_crossover", help="registered strategy plugin")
    r.add_argument("--out", default="tickguard_run", help="folder for records and summary.json")
    r.add_argument("--latency-us", dest="latency_us", type=float, default=100.0,
                   help="constant order entry and response latency, microseconds")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--json", action="store_true", help="print the summary as JSON")
    sub.add_parser("strategies", help="list installed strategy plugins")
    return parser


def _run(ns: argparse.Namespace) -> int:
    from tickguard.engine.config import EngineConfig, Latency, LatencyConfig
    from tickguard.engine.strategy import load_strategy
    from tickguard.reports.records import write_run

    from tickguard.data.cli import bundled_samples

    data = ns.data or str(bundled_samples()[0][0])
    factory = load_strategy(ns.strategy)
    strategy = factory()
    lat = Latency(entry_ns=ns.latency_us * 1e3, response_ns=ns.latency_us * 1e3)
    config = EngineConfig(latency=LatencyConfig(submit=lat), seed=ns.seed)
    from tickguard.engine.backtest import run

    result = run(data, strategy, config=config)
    out = write_run(result, ns.out, inputs={"data": str(data), "strategy": ns.strategy})
    summary = result.summary
    if ns.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        for key, value in summary.items():
            print(f"{key:>14}: {value}")
        print(f"records and summary.json written to {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    if ns.command == "data":
        from tickguard.data.cli import run_data_command

        return run_data_command(ns)
    if ns.command == "run":
        return _run(ns)
    if ns.command == "strategies":
        from tickguard.engine.strategy import discover

        for name, ep in sorted(discover().items()):
            print(f"{name:<20} {ep.value}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
