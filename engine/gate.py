"""The risk hooks of the event loop, and the pass-through set used when no rulebook is given.

A *risk module* is an importable module holding four jitted functions, called by the loop:

* ``pretrade_nb(req, now, mkt, pos, orders, working, mult, rules, rstate, ks) -> int`` for every
  submit and modify the strategy sends (cancels always pass): 0 lets it go; ``rule index + 1``
  denies it by that rule; a negative code denies it by the kill switch's state (G_DENIED_*).
  On a denial it writes the observed value and the threshold into ``ks[G_DENY_OBSERVED]`` and
  ``ks[G_DENY_THRESHOLD]``. ``orders`` is the strategy's local order table and ``working`` the
  ascending int64 ids of its orders in flight or open (the loop keeps that list, C_N_WORK).
* ``monitor_event_nb(now, kind, inst, side, level, mkt, rules, rstate, ks) -> int`` on a local
  market event, after the strategy's market view took it and before the strategy sees it: on
  CONTROL rows, and on the events that meet a wake-up condition the module keeps in ``ks``:
  ``t >= ks[G_WAKE_AT]`` (a timer), ``t - ks[G_PREV_TS] > ks[G_WAKE_GAP]`` (a feed gap;
  ``ks[G_PREV_TS]`` holds the time of the last local event past this step, so inside
  ``monitor_event_nb`` the one before the current event; the loop keeps it in a register and
  writes it there before calling any hook), ``ks[G_WAKE_ALL] != 0``
  (every event), ``ks[G_WAKE_CROSSED] != 0`` and a quote that leaves its instrument's
  ``bid >= ask``, or ``ks[G_FLATTEN] != 0`` (the kill switch still has positions to flatten: the
  loop retries them on every event). A module that wants every event sets ``ks[G_WAKE_ALL]``; one
  that needs none sets the timer and gap to inf. Extra calls must change nothing (the tests run
  the rulebook on every event and compare). The loop reads these slots again only after one of
  the four hooks ran, so only the hooks may change them. The loop tests none of them per
  event: the reader thread lists each chunk's CONTROL rows and quotes with bid >= ask
  (:func:`marked_rows_nb`) and the loop runs the strategy's steps up to the next of those, or to
  the first event that may meet the timer or the feed gap, and checks that one;
* ``monitor_sample_nb(now, equity, pnl, rules, rstate, ks) -> int`` on every equity sample;
* ``monitor_activity_nb(now, what, inst, rules, rstate, ks) -> int`` when a request leaves the
  gate (G_ACT_SUBMIT / G_ACT_CANCEL / G_ACT_MODIFY) and when a fill or an exchange reject reaches
  the strategy (G_ACT_FILL / G_ACT_REJECT).

Monitors return G_TR_NONE, or the kill switch's new state (G_TR_REDUCING, G_TR_HALTED) or
G_TR_RESET; the switch itself lives in ``ks`` (slots G_* in :mod:`tickguard.engine.layout`), which
the loop reads to write the risk record and, on HALTED, to cancel every working order (through
the simulated latency) and, when ``ks[G_FLATTEN]`` is set, flatten the known positions.
``rules`` (float64 2-D) and ``rstate`` (float64 1-D) belong to the risk module. The loop skips
``monitor_event_nb`` when ``rules`` has no rows, so the pass-through costs nothing per event.

The loop runs ``pretrade_nb`` and ``monitor_activity_nb``, the two called on every order, inside
kernels of its own that take its arrays as one bundle: the hooks' source (``py_func``: the hooks
must be numba functions, as every hook here is) is compiled again there, for LLVM to inline
(``forceinline``, engine/internal.py), so a call passes three or four words instead of every
array's structure.

A module whose hooks allocate nothing says so with ``HOOKS_ALLOCATE = False`` (a module global):
the loop's kernels then call them without reference counting. Hooks decorated with
:func:`~tickguard.engine.internal.internal_njit` qualify (numba refuses them any allocation);
without the flag the loop assumes they may allocate.

:mod:`tickguard.risk.inloop` is the rulebook-driven risk module; this one allows everything.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba import types as _t

from tickguard.data.schema import KIND_CONTROL, KIND_QUOTE

from .internal import internal_njit
from .nbtypes import F64_1D, F64_2D

__all__ = ["HOOKS_ALLOCATE", "marked_rows_nb", "monitor_activity_nb", "monitor_event_nb", "monitor_sample_nb",
           "pretrade_nb"]

HOOKS_ALLOCATE = False  # the hooks below allocate nothing (see the module doc)


@internal_njit
def pretrade_nb(req, now, mkt, pos, orders, working, mult, rules, rstate, ks):
    """Allow everything."""
    return 0


@internal_njit
def monitor_event_nb(now, kind, inst, side, level, mkt, rules, rstate, ks):
    """Never trip."""
    return 0


@internal_njit
def monitor_sample_nb(now, equity, pnl, rules, rstate, ks):
    """Never trip."""
    return 0


@internal_njit(_t.int64(_t.int64, _t.int64, _t.int64, F64_2D, F64_1D, F64_1D))  # see risk.killswitch
def monitor_activity_nb(now, what, inst, rules, rstate, ks):
    """Never trip."""
    return 0


_CONTROL = np.uint16(KIND_CONTROL)
_QUOTE = np.uint16(KIND_QUOTE)


@njit(cache=True, inline="always")
def _marked(ev):
    # & and |, not `and`/`or`: no branch per row (7 instructions a row, 14 with the branches)
    kind = ev["kind"]
    return ((kind & _CONTROL) != 0) | (((kind & _QUOTE) != 0) & (ev["bid_px"] >= ev["ask_px"]))


@njit(cache=True, nogil=True)
def marked_rows_nb(events):
    """Ascending int64 indices of the rows that may wake a monitor by their content: CONTROL rows
    and quotes with bid >= ask (crossed or locked). The engine's reader thread runs it on each
    chunk when a risk module watches (nogil), so the loop tests no row for them (module doc)."""
    n = events.shape[0]
    n_marked = 0
    for k in range(n):
        n_marked += _marked(events[k])
    out = np.empty(n_marked + 1, dtype=np.int64)
    if n_marked:
        m = 0
        for k in range(n):  # every row written, the next overwrites it unless it is marked
            out[m] = k
            m += _marked(events[k])
    return out[:n_marked]
