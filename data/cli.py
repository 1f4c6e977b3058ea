"""``tickguard data validate|convert|synth``: the data layer's command line.

Exit codes: 0 success (validate: no problem found), 1 problems found in the data, 2 bad usage or
a file that cannot be read at all. Each command takes ``--quiet`` and ``--json``
(:mod:`tickguard.data.cli_common`).
"""

from __future__ import annotations

import argparse
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any, Sequence

from .cli_common import add_output_flags, emit, notice
from .convert import convert
from .errors import DataError
from .loader import validate_file
from .parquet_io import DEFAULT_CHUNK_ROWS
from .synth import SynthConfig, synthesize_to_parquet

__all__ = ["add_data_parser", "bundled_samples", "run_data_command"]


def bundled_samples() -> list[tuple[Path, dict[str, Any]]]:
    """The samples shipped in ``tickguard.data.samples``, with the reader options each needs."""
    root = Path(str(files("tickguard.data.samples")))
    return [
        (root / "synthetic_l1.parquet", {}),
        (root / "synthetic_quotes.csv.gz", {"preset": "quotes", "instrument": 0}),
    ]


def _reader_options(ns: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for key in ("preset", "time_unit", "tz", "chunk_rows", "feed_latency_ns"):
        value = getattr(ns, key, None)
        if value is not None:
            opts[key] = value
    if ns.instrument is not None:
        opts["instrument"] = int(ns.instrument) if ns.instrument.isdigit() else ns.instrument
    if ns.columns:
        mapping = {}
        for item in ns.columns:
            field, sep, column = item.partition("=")
            if not sep or not field or not column:
                raise SystemExit(f"--columns expects FIELD=COLUMN (e.g. ts_exch=time), got {item!r}")
            mapping[field] = column
        opts["columns"] = mapping
    return opts


def _add_reader_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", help="column preset: quotes | trades | bars:<len>[:start|end]")
    p.add_argument("--columns", nargs="*", metavar="FIELD=COLUMN", help="map our fields to your columns")
    p.add_argument("--time-unit", dest="time_unit", choices=["s", "ms", "us", "ns"],
                   help="unit of numeric epoch timestamps")
    p.add_argument("--tz", help="time zone of naive ISO timestamps, e.g. America/New_York")
    p.add_argument("--instrument", help="instrument id or symbol for single-instrument files")
    p.add_argument("--feed-latency-ns", dest="feed_latency_ns", type=int,
                   help="ts_local = ts_exch + this, when the file has one time column")
    p.add_argument("--chunk-rows", dest="chunk_rows", type=int, help="rows per streamed chunk")
    p.add_argument("--mode", choices=["strict", "quarantine"], help="stop at the first problem, or set bad rows aside")
    p.add_argument("--max-findings", dest="max_findings", type=int, default=1,
                   help="strict mode: collect this many problems before stopping")
    p.add_argument("--quarantine", help="side file for bad rows (validate default: ./NAME.quarantine.csv)")
    p.add_argument("--duplicates", choices=["flag", "allow"], default="flag",
                   help="'allow' keeps rows identical to the previous one (real feeds print them)")


def add_data_parser(sub: Any) -> None:
    data = sub.add_parser("data", help="validate, convert or synthesize market data")
    dsub = data.add_subparsers(dest="data_command", required=True)

    v = dsub.add_parser("validate", help="check files; with no PATH, the bundled samples")
    v.add_argument("paths", nargs="*", help="CSV, .csv.gz, Parquet or .npy files")
    add_output_flags(v)
    _add_reader_args(v)

    c = dsub.add_parser("convert", help="validate IN and write OUT (.parquet or .npy)")
    c.add_argument("src")
    c.add_argument("dst")
    add_output_flags(c)
    _add_reader_args(c)

    s = dsub.add_parser("synth", help="write seeded synthetic ticks to Parquet (streaming)")
    s.add_argument("--events", type=int, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--instruments", type=int, default=1)
    s.add_argument("--depth", type=int, default=0, help="L2 levels per side (0: L1 only)")
    s.add_argument("--chunk-rows", dest="chunk_rows", type=int, default=DEFAULT_CHUNK_ROWS,
                   help=f"events per streamed chunk and Parquet row group (default {DEFAULT_CHUNK_ROWS})")
    add_output_flags(s)


def _common(ns: argparse.Namespace, default_mode: str) -> dict[str, Any]:
    opts = _reader_options(ns)
    opts["mode"] = ns.mode or default_mode
    opts["duplicates"] = ns.duplicates
    if ns.quarantine:
        opts["quarantine_path"] = ns.quarantine
    if opts["mode"] == "strict":
        opts["max_findings"] = ns.max_findings
    return opts


def _validate(ns: argparse.Namespace) -> int:
    targets = [(Path(p), {}) for p in ns.paths] or bundled_samples()
    reports, worst = [], 0
    for path, extra in targets:
        opts = {**extra, **_common(ns, "quarantine")}
        if ns.quarantine is None:  # side files go to the working folder, never beside a package
            opts["quarantine_path"] = Path.cwd() / f"{path.name}.quarantine.csv"
        try:
            report = validate_file(path, **opts)
        except DataError as exc:
            print(str(exc), file=sys.stderr)
            worst = max(worst, 2 if exc.findings[0].row is None else 1)
            continue
        reports.append(report)
        if not report.ok:
            worst = max(worst, 1)
        if not (ns.json or ns.quiet):  # as each file finishes: a long batch shows its progress
            print(report)
    emit(ns, [r.to_dict() for r in reports], "")
    return worst


def _convert(ns: argparse.Namespace) -> int:
    try:
        report = convert(ns.src, ns.dst, **_common(ns, "strict"))
    except DataError as exc:
        print(str(exc), file=sys.stderr)
        return 2 if exc.findings[0].row is None else 1
    wrote = f"wrote {report.rows_accepted} events to {ns.dst}"
    if report.rows_quarantined:
        wrote += f"; {report.rows_quarantined} row(s) quarantined to {report.quarantine_path}"
    doc = {"src": str(ns.src), "dst": str(ns.dst), "rows": report.rows_accepted,
           **{k: v for k, v in report.to_dict().items() if k != "file"}}  # file: the same as src
    emit(ns, doc, f"{report}\n{wrote}")
    return 0


def _synth(ns: argparse.Namespace) -> int:
    if ns.events < 0:
        print(f"--events must be >= 0, got {ns.events}", file=sys.stderr)
        return 2

    def progress(done: int) -> None:
        if done < ns.events:  # one line per full chunk; a one-chunk run stays silent
            notice(ns, f"tickguard data synth: {done} of {ns.events} events written")

    try:  # arguments are checked before any file is opened
        cfg = SynthConfig(n_instruments=ns.instruments, depth_levels=ns.depth)
        path = synthesize_to_parquet(ns.out, ns.events, seed=ns.seed, config=cfg,
                                     chunk_rows=ns.chunk_rows, progress=progress)
    except ValueError as exc:
        print(f"tickguard data synth: {exc}; check --instruments, --depth, --seed and --chunk-rows", file=sys.stderr)
        return 2
    doc = {"out": str(path), "events": ns.events, "seed": ns.seed, "instruments": ns.instruments,
           "depth": ns.depth}
    emit(ns, doc, f"wrote {ns.events} synthetic events (seed {ns.seed}) to {path}")
    return 0


def run_data_command(ns: argparse.Namespace) -> int:
    if ns.data_command == "validate":
        return _validate(ns)
    if ns.data_command == "convert":
        return _convert(ns)
    if ns.data_command == "synth":
        return _synth(ns)
    raise SystemExit(f"unknown data command {ns.data_command!r}")
