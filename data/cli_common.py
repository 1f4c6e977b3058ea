"""The output flags every ``tickguard`` command shares: ``--quiet`` and ``--json``.

``--quiet`` prints nothing but errors; ``--json`` prints one JSON document on stdout. They are one
mutually exclusive group, so giving both is a usage error (exit 2). Progress and notes go to
stderr through :func:`notice`, which ``--quiet`` silences. This lives in the data layer, the
lowest, so every command line (data, run, report, risk, stress, bench) can use it without an
import cycle.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["JSON_HELP", "QUIET_HELP", "add_output_flags", "emit", "notice"]

QUIET_HELP = "print nothing but errors (the exit code still tells how it went)"
JSON_HELP = "print one machine-readable JSON document on stdout instead of text"


def add_output_flags(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--quiet`` and ``--json`` (mutually exclusive) to ``parser``; returns it."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    group.add_argument("--json", action="store_true", help=JSON_HELP)
    return parser


def emit(ns: argparse.Namespace, doc: Any, text: str) -> None:
    """Print ``doc`` as JSON under ``--json``, else ``text`` unless ``--quiet`` (or empty)."""
    if ns.json:
        print(json.dumps(doc, indent=2, default=str))  # default=str: paths and timestamps
    elif not ns.quiet and text:
        print(text)


def notice(ns: argparse.Namespace, message: str) -> None:
    """Progress or a note on stderr, so it never mixes into the JSON on stdout; silenced by --quiet."""
    if not ns.quiet:
        print(message, file=sys.stderr, flush=True)
