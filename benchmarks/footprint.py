"""The per-order code footprint: the machine code a backtest runs on every order, line by line.

Work that runs once per order (the gate, the monitors, the exchange's fill, the responses) finds
little of its code left in the first-level instruction cache after the ~157 events between two
orders of the canonical workload, and callgrind's cache model says the rulebook's extra time goes
to those misses more than to its instructions (benchmarks/PERFORMANCE.md). This says how large
that code is and where it sits: per jitted function, the 64-byte lines whose instructions ran at
least ``HOT_SHARE`` times per order (its *per-order lines*), the bytes of those instructions (the
lines they would fill, packed), and how all per-order lines fill the cache's sets (bits 6-11 of
the address on this machine: 64 sets of 8 ways). In callgrind's LRU model a set holding more
per-order lines than it has ways misses on each of them on every order.

Method: the counted child of :func:`tickguard.benchmarks.instructions.count_instructions`
(``footprint=True``) writes each jitted function's machine code, read from its own memory just
before collection starts (from the function's start to the next function's, at most 64 KB); here
it is disassembled with binutils' ``objdump`` and joined to callgrind's count per instruction
address. The bytes must come from the counted process: the same source loaded in another one
can be another build (benchmarks/PERFORMANCE.md, 4 December). Every counted address must fall on
an instruction boundary of that code, else the join is refused.

    python -m tickguard.benchmarks.footprint [--events N] [--only engine rulebook] [--specialize]
                                             [--listing DIR] [--json PATH|-]

``--listing DIR`` writes each function's disassembly with its counts per instruction (executions,
first-level instruction misses, cache set). Needs valgrind and objdump (``apt install valgrind
binutils``).
"""

from __future__ import annotations

import argparse
import bisect
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any

__all__ = ["HOT_SHARE", "code_footprint", "disassemble", "dump_code", "instruction_counts", "main"]

HOT_SHARE = 0.3  #: a line is per-order if some instruction on it ran this many times per order
LINE_BYTES = 64
N_SETS = 64  # first-level instruction cache: 32 KB, 8 ways, 64-byte lines (this machine's)
N_WAYS = 8
_MAX_CODE = 1 << 16


def dump_code(folder: str, symbols: dict[str, int]) -> None:
    """Write each jitted function's machine code (``symbols``: name -> start address, this
    process's) to ``folder/<start in hex>.bin``: from its start to the next symbol's, at most
    64 KB, shorter where a page past the end of the code cannot be read."""
    os.makedirs(folder, exist_ok=True)
    starts = sorted(set(symbols.values()))
    with open("/proc/self/mem", "rb", buffering=0) as mem:
        for start in starts:
            i = bisect.bisect_right(starts, start)
            size = min(starts[i] - start if i < len(starts) else _MAX_CODE, _MAX_CODE)
            data = b""
            while size >= 16 and not data:
                try:
                    mem.seek(start)
                    data = mem.read(size)
                except OSError:  # unmapped past the code's end: halve until it reads
                    size //= 2
            if data:
                with open(os.path.join(folder, f"{start:x}.bin"), "wb") as fh:
                    fh.write(data)


def instruction_counts(path: str) -> tuple[dict[int, int], dict[int, int]]:
    """(executions, first-level instruction misses) per instruction address of a callgrind file
    (:func:`tickguard.benchmarks.instructions.callgrind_costs`; misses: 0 without
    ``--cache-sim``)."""
    from tickguard.benchmarks.instructions import callgrind_costs

    ir: dict[int, int] = {}
    i1: dict[int, int] = {}
    seen, column = None, None  # the events line the column was found in (one per file)
    for names, _, addr, values in callgrind_costs(path):
        ir[addr] = ir.get(addr, 0) + values[0]
        if names is not seen:
            seen, column = names, (names.index("I1mr") if "I1mr" in names else None)
        if column is not None and len(values) > column:
            i1[addr] = i1.get(addr, 0) + values[column]
    return ir, i1


def disassemble(code: bytes) -> list[tuple[int, int, str]]:
    """(offset, size in bytes, text) of each x86-64 instruction of ``code``, by ``objdump``."""
    with tempfile.NamedTemporaryFile(suffix=".bin") as fh:
        fh.write(code)
        fh.flush()
        cmd = ["objdump", "-D", "-z", "-b", "binary", "-m", "i386:x86-64", "--no-show-raw-insn", fh.name]
        text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = []
    for line in text.splitlines():
        head, sep, rest = line.partition(":")
        head = head.strip()
        if sep and head and all(c in "0123456789abcdef" for c in head) and rest.strip():
            rows.append((int(head, 16), rest.strip()))
    out = []
    for k, (off, ins) in enumerate(rows):
        end = rows[k + 1][0] if k + 1 < len(rows) else len(code)
        out.append((off, end - off, ins))
    return out


def code_footprint(ir: dict[int, int], i1: dict[int, int], symbols: dict[str, int], code_dir: str,
                   per: int, names: dict[str, str] | None = None,
                   listing: str | None = None) -> dict[str, Any]:
    """The per-order footprint of the jitted functions of ``symbols`` (name -> start, the counted
    process's) whose code is in ``code_dir`` (:func:`dump_code`), from callgrind's counts per
    address (``ir``, ``i1``: :func:`instruction_counts`); ``per``: the orders counted. Functions
    with no per-order line are left out. ``names``: display names (default: the symbols').

    Returns ``functions`` (per function: ``lines`` per order, ``packed_lines``, the bytes of its
    per-order instructions over 64, rounded up; ``instructions`` executed per order;
    ``i1_misses`` per order), ``lines`` and ``packed_lines`` in all, ``sets`` (per-order lines in
    each cache set), ``overfilled`` (set -> lines, where more than the ways) and ``beyond_ways``.
    Raises ValueError when a counted address is not an instruction of the dumped code."""
    if per <= 0:
        raise ValueError(f"code_footprint: per must be > 0 (the orders counted), got {per}")
    names = names or {}
    starts = sorted(set(symbols.values()))  # names sharing a start: one function
    by_start = {a: n for n, a in symbols.items()}
    counted = sorted(ir)
    functions = []
    hot_lines: set[int] = set()
    for start in starts:
        path = os.path.join(code_dir, f"{start:x}.bin")
        if not os.path.exists(path):
            continue
        with open(path, "rb") as fh:
            code = fh.read()
        lo, hi = bisect.bisect_left(counted, start), bisect.bisect_left(counted, start + len(code))
        if lo == hi:
            continue
        name = names.get(by_start[start], by_start[start])
        instrs = disassemble(code)
        boundaries = {start + off for off, _, _ in instrs}
        stray = [a for a in counted[lo:hi] if a not in boundaries]
        if stray:
            raise ValueError(f"code_footprint: {len(stray)} counted addresses of {name} fall inside "
                             f"instructions (first {stray[0]:#x}): the code dumped is not the code counted")
        lines, hot_bytes, executed, misses = set(), 0, 0, 0
        rows = []
        for off, size, text in instrs:
            addr = start + off
            n = ir.get(addr, 0)
            executed += n
            misses += i1.get(addr, 0)
            if n >= HOT_SHARE * per:
                lines.add(addr // LINE_BYTES)
                hot_bytes += size
            rows.append(f"{off:6x} set {addr // LINE_BYTES % N_SETS:2d} {n:10d} {i1.get(addr, 0):7d}  {text}")
        if listing is not None:
            os.makedirs(listing, exist_ok=True)
            short = name.rsplit(".", 1)[-1][:60]
            with open(os.path.join(listing, f"{short}_{start:x}.txt"), "w") as fh:
                fh.write(f"# {name}\n# offset, cache set, executions, I1 misses, instruction\n")
                fh.write("\n".join(rows) + "\n")
        if lines:
            hot_lines |= lines
            functions.append({"function": name, "lines": len(lines),
                              "packed_lines": -(-hot_bytes // LINE_BYTES),
                              "instructions": executed / per, "i1_misses": misses / per})
    sets = [0] * N_SETS
    for line in hot_lines:
        sets[line % N_SETS] += 1
    overfilled = {s: n for s, n in enumerate(sets) if n > N_WAYS}
    functions.sort(key=lambda f: -f["lines"])
    return {"functions": functions, "lines": len(hot_lines),
            "packed_lines": sum(f["packed_lines"] for f in functions), "sets": sets,
            "overfilled": overfilled, "beyond_ways": sum(n - N_WAYS for n in overfilled.values()),
            "per": per}


def main(argv: list[str] | None = None) -> int:
    from tickguard.benchmarks._measure import write_json
    from tickguard.benchmarks.instructions import count_instructions

    ap = argparse.ArgumentParser(prog="python -m tickguard.benchmarks.footprint",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10**6)
    ap.add_argument("--only", nargs="+", choices=("engine", "rulebook"), default=["engine", "rulebook"])
    ap.add_argument("--specialize", action="store_true",
                    help="the rulebook with its gate and activity monitor written for its shape")
    ap.add_argument("--listing", help="write each function's annotated disassembly under DIR/<workload>/")
    ap.add_argument("--json", help="write the footprints as JSON to PATH ('-' for stdout)")
    ns = ap.parse_args(argv)
    missing = [t for t in ("valgrind", "callgrind_control", "objdump") if shutil.which(t) is None]
    if missing:
        print(f"footprint: {' and '.join(missing)} not found on PATH (apt install valgrind binutils)",
              file=sys.stderr)
        return 2
    out: dict[str, Any] = {"events": ns.events, "specialize": ns.specialize}
    for name in ns.only:
        listing = os.path.join(ns.listing, name) if ns.listing else None
        res = count_instructions(name, ns.events, by_function=True, cache=True,
                                 specialize=ns.specialize and name == "rulebook", footprint=listing or True)
        fp = res["footprint"]
        out[name] = fp
        kb = fp["lines"] * LINE_BYTES / 1024
        print(f"{name}: {fp['lines']} lines of code run on every order ({kb:.1f} KB; "
              f"{fp['packed_lines']} if packed), {fp['per']:,} orders; sets above {N_WAYS} ways: "
              f"{fp['overfilled'] or 'none'} ({fp['beyond_ways']} lines beyond the ways)")
        print(f"  {'lines':>5} {'packed':>6} {'instr/order':>11} {'I1 miss/order':>13}  function")
        for f in fp["functions"]:
            print(f"  {f['lines']:5d} {f['packed_lines']:6d} {f['instructions']:11.1f} "
                  f"{f['i1_misses']:13.2f}  {f['function'][:80]}")
    if ns.json:
        write_json(ns.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
