"""Shared measuring helpers for tickguard's benchmarks: machine facts, best-of-k timing, peak RSS.

Why: every benchmark (readers now, the engine later) must report the same things the same way —
which machine and library versions produced a figure, the best of several timings (the least
disturbed by other processes), and peak memory measured in a *fresh* process so that nothing the
benchmark itself allocated earlier inflates it. Kept free of tickguard imports so any layer's
benchmark can use it.

Peak RSS of the child: on Linux ``VmHWM`` from ``/proc/self/status`` (the high-water mark of the
child's own address space). ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is reported too, but on
Linux it is no use here: when the parent starts the child (vfork + exec), exec folds the
*parent's* high-water mark into the child's ``ru_maxrss``, so a parent that once held 300 MiB
gives every child a "peak" of at least 300 MiB (``RUSAGE_CHILDREN`` in the parent inherits the same
flaw and mixes all children). Elsewhere ``ru_maxrss`` is the only figure (bytes on macOS, KiB on
Linux/BSD; returned here in bytes). At the end the child also reports ``RssAnon`` / ``RssFile``,
which separate heap from memory-mapped file pages: mapped pages count in RSS but the kernel can
drop them at will.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Sequence

__all__ = [
    "ChildMemory",
    "Timing",
    "best_of",
    "child_peak_rss",
    "format_bytes",
    "format_table",
    "machine_info",
    "maxrss_bytes",
    "write_json",
]

_MARK = "__tickguard_measure__"
_VERSIONS = ("numpy", "pyarrow", "pandas", "numba", "tickguard")


def maxrss_bytes(who: int = resource.RUSAGE_SELF) -> int:
    """Peak resident set size of ``who`` (``RUSAGE_SELF`` or ``RUSAGE_CHILDREN``) in bytes."""
    raw = resource.getrusage(who).ru_maxrss
    return int(raw) if sys.platform == "darwin" else int(raw) * 1024  # Linux/BSD report KiB


def _mem_total() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def machine_info() -> dict[str, Any]:
    """Where a figure came from: OS, CPU, memory, Python and library versions."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    versions = {}
    for name in _VERSIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
        "mem_total_bytes": _mem_total(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        **versions,
    }


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of ``repeat`` runs; :attr:`best` is the figure to report."""

    times: tuple[float, ...]
    result: Any = field(default=None, compare=False)  #: what the last run returned

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        s = sorted(self.times)
        return s[len(s) // 2]


def best_of(fn: Callable[[], Any], repeat: int = 3) -> Timing:
    """Run ``fn()`` ``repeat`` times with :func:`time.perf_counter`; keep every duration."""
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat!r}")
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return Timing(tuple(times), result)


@dataclass(frozen=True)
class ChildMemory:
    """Memory of a fresh Python process: after ``setup`` (imports) and at the end of ``body``."""

    baseline_bytes: int  #: peak RSS once ``setup`` ran (interpreter + imports)
    peak_bytes: int  #: peak RSS over the whole child (VmHWM on Linux, else ru_maxrss)
    ru_maxrss_bytes: int  #: getrusage's figure (on Linux it includes the parent's; see above)
    status: dict[str, int]  #: /proc/self/status fields at the end, bytes (empty off Linux)
    result: Any  #: the JSON-able value ``body`` left in ``result``
    seconds: float  #: wall time of ``body``

    @property
    def extra_bytes(self) -> int:
        """What ``body`` added on top of the imports."""
        return self.peak_bytes - self.baseline_bytes


_WRAPPER = """\
import json as _json, resource as _resource, sys as _sys, time as _time
def _maxrss():
    raw = _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss
    return int(raw) if _sys.platform == "darwin" else int(raw) * 1024
def _peak():
    return _status().get("VmHWM") or _maxrss()
def _status():
    out = {{}}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    out[key] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return out
result = None
{setup}
_base = _peak()
_t0 = _time.perf_counter()
{body}
_secs = _time.perf_counter() - _t0
print({mark!r} + _json.dumps({{"baseline": _base, "peak": _peak(), "ru_maxrss": _maxrss(),
                               "status": _status(), "result": result, "seconds": _secs}}))
"""


def child_peak_rss(body: str, setup: str = "", *, timeout: float | None = None,
                   env: dict[str, str] | None = None, args: Sequence[str] = ()) -> ChildMemory:
    """Run ``setup`` then ``body`` (Python source) in a fresh interpreter and report its memory.

    ``body`` may assign a JSON-able value to ``result``; ``args`` land in the child's
    ``sys.argv[1:]`` (pass paths that way rather than formatting them into code). Raises
    :class:`RuntimeError` with the child's stderr if it fails.
    """
    code = _WRAPPER.format(setup=textwrap.dedent(setup), body=textwrap.dedent(body), mark=_MARK)
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=timeout, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(_MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"measuring child failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    data = json.loads(lines[-1][len(_MARK):])
    return ChildMemory(data["baseline"], data["peak"], data["ru_maxrss"], data["status"], data["result"],
                       data["seconds"])


def format_bytes(n: float | None) -> str:
    """``1536 -> '1.5 KiB'``; binary units, three significant figures."""
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Plain-text table: first column left-aligned, the rest right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def write_json(path: str, figures: Any) -> None:
    """A benchmark's ``--json PATH``: the figures, indented, to the file, or to stdout for ``-``."""
    text = json.dumps(figures, indent=2)
    if path == "-":
        print(text)
    else:
        with open(path, "w") as fh:
            fh.write(text + "\n")
