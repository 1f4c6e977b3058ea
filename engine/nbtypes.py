"""Numba types of the engine's arrays, for the few kernels compiled with explicit signatures.

Why explicit signatures: numba types an integer constant argument (an event code, ``0``) as a
*literal*, and compiles a separate copy of the callee for every distinct literal it is called
with. The record writers are called from dozens of places with different codes, which made the
loop compile a dozen copies of each (measured). With a signature the dispatcher compiles once and
converts literals to int64; it also compiles when the module is imported (from the cache when warm).
"""

from __future__ import annotations

from collections import namedtuple

from numba import from_dtype, types

from .bundle import ArrayBundle
from .records import (
    EQUITY_DTYPE, FILL_DTYPE, LOCAL_ORDER_DTYPE, ORDER_DTYPE, ORDER_EVENT_DTYPE, REQUEST_DTYPE,
    RESPONSE_DTYPE, RISK_EVENT_DTYPE,
)

__all__ = [
    "EQUITIES", "F64_1D", "F64_2D", "F64_4D", "FILLS", "I64_1D", "I64_2D", "LOCAL_ORDER_ROW",
    "LOCAL_ORDERS", "LOOP", "LoopArrays", "ORDERS", "ORDER_EVENTS", "ORDER_ROW", "REQUESTS",
    "REQUEST_ROW", "RESPONSES", "RISK_EVENTS", "StepArrays", "WatchArrays",
]

F64_1D = types.Array(types.float64, 1, "C")
F64_2D = types.Array(types.float64, 2, "C")
F64_4D = types.Array(types.float64, 4, "C")
I64_1D = types.Array(types.int64, 1, "C")
I64_2D = types.Array(types.int64, 2, "C")
ORDER_ROW = from_dtype(ORDER_DTYPE)
LOCAL_ORDER_ROW = from_dtype(LOCAL_ORDER_DTYPE)
ORDERS = types.Array(ORDER_ROW, 1, "C")
ORDER_EVENTS = types.Array(from_dtype(ORDER_EVENT_DTYPE), 1, "C")
RESPONSES = types.Array(from_dtype(RESPONSE_DTYPE), 1, "C")
FILLS = types.Array(from_dtype(FILL_DTYPE), 1, "C")
LOCAL_ORDERS = types.Array(LOCAL_ORDER_ROW, 1, "C")
REQUEST_ROW = from_dtype(REQUEST_DTYPE)
REQUESTS = types.Array(REQUEST_ROW, 1, "C")
RISK_EVENTS = types.Array(from_dtype(RISK_EVENT_DTYPE), 1, "C")
EQUITIES = types.Array(from_dtype(EQUITY_DTYPE), 1, "C")

#: The loop's arrays that do not depend on the strategy, which its kernels receive as one bundle
#: (bundle.py): the exchange's and the strategy's sides, the records, the risk module's state.
LoopArrays = namedtuple("LoopArrays", [
    "orders", "lorders", "lwork", "open_idx", "cnt", "cfg", "lat", "trace_ts", "trace_lat", "tick",
    "lot", "mult", "mkt_l", "mkt_x", "pf", "acct", "pos_local", "resp", "rec_oe", "rec_fill",
    "rec_eq", "rec_risk", "rules", "rstate", "ks", "kreq", "book", "book_meta",
])
#: Its type, for the kernels' explicit signatures (the arrays as Backtest makes them).
LOOP = ArrayBundle.of(LoopArrays, (
    ORDERS, LOCAL_ORDERS, I64_1D, I64_1D, I64_1D, F64_1D, F64_2D, I64_1D, F64_2D, F64_1D,
    F64_1D, F64_1D, F64_2D, F64_2D, F64_2D, F64_1D, F64_1D, RESPONSES, ORDER_EVENTS, FILLS,
    EQUITIES, RISK_EVENTS, F64_2D, F64_1D, F64_1D, REQUESTS, F64_4D, I64_2D,
))
#: The arrays the strategy's steps read (loop_template._strategy_steps), bundled once per call of
#: the loop: the events, the strategy's view, positions, orders, the counters, its params, state
#: and per-event inputs, and its request buffer. No explicit type: the events' and the strategy's
#: arrays are typed where the loop makes the bundle.
StepArrays = namedtuple("StepArrays", [
    "events", "mkt_l", "pos_local", "lorders", "cnt", "params", "state", "aux", "req",
])
#: The arrays the kill switch's wake-up check reads (loop_template._watch_bounds): the events and
#: the marked rows, one pointer.
WatchArrays = namedtuple("WatchArrays", ["events", "marks"])
