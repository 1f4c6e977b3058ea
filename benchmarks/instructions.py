"""Instructions per event, counted by valgrind's callgrind: the engine's work, free of the VM's noise.

Timings on this VM move by +-20 % from one minute to the next, which hides any change of a few
per cent (benchmarks/PERFORMANCE.md). An instruction count barely moves between runs of the same
code and data (under 0.2 % for a whole backtest, whose Python side varies a little; 0.002 % for
the gate alone), so a change to a kernel can be judged by it. It is not a time (a cache miss or a
long dependency chain costs more than an instruction), so the throughput goals stay with
``benchmarks/engine.py``.

Each workload runs in a child under ``valgrind --tool=callgrind --instr-atstart=no``, after a
run under ``valgrind --tool=none`` that fills numba's cache (so the counted code is what the cache
holds, as in any later run): the child first runs the workload on a short slice (uncounted), then
switches collection on around the measured call only (``callgrind_control -i on|off``).

The build counted is not quite the host's: under valgrind, LLVM sees a CPU without AVX-512
(``haswell`` here, against the host's ``znver4``), and numba compiles and caches a build for it
beside the host's. The two come from the same IR, with different instruction selection and
scheduling; compare counts with counts, never with the host's timings.

Counts are of everything the measured call runs:
- ``bare``: the bare numba loop of benchmarks/engine.py (the ratio goal's yardstick);
- ``engine``: one backtest of the canonical workload (benchmarks/engine.py), which includes the
  Python side of ``run()`` (hashing the input, building the records);
- ``rulebook``: the same with the full default rulebook, relaxed as in benchmarks/engine.py;
- ``noop``: the same rulebook's rows and state through hooks that do nothing, wake-ups off
  (benchmarks/noop_risk.py): what the kill switch's structure in the loop costs before any rule;
- ``gate``: the pre-trade gate alone on orders that pass, per order (``_gate_calls_nb``).

``--without RULE_ID ...`` (with ``--only rulebook``) leaves those rules out of the rulebook: an
ablation, what they cost (3 December, evening, in benchmarks/PERFORMANCE.md).

With ``--by-function`` it also says where the instructions go: callgrind then records each
instruction's address, the child writes where numba put every jitted function it loaded (numba's
code libraries; valgrind sees only nameless JIT code), and each address is charged to the jitted
function that starts at or below it (other code keeps callgrind's own name). Self counts: a
function LLVM inlined into its caller is counted in the caller.

With ``--cache`` callgrind also simulates the caches (``--cache-sim=yes``: first-level
instruction and data caches and a last level, sized like this machine's, no prefetcher) and it
says how many first-level misses each unit costs, instruction (I1) and data (D1), and which
functions take them. Work that runs once per order, every ~157 events, finds its code and data
gone from the first level: there the time goes to misses more than to instructions (the
rulebook's extra time, benchmarks/PERFORMANCE.md, 3 December, late night). A model, not the
CPU: a tendency between two builds, not a time.

``count_instructions(..., footprint=True)`` (the engine and rulebook workloads) also has the
counted child write its machine code, for the per-order footprint of benchmarks/footprint.py.

valgrind is a system tool, not a Python dependency (``apt install valgrind``); without it this
benchmark says so and stops. A child takes 20 s to a minute and a half at 10^6 events (the numba
import and cache load run under valgrind too, uncounted but not free). After a change to a kernel,
the first run's warm-up compiles it under valgrind: a minute or two more.

    python -m tickguard.benchmarks.instructions [--events N] [--only NAME ...] [--by-function]
                                                [--cache] [--without RULE_ID ...] [--specialize]
                                                [--json PATH|-]
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Any, Iterator

from ._measure import write_json

__all__ = ["WORKLOADS", "callgrind_costs", "count_instructions", "demangle_numba", "function_costs",
           "jitted_symbols", "main", "parse_callgrind_total", "parse_callgrind_totals"]

_PRELUDE = """
import os, subprocess, sys
def counted(fn):
    if os.environ.get("TICKGUARD_CALLGRIND_WARM"):  # the warm-up run, outside valgrind
        return fn()
    symbols = os.environ.get("TICKGUARD_CALLGRIND_SYMBOLS")
    if symbols:  # where the jitted code sits, for --by-function (all of it is loaded by now)
        import json
        from tickguard.benchmarks.instructions import jitted_symbols
        syms = jitted_symbols()
        with open(symbols, "w") as fh:
            json.dump(syms, fh)
        if os.environ.get("TICKGUARD_CALLGRIND_CODE"):  # footprint: the code itself, as counted
            from tickguard.benchmarks.footprint import dump_code
            dump_code(os.environ["TICKGUARD_CALLGRIND_CODE"], syms)
    pid = str(os.getpid())
    subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
    try:
        return fn()
    finally:
        subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)
from tickguard.benchmarks.engine import (
    CANONICAL_SPANS, _engine_once, _gate_calls_nb, bare_ema_loop_nb, canonical_table, full_rulebook_gate,
    quote_workload,
)
N = int(sys.argv[1])
TABLE = canonical_table()
"""

#: name -> (child body, what one unit is). The body defines ``units`` (how many were counted).
WORKLOADS: dict[str, tuple[str, str]] = {
    "bare": ("""
ev = quote_workload(N)
bare_ema_loop_nb(ev[:1000], *CANONICAL_SPANS, 1.0)
counted(lambda: bare_ema_loop_nb(ev, *CANONICAL_SPANS, 1.0))
units = N
""", "event"),
    "engine": ("""
ev = quote_workload(N)
_engine_once(ev[:2000], TABLE)
r = counted(lambda: _engine_once(ev, TABLE))
units = N
orders = len(r.orders)
""", "event"),
    "rulebook": ("""
ev = quote_workload(N)
gate = full_rulebook_gate(TABLE)
if os.environ.get("TICKGUARD_RULEBOOK_WITHOUT"):  # --without: an ablation
    from tickguard.benchmarks.engine import without_rules
    gate = without_rules(gate, os.environ["TICKGUARD_RULEBOOK_WITHOUT"].split(","))
if os.environ.get("TICKGUARD_RULEBOOK_SPECIALIZE"):  # --specialize: the gate written per shape
    import dataclasses
    gate = dataclasses.replace(gate, specialize=True)
_engine_once(ev[:2000], TABLE, gate)
r = counted(lambda: _engine_once(ev, TABLE, gate))
assert len(r.risk_events) == 0, "the relaxed rulebook must let the canonical flow pass"
units = N
orders = len(r.orders)
""", "event"),
    "noop": ("""
from tickguard.benchmarks.noop_risk import NoOpHooksGate
ev = quote_workload(N)
gate = full_rulebook_gate(TABLE)
noop = NoOpHooksGate(gate.rulebook, source="no-op hooks")
_engine_once(ev[:2000], TABLE, noop)
counted(lambda: _engine_once(ev, TABLE, noop))
units = N
""", "event"),
    "gate": ("""
from tickguard.benchmarks.engine import gate_inputs
gate = full_rulebook_gate(TABLE)
req, args = gate_inputs(gate)
_gate_calls_nb(10, req, *args, *gate.new_state(1))
n = max(N // 50, 1000)
state = gate.new_state(1)
passed = counted(lambda: _gate_calls_nb(n, req, *args, *state))
assert passed == n, f"the gate denied {n - passed} of {n} orders"
units = n
""", "order"),
}


def parse_callgrind_total(path: str) -> int:
    """The instructions (``Ir``) of the ``totals:`` line of a callgrind output file."""
    return parse_callgrind_totals(path)["Ir"]


def parse_callgrind_totals(path: str) -> dict[str, int]:
    """Every event of the ``totals:`` line, named by the ``events:`` line (``Ir`` alone, or with
    ``--cache-sim=yes`` also ``Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw``)."""
    names = ["Ir"]
    with open(path) as fh:
        for line in fh:
            if line.startswith("events:"):
                names = line.split()[1:]
            elif line.startswith("totals:"):
                values = [int(v) for v in line.split()[1:]]
                return dict(zip(names, values + [0] * (len(names) - len(values))))
    raise ValueError(f"{path}: no 'totals:' line; is it a callgrind output file?")


def jitted_symbols() -> dict[str, int]:
    """Start address of every function in the code numba compiled or loaded in this process."""
    import gc

    from numba.core.codegen import CPUCodeLibrary

    names: set[str] = set()
    engine = None
    for lib in gc.get_objects():
        if not isinstance(lib, CPUCodeLibrary):
            continue
        engine = lib._codegen._engine
        # compiled here: the final module; loaded from the cache: the module it was linked with
        for module in (getattr(lib, "_final_module", None), getattr(lib, "_shared_module", None)):
            if module is not None:
                names.update(f.name for f in module.functions if not f.is_declaration)
    if engine is None:
        return {}
    addresses = {n: engine.get_function_address(n) for n in sorted(names)}
    return {n: a for n, a in addresses.items() if a}


def demangle_numba(name: str) -> str:
    """``_ZN9tickguard6engine8exchange11_execute_nbB3v31...`` -> ``tickguard.engine.exchange._execute_nb``
    (numba's Itanium-style names: length-prefixed parts, then the ABI and type tags); others as is."""
    if not name.startswith("_ZN"):
        return name
    parts, k = [], 3
    while k < len(name) and name[k].isdigit():
        j = k
        while j < len(name) and name[j].isdigit():
            j += 1
        n = int(name[k:j])
        parts.append(name[j:j + n])
        k = j + n
    return ".".join(parts) if parts else name


def callgrind_costs(path: str) -> Iterator[tuple[list[str], str, int, list[int]]]:
    """Each cost line of a callgrind file written with ``--dump-instr=yes --compress-pos=no
    --compress-strings=no``, in file order: (the file's event names, the function callgrind
    names, the instruction's address, its counts). The counts may stop before the last events
    (callgrind leaves trailing zeros out). The line after ``calls=`` is a call's inclusive cost,
    not the instruction's own: skipped. Refuses a file whose cost lines carry source lines
    instead of addresses."""
    names = ["Ir"]
    fn = "(unknown)"
    skip = False
    addressed = False
    with open(path) as fh:
        for line in fh:
            if skip:
                skip = False
            elif line.startswith("events:"):
                names = line.split()[1:]
            elif line.startswith("calls="):
                skip = True
            elif line.startswith("fn="):
                fn = line[3:].strip()
            elif line.startswith("0x"):
                fields = line.split()
                addressed = True
                yield names, fn, int(fields[0], 16), [int(v) for v in fields[1:]]
            elif line[:1].isdigit() and not addressed:
                raise ValueError(f"{path}: cost lines carry no instruction addresses (line "
                                 f"{line.strip()!r}); record it with --dump-instr=yes "
                                 "--compress-pos=no --compress-strings=no")


def function_costs(path: str, symbols: dict[str, int], max_size: int = 1 << 16,
                   event: str = "Ir") -> dict[str, int]:
    """Self counts of ``event`` (instructions by default) per function from a callgrind file
    (:func:`callgrind_costs`): an address is charged to the jitted function of ``symbols`` (name
    -> start) that starts at most ``max_size`` bytes below it, else to the function callgrind
    names (``fn=``)."""
    starts = sorted((a, n) for n, a in symbols.items())
    addrs = [a for a, _ in starts]
    costs: dict[str, int] = {}
    seen, column = None, 0  # the events line the column was found in (one per file)
    for names, fn, addr, values in callgrind_costs(path):
        if names is not seen:
            if event not in names:
                raise ValueError(f"{path}: no event {event!r} recorded (events: {' '.join(names)}); "
                                 "cache misses need --cache-sim=yes")
            seen, column = names, names.index(event)
        if len(values) <= column:
            continue
        i = bisect.bisect_right(addrs, addr) - 1
        owner = starts[i][1] if i >= 0 and addr - addrs[i] < max_size else fn
        costs[owner] = costs.get(owner, 0) + values[column]
    return costs


#: jitted functions that run outside the event loop: the reader thread's (the input's check and
#: marks, engine/backtest.py and engine/gate.py), which a single-chunk run calls before the loop
READER_FUNCTIONS = ("tickguard.engine.gate.marked_rows_nb", "tickguard.engine.backtest._scan_rows_nb")


def kernel_cost(costs: dict[str, int], symbols: dict[str, int]) -> int:
    """The event loop's share of ``function_costs``: every jitted function (``symbols``) but the
    reader thread's (READER_FUNCTIONS). Left out: Python, the input's hash, libc (the loop's own
    libc calls too, a memset per order in the gate: ~30 instructions)."""
    return sum(c for n, c in costs.items()
               if n in symbols and demangle_numba(n) not in READER_FUNCTIONS)


def count_instructions(name: str, events: int, by_function: bool = False,
                       cache: bool = False, without: tuple[str, ...] = (),
                       specialize: bool = False, footprint: bool | str = False) -> dict[str, Any]:
    """Run workload ``name`` under callgrind; instructions counted and per unit (and, with
    ``by_function``, per function: the 20 costliest, self counts per unit, and the event loop's
    kernels together (``kernel_per_unit``, see :func:`kernel_cost`); with ``cache``, the simulated
    first-level misses per unit, and per function with ``by_function``). ``without``: rule ids
    the rulebook workload leaves out (an ablation); ``specialize``: its pre-trade gate generated for
    the rulebook's shape (risk/gate_codegen.py). ``footprint`` (engine and rulebook workloads; a
    folder: also the annotated listings there): the code run on every order, in ``footprint``
    (:func:`tickguard.benchmarks.footprint.code_footprint`; implies ``by_function``)."""
    body, unit = WORKLOADS[name]
    if footprint and name not in ("engine", "rulebook"):
        raise ValueError(f"instructions: footprint applies to the engine and rulebook workloads (orders), "
                         f"not {name!r}")
    by_function = by_function or bool(footprint)
    if (without or specialize) and name != "rulebook":
        raise ValueError(f"instructions: --without and --specialize apply to the rulebook workload, "
                         f"not {name!r}")
    ablation = {"TICKGUARD_RULEBOOK_WITHOUT": ",".join(without)} if without else {}
    if specialize:
        ablation["TICKGUARD_RULEBOOK_SPECIALIZE"] = "1"
    with tempfile.TemporaryDirectory(prefix="tickguard-callgrind-") as tmp:
        out = os.path.join(tmp, "callgrind.out")
        symbols = os.path.join(tmp, "symbols.json")
        script = os.path.join(tmp, "child.py")
        with open(script, "w") as fh:
            fh.write(textwrap.dedent(_PRELUDE) + textwrap.dedent(body)
                     + "\nprint('units', units)\nprint('orders', globals().get('orders', 0))\n")
        t0 = time.perf_counter()
        # Fill numba's cache first, so that the counted child loads what the cache holds, as any
        # later run does: code compiled in the counted process itself differs (the engine's
        # kernels 98.13 instructions per event compiled there, 100.31 loaded; the gate 2 345 vs
        # 2 412 per order), so counts would depend on the cache's state. Under valgrind too:
        # its CPU is not the host's (LLVM sees a haswell without AVX-512), and numba keys its
        # cache on the CPU, so a warm-up on the host fills entries the counted child never reads
        warm = subprocess.run(["valgrind", "--tool=none", "-q", sys.executable, script, "2000"],
                              capture_output=True, text=True,
                              env={**os.environ, "TICKGUARD_CALLGRIND_WARM": "1", **ablation})
        if warm.returncode != 0:
            raise RuntimeError(f"instructions: workload {name!r} failed:\n{warm.stderr[-3000:]}")
        per_instr = ["--dump-instr=yes", "--dump-line=no", "--compress-pos=no",
                     "--compress-strings=no"] if by_function else []
        code_dir = os.path.join(tmp, "code")  # footprint: the child's machine code
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
             *per_instr, *(["--cache-sim=yes"] if cache else []), sys.executable, script, str(events)],
            capture_output=True, text=True,
            env={**os.environ, **({"TICKGUARD_CALLGRIND_SYMBOLS": symbols} if by_function else {}),
                 **({"TICKGUARD_CALLGRIND_CODE": code_dir} if footprint else {}), **ablation})
        if proc.returncode != 0:
            raise RuntimeError(f"instructions: workload {name!r} failed under valgrind "
                               f"(exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        units = int(next(line.split()[1] for line in proc.stdout.splitlines()
                         if line.startswith("units ")))
        orders = int(next(line.split()[1] for line in proc.stdout.splitlines()
                          if line.startswith("orders ")))
        totals = parse_callgrind_totals(out)
        total = totals["Ir"]
        res: dict[str, Any] = {"instructions": total, "units": units, "unit": unit,
                               "per_unit": total / units}
        if cache:
            res["l1_misses_per_unit"] = {"instruction": totals["I1mr"] / units,
                                         "data": (totals["D1mr"] + totals["D1mw"]) / units}
            res["last_level_misses_per_unit"] = (totals["ILmr"] + totals["DLmr"] + totals["DLmw"]) / units
        if by_function:
            with open(symbols) as fh:
                syms = json.load(fh)
            costs = function_costs(out, syms)
            top = sorted(costs.items(), key=lambda kv: -kv[1])[:20]
            res["functions"] = [{"function": demangle_numba(n), "per_unit": c / units} for n, c in top]
            res["kernel_per_unit"] = kernel_cost(costs, syms) / units
            if cache:
                i1 = function_costs(out, syms, event="I1mr")
                d1 = {n: function_costs(out, syms, event=e) for n, e in (("r", "D1mr"), ("w", "D1mw"))}
                res["kernel_l1_misses_per_unit"] = {
                    "instruction": kernel_cost(i1, syms) / units,
                    "data": (kernel_cost(d1["r"], syms) + kernel_cost(d1["w"], syms)) / units}
                miss = {f: i1.get(f, 0) + d1["r"].get(f, 0) + d1["w"].get(f, 0) for f in costs}
                res["functions_by_l1_misses"] = [
                    {"function": demangle_numba(f), "instruction": i1.get(f, 0) / units,
                     "data": (d1["r"].get(f, 0) + d1["w"].get(f, 0)) / units}
                    for f, _ in sorted(miss.items(), key=lambda kv: -kv[1])[:20]]
        if footprint:
            from tickguard.benchmarks.footprint import code_footprint, instruction_counts

            ir, i1 = instruction_counts(out)
            res["footprint"] = code_footprint(ir, i1, syms, code_dir, orders,
                                              {n: demangle_numba(n) for n in syms},
                                              footprint if isinstance(footprint, str) else None)
    res["wall_s"] = time.perf_counter() - t0
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tickguard.benchmarks.instructions",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10**6)
    ap.add_argument("--only", nargs="+", choices=sorted(WORKLOADS), help="run only these workloads")
    ap.add_argument("--by-function", action="store_true",
                    help="also the costliest functions (self instructions per unit)")
    ap.add_argument("--cache", action="store_true",
                    help="also simulate the caches: first-level misses per unit (and per function "
                         "with --by-function)")
    ap.add_argument("--without", nargs="+", default=[], metavar="RULE_ID",
                    help="leave these rules out of the rulebook workload (an ablation: with "
                         "--by-function, compare the kernel figure with the full rulebook's)")
    ap.add_argument("--json", help="write the counts as JSON to PATH ('-' for stdout)")
    ap.add_argument("--specialize", action="store_true",
                    help="the rulebook workload with its pre-trade gate generated for the "
                         "rulebook's shape (RiskGate(specialize=True))")
    ns = ap.parse_args(argv)
    if (ns.without or ns.specialize) and ns.only != ["rulebook"]:
        ap.error("--without and --specialize apply to the rulebook workload alone: add --only rulebook")
    missing = [tool for tool in ("valgrind", "callgrind_control") if shutil.which(tool) is None]
    if missing:
        print(f"instructions: {' and '.join(missing)} not found on PATH; this benchmark needs "
              "valgrind (e.g. apt install valgrind)", file=sys.stderr)
        return 2
    out: dict[str, Any] = {"events": ns.events, "without": ns.without, "specialize": ns.specialize}
    for name in ns.only or list(WORKLOADS):
        res = count_instructions(name, ns.events, ns.by_function, ns.cache, tuple(ns.without),
                                 ns.specialize)
        out[name] = res
        print(f"{name:9s} {res['per_unit']:9.1f} instructions per {res['unit']} "
              f"({res['instructions']:,} for {res['units']:,}; {res['wall_s']:.0f} s under valgrind)",
              flush=True)
        if "kernel_per_unit" in res:
            misses = res.get("kernel_l1_misses_per_unit")
            print(f"  {res['kernel_per_unit']:9.2f}  the event loop's kernels (jitted, the reader "
                  "thread's left out)" + (f"; first-level misses {misses['instruction']:.3f} "
                                         f"instruction, {misses['data']:.3f} data" if misses else ""))
        for f in res.get("functions", []):
            print(f"  {f['per_unit']:9.2f}  {f['function'][:100]}")
        if ns.cache:
            l1 = res["l1_misses_per_unit"]
            print(f"  first-level misses per {res['unit']}: instruction {l1['instruction']:.3f}, data "
                  f"{l1['data']:.3f}; last level {res['last_level_misses_per_unit']:.3f} (simulated)")
            for f in res.get("functions_by_l1_misses", []):
                print(f"  {f['instruction']:9.3f} I1 {f['data']:9.3f} D1  {f['function'][:90]}")
    if "bare" in out and "engine" in out:
        out["ratio_bare_to_engine"] = out["bare"]["per_unit"] / out["engine"]["per_unit"]
        print(f"bare / engine instructions per event: {out['ratio_bare_to_engine']:.3f}")
    if "engine" in out and "rulebook" in out:
        out["rulebook_extra"] = out["rulebook"]["per_unit"] / out["engine"]["per_unit"] - 1.0
        print(f"the rulebook's extra instructions: {out['rulebook_extra']:.1%} of the engine's")
    if ns.cache and "engine" in out and "rulebook" in out:
        extra = {k: out["rulebook"]["l1_misses_per_unit"][k] - out["engine"]["l1_misses_per_unit"][k]
                 for k in ("instruction", "data")}
        out["rulebook_extra_l1_misses_per_event"] = extra
        print(f"the rulebook's extra first-level misses per event: instruction {extra['instruction']:.3f}, "
              f"data {extra['data']:.3f}")
    if "engine" in out and "noop" in out:
        out["noop_extra"] = out["noop"]["per_unit"] / out["engine"]["per_unit"] - 1.0
        print(f"the no-op hooks' extra instructions: {out['noop_extra']:.1%} of the engine's")
    if ns.json:
        write_json(ns.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
