"""Unmanaged array views: the loop's way around numba's per-call reference counting.

Every call between jitted functions increments and decrements the reference count of each array
argument with an atomic instruction (about 20 cycles each). The event loop passes a dozen arrays
to its helpers and to the strategy on every event, so these atomics cost more than the work
itself. The loop's caller (Python) keeps every array alive for the whole call, so inside the loop
we can use views whose memory-info pointer is null: numba skips reference counting for them.
Such a view must never outlive the call that made it (never return or store one).
"""

from __future__ import annotations

from numba import config as numba_config
from numba.core import cgutils, types
from numba.extending import intrinsic

__all__ = ["unmanaged"]


@intrinsic
def unmanaged(typingctx, arr):
    """The same array (data, shape, strides) with no reference-counted owner."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, signature, args):
        view = cgutils.create_struct_proxy(arr)(context, builder, value=args[0])
        view.meminfo = cgutils.get_null_value(view.meminfo.type)
        view.parent = cgutils.get_null_value(view.parent.type)
        return view._getvalue()

    return arr(arr), codegen


if numba_config.DISABLE_JIT:  # the pure-Python twin has no reference counts to avoid

    def unmanaged(arr):  # type: ignore[no-redef]
        """The array itself (pure-Python twin)."""
        return arr
