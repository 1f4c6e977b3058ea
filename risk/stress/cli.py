"""``tickguard stress GRID.toml``: run a stress grid on Dask and print its results.

Exit codes: 0 every cell ran; 1 some cells failed (their tracebacks are in the results);
2 bad usage or an invalid grid file.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tickguard.data.cli_common import add_output_flags

__all__ = ["add_stress_parser", "run_stress_command"]

_SHOW = ["data", "scenario", "strategy", "params", "status", "pnl", "max_drawdown", "var_99",
         "ks_state", "n_denied", "worst_fill_bps", "n_fills"]


def add_stress_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``stress`` command to a ``parser.add_subparsers()`` object."""
    p = subparsers.add_parser("stress", help="run a stress grid (scenarios x strategies x params x data) on Dask")
    p.add_argument("grid", help="grid file (TOML; see tickguard.risk.stress.grid_config)")
    p.add_argument("--out", help="results folder (default: the grid's [output] dir, else ./tickguard_stress); "
                   "cells already there are not run again")
    p.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://host:8786 "
                   "(default: a local cluster)")
    p.add_argument("--workers", type=int, help="local cluster size (default: one worker per core)")
    add_output_flags(p)  # --quiet: no progress line, no table; --json: the summary
    return p


def run_stress_command(ns: argparse.Namespace) -> int:
    """Run the grid named by ``ns`` (from :func:`add_stress_parser`); returns the exit code."""
    from tickguard.reports.run_config import ConfigError

    from .grid import run_grid
    from .grid_config import load_grid

    if ns.scheduler and ns.workers is not None:
        print("tickguard stress: --workers sizes a local cluster; it cannot be combined with --scheduler",
              file=sys.stderr)
        return 2
    if ns.workers is not None and ns.workers < 1:
        print(f"tickguard stress: --workers: got {ns.workers}; use 1 or more", file=sys.stderr)
        return 2
    from tickguard.data.errors import DataError

    try:
        spec = load_grid(ns.grid)
        res = run_grid(spec, out=ns.out, client=ns.scheduler, n_workers=ns.workers, quiet=ns.quiet or ns.json)
    except (ConfigError, DataError, FileNotFoundError) as exc:  # the grid or its data, not a cell
        print(f"tickguard stress: {exc}", file=sys.stderr)
        return 2
    if ns.json:
        print(json.dumps(res.summary, indent=2))
    elif not ns.quiet:
        import pandas as pd

        with pd.option_context("display.width", 200, "display.max_columns", None,
                               "display.max_colwidth", 40):
            print(res.results[_SHOW].to_string(index=False))
        s = res.summary
        print(f"{s['cells']} cells: {s['ok']} ok, {s['failed']} failed ({s['ran']} ran, {s['skipped']} "
              f"reused) in {s['wall_s']:.1f}s; results in {res.out}")
        for cell in s["failed_cells"]:
            print(f"  failed {cell['key']}: {cell['error']}", file=sys.stderr)
    return 1 if res.summary["failed"] else 0
