"""The ``tickguard`` command line (grows with each layer)."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    raise SystemExit("tickguard CLI: under construction")
