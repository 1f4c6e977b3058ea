"""A scripted strategy: replays a fixed schedule of requests, to test and explain the fill rules.

Real strategies decide from the market; this one sends exactly what it is told, when it is told,
so a user (or a test) can ask "what happens to a post-only buy at 100.00 sent at event 3 with 5 ms
of latency?" and read the answer from the records. Each schedule row fires on the first *market*
event whose index is >= ``at_event`` and whose local time is >= ``at_time``; rows fire in schedule
order (a row waits for every row before it), several rows may fire on one event.

Order ids are assigned 0, 1, 2, ... in submit order (rejected submits included), so a cancel or
modify names its target as "the k-th submit of the schedule".

A schedule that sends more requests on one event than ``max_requests`` is an error, not something
to spread silently over later events (that would change the scenario): the callback writes what
fits and returns the true count, so the engine raises :class:`StrategyError` naming the event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from .records import ACTION_CANCEL, ACTION_MODIFY, ACTION_SUBMIT, OT_LIMIT, OT_MARKET
from .strategy import NumbaStrategy

__all__ = ["SCRIPT_COLUMNS", "ScriptStep", "cancel", "modify", "scripted", "scripted_nb", "submit"]

#: columns of one schedule row, as stored (float64) in the strategy's ``params``
SCRIPT_COLUMNS = (
    "at_event", "at_time", "action", "instrument", "order_type", "side", "price", "qty", "order_id",
    "tag",
)
_NCOL = 10


@njit(cache=True)
def scripted_nb(reason, ev, order, now, mkt, pos, orders, n_orders, params, state, aux, req):
    """Fire the due schedule rows. ``params``: rows of SCRIPT_COLUMNS, flattened; ``state``:
    ``[next row, market events seen]``."""
    if reason != 0:
        return 0
    idx = state[1]
    state[1] = idx + 1.0
    n_rows = params.shape[0] // _NCOL
    k = np.int64(state[0])
    count = 0
    while k < n_rows:
        b = k * _NCOL
        if params[b] > idx or params[b + 1] > now:
            break
        if count < req.shape[0]:
            r = req[count]
            r["action"] = np.int64(params[b + 2])
            r["instrument"] = np.int64(params[b + 3])
            r["order_type"] = np.int64(params[b + 4])
            r["side"] = np.int64(params[b + 5])
            r["price"] = params[b + 6]
            r["qty"] = params[b + 7]
            r["order_id"] = np.int64(params[b + 8])
            r["tag"] = np.int64(params[b + 9])
        count += 1
        k += 1
    state[0] = k
    return count


@dataclass(frozen=True)
class ScriptStep:
    """One scheduled request; build with :func:`submit`, :func:`cancel` or :func:`modify`."""

    action: int
    at_event: int = 0
    at_time: int | None = None  # local time, ns since the epoch
    instrument: int = 0
    order_type: int = OT_LIMIT
    side: int = 0
    price: float = math.nan
    qty: float = math.nan
    order_id: int = -1
    tag: int | None = None


def submit(at_event: int, side: int, qty: float, price: float = math.nan, *,
           order_type: int = OT_LIMIT, instrument: int = 0, at_time: int | None = None,
           tag: int | None = None) -> ScriptStep:
    """A new order (``price`` ignored for ``OT_MARKET``)."""
    if order_type == OT_MARKET:
        price = math.nan
    return ScriptStep(ACTION_SUBMIT, at_event, at_time, instrument, order_type, side, price, qty,
                      -1, tag)


def cancel(at_event: int, order_id: int, *, at_time: int | None = None,
           tag: int | None = None) -> ScriptStep:
    """Cancel the ``order_id``-th submitted order."""
    return ScriptStep(ACTION_CANCEL, at_event, at_time, order_id=order_id, tag=tag)


def modify(at_event: int, order_id: int, price: float, qty: float, *, at_time: int | None = None,
           tag: int | None = None) -> ScriptStep:
    """Change the limit price and/or total size of the ``order_id``-th submitted order."""
    return ScriptStep(ACTION_MODIFY, at_event, at_time, price=price, qty=qty, order_id=order_id,
                      tag=tag)


def scripted(steps: list[ScriptStep], *, name: str = "scripted", max_requests: int = 16) -> NumbaStrategy:
    """Build the strategy that replays ``steps`` (``at_event`` non-decreasing, and so is ``at_time``
    among the steps that set it; a step never fires before the steps above it).

    ``at_time`` is stored as float64, so it must be exactly representable (|t| <= 2**53 ns, or a
    multiple of a power of two above that); otherwise trigger by ``at_event``.
    """
    rows = np.zeros((len(steps), _NCOL))
    prev_event, prev_time = -math.inf, -math.inf
    for k, s in enumerate(steps):
        if not isinstance(s, ScriptStep):
            raise TypeError(f"scripted: step {k} is a {type(s).__name__}; build steps with submit/cancel/modify")
        at_time = -math.inf if s.at_time is None else float(s.at_time)
        if s.at_time is not None and int(at_time) != int(s.at_time):
            raise ValueError(f"scripted: step {k}: at_time={s.at_time} is not exact as float64; "
                             "use at_event, or a time with fewer significant bits")
        if s.at_event < prev_event or (s.at_time is not None and at_time < prev_time):
            raise ValueError(f"scripted: step {k} triggers before an earlier step; sort the schedule "
                             "by at_event (and the steps that set at_time by at_time)")
        prev_event, prev_time = s.at_event, max(prev_time, at_time)
        rows[k] = (s.at_event, at_time, s.action, s.instrument, s.order_type, s.side, s.price,
                   s.qty, s.order_id, k if s.tag is None else s.tag)
    return NumbaStrategy(scripted_nb, params=rows.ravel(), state=np.zeros(2), name=name,
                         max_requests=max_requests)
