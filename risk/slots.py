"""Integer slots of ``rstate``: offsets, counts and ring indices held as int64, read and written
through the buffer's bits.

``rstate`` is one float64 buffer, but its header, rule lists, tables, block offsets, activity
entries' rule and offset, and ring headers' head, count and capacity are integers (the layout in
:mod:`.layout` names them). They are stored as int64 bit patterns in their float64 slots: the
kernels load them as integers (:func:`int_nb`, :func:`slot_nb`) and store them back
(:func:`set_int_nb`), with no conversion either way. Held as float values, every read was a
``cvttsd2si`` and a mask, and every write a ``cvtsi2sd``: ~140 of the gate's and the activity
monitor's ~1 270 instructions per order, most on chains of dependent loads (a list, a rule
index, its block offset, its ring header), which a conversion lengthens by its latency. As
integers the gate alone, warm, runs 53 ns per order instead of 67 (benchmarks/PERFORMANCE.md,
5 December, late evening). Python reads and writes them through ``rstate.view(np.int64)``
(:func:`int_view`).

:func:`slot_nb` also masks what it reads to 31 bits: numba guards every array access indexed by an
int that may be negative with wrap-around code (``a[-1]`` is the last element), about three
instructions per access; LLVM's known-bits analysis carries the mask through the additions that
follow (offset + column stays non-negative), so the guards fold away. Every value so read is an
offset, a count or a ring index in ``[0, len(rstate))``, far below 2**31. :func:`int_nb` reads a
slot that may hold -1 (no block, no fast table, no external rule).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.core import config as numba_config
from numba.core.errors import TypingError
from numba.extending import intrinsic

from .layout import RB_CAP, RB_NF

__all__ = ["SLOT_MASK", "int_nb", "int_view", "ring_header", "ring_slot_nb", "set_int_nb", "slot_nb"]

SLOT_MASK = 0x7FFFFFFF


def _check_types(arr, k, v=types.int64) -> None:  # noqa: ANN001
    """Refuse, at compile time, what the integer slots cannot be read from or written to."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.float64 and arr.ndim == 1 and arr.layout == "C"):
        raise TypingError(f"risk state's integer slots: the state must be a contiguous 1-D float64 array "
                          f"(float64[::1], as new_risk_state makes it), got {arr}; pass "
                          f"np.ascontiguousarray(rstate, dtype=np.float64)")
    if not (isinstance(k, types.Integer) and isinstance(v, types.Integer)):
        raise TypingError(f"risk state's integer slots: the slot and the value must be integers, got slot {k} "
                          f"and value {v}")


def _element_i64(context, builder, arr_type, arr, k):  # noqa: ANN001, ANN202
    """The address of element ``k`` of a contiguous float64[::1], as an int64 pointer."""
    from llvmlite import ir

    data = context.make_array(arr_type)(context, builder, arr).data
    return builder.gep(builder.bitcast(data, ir.IntType(64).as_pointer()), [k])


@intrinsic
def _load_i64(typingctx, arr, k):
    """The int64 whose bits slot ``k`` of ``arr`` (float64[::1]) holds."""
    _check_types(arr, k)

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        k64 = context.cast(builder, args[1], signature.args[1], types.intp)
        return builder.load(_element_i64(context, builder, signature.args[0], args[0], k64))

    return types.int64(arr, k), codegen


@intrinsic
def _store_i64(typingctx, arr, k, v):
    """Slot ``k`` of ``arr`` (float64[::1]) takes the bits of the int64 ``v``."""
    _check_types(arr, k, v)

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        k64 = context.cast(builder, args[1], signature.args[1], types.intp)
        v64 = context.cast(builder, args[2], signature.args[2], types.int64)
        builder.store(v64, _element_i64(context, builder, signature.args[0], args[0], k64))
        return context.get_dummy_value()

    return types.none(arr, k, v), codegen


if numba_config.DISABLE_JIT:  # the pure-Python twin: a view of the same buffer

    def _load_i64(arr, k):  # type: ignore[no-redef]  # noqa: ANN001, ANN202
        return int(arr.view(np.int64)[k])

    def _store_i64(arr, k, v):  # type: ignore[no-redef]  # noqa: ANN001, ANN202
        arr.view(np.int64)[k] = v


def int_view(rstate: np.ndarray) -> np.ndarray:
    """``rstate``'s integer slots as Python reads and writes them: an int64 view of the buffer."""
    return rstate.view(np.int64)


def ring_header(cap: int) -> np.ndarray:
    """A fresh ring's header (``RB_*``, float64[RB_NF]) for ``cap`` rows: empty (head and count
    0), its capacity in the integer slot ``RB_CAP``; every ring block starts with one."""
    head = np.zeros(RB_NF)
    int_view(head)[RB_CAP] = cap
    return head


@njit(cache=True, inline="always")
def int_nb(rs, k):
    """The integer in slot ``k`` of ``rs`` (an offset or index that may be -1)."""
    return _load_i64(rs, k)


@njit(cache=True, inline="always")
def slot_nb(rs, k):
    """The offset, count or index in slot ``k`` of ``rs``, known >= 0 (see the module doc)."""
    return _load_i64(rs, k) & SLOT_MASK


@njit(cache=True, inline="always")
def set_int_nb(rs, k, v):
    """Store the integer ``v`` in slot ``k`` of ``rs``."""
    _store_i64(rs, k, v)


@njit(cache=True, inline="always")
def ring_slot_nb(head, n, cap):
    """The ring index ``n`` rows after ``head`` (``0 <= n <= cap``) in a ring of ``cap`` rows: not
    ``%`` (an integer division costs ~10 ns), and masked, so an index carried around a loop stays
    known >= 0."""
    i = head + n
    return (i - cap if i >= cap else i) & SLOT_MASK
