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
"""

from __future__ import annotations

from typing import Any, Callable

from numba import config as numba_config
from numba import njit, types
from numba.core.extending import intrinsic
from numba.core.registry import CPUDispatcher
from numba.core.typing import Signature

__all__ = ["internal_njit", "not_inlined"]

_INTERNAL = {"no_cpython_wrapper": True, "no_cfunc_wrapper": True, "_nrt": False}


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
