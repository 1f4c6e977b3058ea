"""Where a cold compile's seconds go: per jitted function, numba's own work and LLVM's.

The cold-compile goal (< 10 s, benchmarks/engine.py) is one number; this says what it is made
of. A child interpreter with an empty cache runs the canonical workload once (as the engine
benchmark's cold compile does) and records:

- per function numba compiled during ``run()`` (not at import: the engine's compile figure
  starts there too; kernels with explicit signatures that an import compiled are in
  ``imports_s``), the seconds of its compile **exclusive** of the functions it
  compiled on the way (numba compiles a callee while typing its caller: the caller's own time
  is its inclusive time less its callees' inclusive times), from numba's public event API
  (``numba.core.event``, kind ``numba:compile``);
- per function, the part of those seconds LLVM spent on its code library: function passes,
  module passes (the callees linked in, optimised again with them) and machine code. These are
  numba's private ``CodeLibrary`` methods, wrapped for the run; if a numba release renames them,
  the LLVM columns say ``unavailable`` and the rest stands.

``frontend`` is exclusive less LLVM: numba's Python side (bytecode analysis, type inference,
lowering to LLVM IR). Measured in one fresh cache per run; seconds move with the VM like any
timing here, so compare shares within a run, or A/B pairs of processes.

With ``--new-strategy`` it profiles what a quant waits for after editing a strategy: a second
strategy (microprice) compiled once the canonical run filled the cache (the engine benchmark's
"a new strategy with the engine cached"). With ``--new-shape``, what a risk team waits for when a
rulebook of a new shape runs with ``specialize=True``: the relaxed default rulebook's specialised
gate (risk/gate_codegen.py) compiled once the canonical run with its generic gate filled the cache.

    python -m tickguard.benchmarks.compile_profile [--rulebook] [--new-strategy | --new-shape]
                                                   [--depth] [--top N] [--json PATH|-]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from typing import Any, Callable

from tickguard.benchmarks._measure import child_peak_rss, format_table

__all__ = ["CompileProfile", "display_name", "main", "profile_cold_compile"]

_LLVM_STEPS = (  # (numba class name, method, column): the LLVM work per code library
    ("CPUCodeLibrary", "_optimize_functions", "function_passes"),
    ("CPUCodeLibrary", "_optimize_final_module", "module_passes"),
    ("JITCodeLibrary", "_finalize_specific", "machine_code"),
)
_GENERATED = {"_tickguard_loop_": "[loop]", "_tickguard_kernels_": "[kernels]"}


def display_name(module: str, qualname: str) -> str:
    """``module.qualname``; generated modules by role, not by their hashed names."""
    for prefix, role in _GENERATED.items():
        if module.startswith(prefix):
            return f"{role}.{qualname}"
    return f"{module}.{qualname}"


class CompileProfile:
    """Inclusive and exclusive compile seconds per function, from start/end events in nesting
    order; LLVM seconds per code library (numba names a function's library after its qualname).

    ``clock`` is injectable so the accounting can be checked on a hand-made event sequence.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.inclusive: dict[str, float] = {}
        self.exclusive: dict[str, float] = {}
        self.compiles: dict[str, int] = {}
        self.llvm: dict[str, dict[str, float]] = {}
        self.llvm_available = True
        self._stack: list[list[Any]] = []  # [name, start, seconds of nested compiles]
        self._by_qualname: dict[str, set[str]] = {}

    def start(self, name: str, qualname: str | None = None) -> None:
        """A compile of ``name`` begins; ``qualname`` (numba names its code library after it)
        lets :meth:`rows` give the library's LLVM seconds to it."""
        if qualname is not None:
            self._by_qualname.setdefault(qualname, set()).add(name)
        self._stack.append([name, self.clock(), 0.0])

    def end(self) -> None:
        name, t0, nested = self._stack.pop()
        took = self.clock() - t0
        self.inclusive[name] = self.inclusive.get(name, 0.0) + took
        self.exclusive[name] = self.exclusive.get(name, 0.0) + took - nested
        self.compiles[name] = self.compiles.get(name, 0) + 1
        if self._stack:
            self._stack[-1][2] += took

    def add_llvm(self, library: str, step: str, seconds: float) -> None:
        steps = self.llvm.setdefault(library, {})
        steps[step] = steps.get(step, 0.0) + seconds

    def install(self) -> None:
        """Listen to numba's compile events and time the LLVM steps, for the rest of the process."""
        from numba.core import codegen, event

        profile = self

        class _Listener(event.Listener):
            def on_start(self, ev: Any) -> None:
                py = ev.data["dispatcher"].py_func
                profile.start(display_name(py.__module__, py.__qualname__), py.__qualname__)

            def on_end(self, ev: Any) -> None:
                profile.end()

        event.register("numba:compile", _Listener())
        for cls_name, method, step in _LLVM_STEPS:
            cls = getattr(codegen, cls_name, None)
            if cls is None or not callable(getattr(cls, method, None)):
                self.llvm_available = False
                continue
            setattr(cls, method, self._timed(getattr(cls, method), step))

    def _timed(self, original: Callable[..., Any], step: str) -> Callable[..., Any]:
        def timed(library: Any, *args: Any, **kwargs: Any) -> Any:
            t0 = self.clock()
            try:
                return original(library, *args, **kwargs)
            finally:
                self.add_llvm(str(library.name), step, self.clock() - t0)
        return timed

    def rows(self) -> list[dict[str, Any]]:
        """One row per function, costliest (exclusive) first. A library's LLVM seconds go to the
        function whose qualname names it (numba's convention); a library no compiled function
        names, or that two share (``impl`` of two overloads), is listed as ``[library] NAME``."""
        llvm: dict[str, float] = {}
        for library, steps in self.llvm.items():
            owners = self._by_qualname.get(library, set())
            owner = next(iter(owners)) if len(owners) == 1 else f"[library] {library}"
            llvm[owner] = llvm.get(owner, 0.0) + sum(steps.values())
        names = set(self.exclusive) | set(llvm)
        rows = []
        for name in names:
            exclusive = self.exclusive.get(name, 0.0)
            row = {"function": name, "compiles": self.compiles.get(name, 0), "exclusive_s": exclusive,
                   "inclusive_s": self.inclusive.get(name, 0.0)}
            if self.llvm_available:
                row["llvm_s"] = llvm.get(name, 0.0)
                # a library no compile names (one loaded from the cache, whose machine code is
                # made ready inside its caller's compile) has no frontend of its own
                row["frontend_s"] = exclusive - row["llvm_s"] if name in self.exclusive else None
            rows.append(row)
        return sorted(rows, key=lambda r: -r["exclusive_s"])

    def totals(self) -> dict[str, Any]:
        out: dict[str, Any] = {"functions": len(self.exclusive),
                               "compile_events": sum(self.compiles.values()),
                               "exclusive_s": sum(self.exclusive.values())}
        if self.llvm_available:
            steps: dict[str, float] = {}
            for lib in self.llvm.values():
                for step, s in lib.items():
                    steps[step] = steps.get(step, 0.0) + s
            out["llvm_s"] = sum(steps.values())
            out["llvm_steps_s"] = steps
            out["frontend_s"] = out["exclusive_s"] - out["llvm_s"]
        else:
            out["llvm_s"] = "unavailable"
        return out


_CHILD = """
import dataclasses
import time
t_start = time.perf_counter()
from tickguard.benchmarks.compile_profile import CompileProfile
from tickguard.benchmarks.engine import (_engine_once, canonical_table, depth_workload, full_rulebook_gate,
    quote_workload)
from tickguard.engine.backtest import run
from tickguard.strategies.microprice import microprice
table = canonical_table()
gate = full_rulebook_gate(table) if sys.argv[1] != "0" else None
if sys.argv[1] == "2":  # the gate written for the rulebook's shape
    gate = dataclasses.replace(gate, specialize=True)
if sys.argv[4] == "depth":  # the loop is built with the L2 book
    events, table = depth_workload(1000)
else:
    events = quote_workload(1000)
t_imports = time.perf_counter() - t_start
profile = CompileProfile()  # from here: what run() compiles, as the engine's compile figure
if sys.argv[2] == "1":
    profile.install()
if sys.argv[3] == "ema":
    r = _engine_once(events, table, gate)
else:  # the engine benchmark's "new strategy" figure: another strategy's loop, kernels cached
    r = run(events, microprice(), instruments=table, risk=gate)
result = {"rows": profile.rows(), "totals": profile.totals(), "compile_s": r.timings["compile"],
          "imports_s": t_imports, "process_s": time.perf_counter() - t_start}
"""


def profile_cold_compile(rulebook: bool = False, new_strategy: bool = False,
                         depth: bool = False, new_shape: bool = False) -> dict[str, Any]:
    """The canonical workload's cold compile (with the relaxed default rulebook if ``rulebook``),
    in a child interpreter whose numba cache and generated loops start empty; with
    ``new_strategy``, what a second strategy (microprice) compiles once that run filled the
    cache: what a quant waits for after editing a strategy; with ``new_shape``, what the
    rulebook's gate specialised for its shape compiles once the run with the generic gate filled
    the cache (``rulebook`` implied); with ``depth``, on synthetic data with depth rows instead of
    L1 quotes (the loop built with the L2 book, engine/codegen.py)."""
    from tickguard.benchmarks.engine import _cache_env

    if new_strategy and new_shape:
        raise ValueError("profile_cold_compile: new_strategy and new_shape profile different second "
                         "compiles; ask for one of them")
    flag = "1" if rulebook or new_shape else "0"
    data = "depth" if depth else "quotes"
    with tempfile.TemporaryDirectory() as cache:
        env = _cache_env(cache)
        if new_strategy or new_shape:
            child_peak_rss(_CHILD, setup="import sys", env=env, args=[flag, "0", "ema", data])
        child = child_peak_rss(_CHILD, setup="import sys", env=env,
                               args=["2" if new_shape else flag, "1",
                                     "microprice" if new_strategy else "ema", data])
    return {"rulebook": rulebook or new_shape, "new_strategy": new_strategy, "new_shape": new_shape,
            "depth": depth, **child.result}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tickguard.benchmarks.compile_profile",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--rulebook", action="store_true",
                    help="compile the loop with the default rulebook")
    ap.add_argument("--new-strategy", action="store_true",
                    help="profile a second strategy's compile once the canonical run filled the cache")
    ap.add_argument("--new-shape", action="store_true",
                    help="profile the rulebook's gate specialised for its shape (specialize=True) once "
                         "the canonical run with the generic gate filled the cache")
    ap.add_argument("--depth", action="store_true",
                    help="data with depth rows: the loop built with the L2 book (L1 quotes otherwise)")
    ap.add_argument("--top", type=int, default=25, help="functions to list (default 25)")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON ('-': stdout only)")
    args = ap.parse_args(argv)
    if args.top < 1:
        ap.error(f"--top must be >= 1, got {args.top}")
    if args.new_strategy and args.new_shape:
        ap.error("--new-strategy and --new-shape profile different second compiles; give one of them")
    out = profile_cold_compile(args.rulebook, args.new_strategy, args.depth, new_shape=args.new_shape)
    if args.json == "-":
        print(json.dumps(out, indent=2))
        return 0
    tot = out["totals"]
    llvm = tot["llvm_s"]
    cols = ["function", "compiles", "exclusive s", "inclusive s"] + (["LLVM s", "frontend s"]
                                                                      if llvm != "unavailable" else [])
    table = [[r["function"], r["compiles"], f"{r['exclusive_s']:.2f}", f"{r['inclusive_s']:.2f}"]
             + ([f"{r['llvm_s']:.2f}", "-" if r["frontend_s"] is None else f"{r['frontend_s']:.2f}"]
                if "llvm_s" in r else [])
             for r in out["rows"][: args.top]]
    print(format_table(cols, table))
    if llvm == "unavailable":
        share = "LLVM: unavailable (numba's CodeLibrary methods moved)"
    else:
        share = (f"{llvm:.2f} s LLVM ({llvm / tot['exclusive_s']:.0%}), "
                 f"{tot['frontend_s']:.2f} s numba's frontend")
    what = ("a new strategy's compile" if out["new_strategy"]
            else "a new rulebook shape's compile (specialize=True)" if out["new_shape"]
            else "cold compile")
    print(f"{what} {out['compile_s']:.2f} s as the engine reports it; {tot['exclusive_s']:.2f} s in "
          f"{tot['compile_events']} compiles of {tot['functions']} functions: {share}; "
          f"imports before the run {out['imports_s']:.2f} s (numba, pandas, and kernels with explicit "
          f"signatures{'; and making the data with depth rows' if out['depth'] else ''}); the child's "
          f"whole life {out['process_s']:.2f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
