"""Offsets and counts read back from ``rstate`` (float64) as non-negative ints.

``int(x)`` of a float may be negative as far as the compiler knows, so numba guards every array
access indexed by it with wrap-around code (``a[-1]`` is the last element): about three
instructions per access, and the risk hooks make dozens per order. :func:`slot_nb` masks the
conversion to 31 bits, which LLVM's known-bits analysis carries through the additions that
follow (offset + column stays non-negative), so the guards fold away. Every value so read is an
offset, a count or a ring index in ``[0, len(rstate))``, far below 2**31.
"""

from __future__ import annotations

from numba import njit

__all__ = ["SLOT_MASK", "ring_slot_nb", "slot_nb"]

SLOT_MASK = 0x7FFFFFFF


@njit(cache=True, inline="always")
def slot_nb(x):
    """``int(x)`` for an offset, count or index held as a float in ``rstate`` (see the module doc)."""
    return int(x) & SLOT_MASK


@njit(cache=True, inline="always")
def ring_slot_nb(head, n, cap):
    """The ring index ``n`` rows after ``head`` (``0 <= n <= cap``) in a ring of ``cap`` rows: not
    ``%`` (an integer division costs ~10 ns), and masked, so an index carried around a loop stays
    known >= 0."""
    i = head + n
    return (i - cap if i >= cap else i) & SLOT_MASK
