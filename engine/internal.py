"""``internal_njit``: numba's ``njit(cache=True)`` for kernels that only jitted code calls.

For every function it compiles, numba also builds two entry points for callers outside jitted
code: a CPython wrapper (it unboxes every argument: for a kernel taking twenty structured arrays
that is a lot of code) and a C-callable wrapper. The engine's kernels are called only by the event
loop, so both are compile time spent on code nothing runs: leaving them out cut a cold compile of
the engine from 14.6 to 12.1 s (median of 4 interleaved runs each, benchmarks/engine.py's
workload; benchmarks/PERFORMANCE.md, "Compile").

They also compile without reference counting: they allocate nothing, and the loop hands them
unmanaged views (unmanaged.py), so every incref/decref numba would emit is code for nothing.
Numba hands that setting down to the functions a kernel calls, unless those set their own: a
kernel that calls user code which may allocate (a strategy's callback, a risk module's hooks)
must pass ``_nrt=True`` (the loop template does, see ``_CALLS_HOOKS``). A kernel that allocates
is refused by numba at compile time, not at run time.

A dispatcher built without entry points must not be called from Python (numba would jump through
a null entry point). Such a call here compiles, once per process, a second, uncached copy of the
kernel with the entry point and runs that instead: tests and notebooks may call an internal
kernel directly, at the price of its compile. Under ``NUMBA_DISABLE_JIT`` the plain Python
function is returned, as ``njit`` does.

Inlining, numba's or LLVM's. ``inline="always"`` has numba splice a callee's code into each
caller before typing: the caller is typed and lowered again with all of it, which for the risk
hooks cost most of a cold compile (the gate's kernel alone 21 of a rulebook build's 45 s). Numba's
``forceinline=True`` compiles the callee once and marks it ``alwaysinline`` for LLVM, which then
inlines it into every caller, also when the callee comes from numba's cache (its bitcode is cached
beside its machine code). Numba hands ``forceinline`` down to the functions a forceinlined one
calls, unless they set it: internal kernels set it to False, so a kernel kept apart
(:func:`not_inlined`) stays apart wherever it is called from. Where numba's inlining gave tighter
code it is kept (the gate's own helpers in risk/pretrade.py: benchmarks/PERFORMANCE.md,
5 December, afternoon).
"""

from __future__ import annotations

import platform
import sys
from typing import Any, Callable

import llvmlite.binding as _llvm
from numba import config as numba_config
from numba import njit, types
from numba.core.extending import intrinsic
from numba.core.registry import CPUDispatcher
from numba.core.typing import Signature

__all__ = ["CYCLES_AVAILABLE", "SLOT_BYTES", "code_offset", "cycles", "internal_njit", "not_inlined"]

# forceinline False: not inherited from a forceinlined caller (see the module doc)
_INTERNAL = {"no_cpython_wrapper": True, "no_cfunc_wrapper": True, "_nrt": False, "forceinline": False}


class _InternalDispatcher(CPUDispatcher):
    """A dispatcher whose compiled code has no entry point for Python: see the module docstring."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        entry = self.__dict__.get("_python_entry")
        if entry is None:  # cache=False: the on-disk entry is the wrapper-less build
            entry = njit(self.py_func)
            self.__dict__["_python_entry"] = entry
        return entry(*args, **kwargs)


def internal_njit(*signature: Any, cache: bool = True, **options: Any) -> Callable[[Any], Any]:
    """``@internal_njit`` or ``@internal_njit(sig)``: ``njit(sig, cache=cache, **options)`` with no
    entry points for Python and C callers (jitted callers link the code directly) and, unless
    ``_nrt=True`` is passed, no reference counting."""
    if len(signature) == 1 and callable(signature[0]) and not isinstance(signature[0], Signature):
        return internal_njit(cache=cache, **options)(signature[0])

    def decorate(func: Any) -> Any:
        if numba_config.DISABLE_JIT:
            return func
        dispatcher = njit(*signature, cache=cache, **{**_INTERNAL, **options})(func)
        dispatcher.__class__ = _InternalDispatcher  # same layout: only __call__ differs
        return dispatcher

    return decorate


@intrinsic
def not_inlined(typingctx):
    """Called first thing in a jitted function: LLVM never inlines that function into its callers.

    For a hot inner loop called from a large function (the strategy's steps, called by the event
    loop): inlined, it shares the caller's register allocation, which spilled the loop's values to
    the stack differently with every change to the caller's other paths (the steps ran 122 to 130
    instructions per event for the same source, depending on what else the loop held). Out of line
    it keeps its own registers (86 to 91 per event in the builds since), for a call per stretch of
    events (benchmarks/PERFORMANCE.md, 3 December, late night).
    """

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        builder.function.attributes.add("noinline")
        return context.get_dummy_value()

    return types.none(), codegen


if numba_config.DISABLE_JIT:  # the pure-Python twin inlines nothing

    def not_inlined() -> None:  # type: ignore[no-redef]
        """Nothing to do (pure-Python twin)."""


# --- where the per-order kernels sit in their pages --------------------------------------------
# Each kernel compiled with an explicit signature is a module of its own, and the JIT starts every
# module at a page boundary: their first lines (prologue, argument unpacking, the common path's
# start), run on every order, all fell in the same few sets of the 8-way, 64-set first-level
# instruction cache (the set is bits 6-11 of the address), which then missed on nearly every
# order while most sets sat idle (callgrind's model, with the rulebook: ~110 of ~155 misses per
# order in sets 0-9). code_offset(slot) starts its caller's module SLOT_BYTES * slot bytes into
# the page (padding that never runs), a slot per kernel on the per-order path:
#   0 run_chunk_nb (the loop)   1 _handle_requests   2 _gate (the risk module's pretrade_nb)
#   3 _execute_nb   4 _fill_nb   5 _activity (its monitor_activity_nb)   6 latency_nb
# A kernel without an explicit signature is linked into its callers' modules: placing it there
# is its caller's business (code_offset in it does nothing). A module with no code_offset of its
# own that links one with it is shifted by that one's padding (process_arrivals_nb moved with
# _execute_nb's slot): slots move more than their own kernels (benchmarks/PERFORMANCE.md,
# 3 December, late afternoon).
# Only on x86-64 Linux, where numba's code goes to the large-model section .ltext; elsewhere
# it does nothing.
SLOT_BYTES = 576  # nine cache lines: the hot head of a kernel
_PAD_CODE = sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")
if _PAD_CODE:
    _llvm.initialize_native_asmparser()  # module asm goes through LLVM's assembler for the target


class _ModuleAsm:
    """Top-level lines of an llvmlite module's text (``module asm``), kept among its globals so
    that the module prints them; LLVM emits them before the module's first function."""

    def __init__(self, name: str, lines: tuple[str, ...]) -> None:
        self.name = name
        self.lines = lines

    def __str__(self) -> str:
        return "\n".join(f'module asm "{line}"' for line in self.lines)


@intrinsic
def code_offset(typingctx, slot):
    """Start the code of the calling kernel's module ``slot`` (a literal int, see the table
    above) slots into its page. Only the first call in a module counts: modules linked into it
    bring their own, skipped by the assembler's guard."""
    if not isinstance(slot, types.IntegerLiteral):
        return None
    nbytes = SLOT_BYTES * int(slot.literal_value)

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        mod = builder.module
        key = "__tickguard_code_offset__"
        if _PAD_CODE and key not in mod.globals:
            mod.globals[key] = _ModuleAsm(key, (
                ".ifndef __tickguard_code_offset", ".set __tickguard_code_offset, 1",
                ".section .ltext,\\22axl\\22,@progbits", f".skip {nbytes}, 0xcc", ".endif"))
        return context.get_dummy_value()

    return types.none(slot), codegen


if numba_config.DISABLE_JIT:  # the pure-Python twin has no code to place

    def code_offset(slot: int) -> None:  # type: ignore[no-redef]
        """Nothing to do (pure-Python twin)."""


# --- the time-stamp counter, for the loop's section timings --------------------------------------
#: whether :func:`cycles` reads a counter here: x86-64 only, where LLVM lowers it to ``rdtsc``
#: (constant rate on the CPUs that say ``constant_tsc``); elsewhere it may read a register user
#: code is not allowed to, so it is never compiled in (Backtest refuses ``sections=True``)
CYCLES_AVAILABLE = platform.machine() in ("x86_64", "AMD64")


@intrinsic
def cycles(typingctx):
    """The CPU's time-stamp counter (int64 ticks), read in ~10 ns: what the loop's sections are
    timed with (engine/layout.py, C_S_*). Not serializing: the CPU may run it a few instructions
    early or late, which sections of hundreds of ticks, summed over a run, do not notice."""

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        from llvmlite import ir

        fnty = ir.FunctionType(ir.IntType(64), [])
        fn = builder.module.declare_intrinsic("llvm.readcyclecounter", fnty=fnty)
        return builder.call(fn, [])

    return types.int64(), codegen


if numba_config.DISABLE_JIT:  # the pure-Python twin: a monotonic clock in ns stands in

    def cycles() -> int:  # type: ignore[no-redef]
        """``time.perf_counter_ns()`` (pure-Python twin)."""
        import time

        return time.perf_counter_ns()
