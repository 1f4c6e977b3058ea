"""Record dtypes and integer codes shared by the engine kernels, the Python front door and reports.

Every record is an aligned numpy structured dtype, so kernels write them without Python and
reports read them as DataFrames. Times are int64 ns since the Unix epoch (UTC); prices are in the
instrument's quote currency per unit; quantities in units (multiples of the lot size).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ACTION_CANCEL",
    "ACTION_MODIFY",
    "ACTION_NAMES",
    "ACTION_SUBMIT",
    "EQUITY_DTYPE",
    "FILL_DTYPE",
    "LIQ_MAKER",
    "LIQ_TAKER",
    "LOCAL_ORDER_DTYPE",
    "OE_ACK",
    "OE_CANCEL_ACK",
    "OE_CANCEL_REJECT",
    "OE_CANCEL_REQ",
    "OE_DENIED",
    "OE_EXPIRED",
    "OE_FILL",
    "OE_MODIFY_ACK",
    "OE_MODIFY_REJECT",
    "OE_MODIFY_REQ",
    "OE_REJECT",
    "OE_SUBMIT",
    "ORDER_DTYPE",
    "ORDER_EVENT_DTYPE",
    "ORDER_EVENT_NAMES",
    "ORDER_TYPE_NAMES",
    "OT_FOK",
    "OT_IOC",
    "OT_LIMIT",
    "OT_MARKET",
    "OT_POST_ONLY",
    "REASON_NAMES",
    "REQUEST_DTYPE",
    "RESPONSE_DTYPE",
    "RISK_EVENT_DTYPE",
    "RISK_KIND_NAMES",
    "RISK_STATE_NAMES",
    "RISK_TAG",
    "RJ_BAD_PRICE",
    "RJ_BAD_QTY",
    "RJ_CAPACITY",
    "RJ_FOK_UNFILLED",
    "RJ_HALTED",
    "RJ_NONE",
    "RJ_NO_LIQUIDITY",
    "RJ_NO_QUOTE",
    "RJ_PENDING",
    "RJ_POST_ONLY_CROSS",
    "RJ_RISK_DENIED",
    "RJ_TOO_LATE",
    "RJ_UNKNOWN_INSTRUMENT",
    "RJ_UNKNOWN_ORDER",
    "RK_DENIAL",
    "RK_RESET",
    "RK_TRANSITION",
    "STATUS_NAMES",
    "ST_CANCELLED",
    "ST_FILLED",
    "ST_IN_FLIGHT",
    "ST_OPEN",
    "ST_REJECTED",
]

# --- request actions (strategy -> engine) ---------------------------------------------------
ACTION_SUBMIT = 1
ACTION_CANCEL = 2
ACTION_MODIFY = 3
ACTION_NAMES = {ACTION_SUBMIT: "submit", ACTION_CANCEL: "cancel", ACTION_MODIFY: "modify"}

# --- order types ----------------------------------------------------------------------------
OT_MARKET = 1  #: take liquidity now; any unfilled rest is cancelled (IOC semantics)
OT_LIMIT = 2  #: good-till-cancelled limit; the marketable part takes, the rest rests
OT_IOC = 3  #: limit, immediate-or-cancel: fill what is available within the limit, cancel the rest
OT_FOK = 4  #: limit, fill-or-kill: fill all within the limit at once or nothing
OT_POST_ONLY = 5  #: limit that must rest; rejected if it would cross on arrival
ORDER_TYPE_NAMES = {
    OT_MARKET: "market", OT_LIMIT: "limit", OT_IOC: "ioc", OT_FOK: "fok", OT_POST_ONLY: "post_only",
}

# --- order status (exchange-side truth and the strategy's local view use the same codes) -----
ST_IN_FLIGHT = 1  #: sent, not yet acknowledged
ST_OPEN = 2  #: resting / working at the exchange
ST_FILLED = 3
ST_CANCELLED = 4
ST_REJECTED = 5
STATUS_NAMES = {
    ST_IN_FLIGHT: "in_flight", ST_OPEN: "open", ST_FILLED: "filled",
    ST_CANCELLED: "cancelled", ST_REJECTED: "rejected",
}

# --- order event codes (one record per state change) -----------------------------------------
OE_SUBMIT = 1  #: strategy sent a new order (local time)
OE_DENIED = 2  #: the risk gate refused it before it left (local time)
OE_ACK = 3  #: exchange accepted it (exchange time)
OE_REJECT = 4  #: exchange rejected it (exchange time)
OE_FILL = 5  #: (partial) fill (exchange time)
OE_CANCEL_REQ = 6
OE_CANCEL_ACK = 7
OE_CANCEL_REJECT = 8  #: e.g. the order filled before the cancel arrived
OE_MODIFY_REQ = 9
OE_MODIFY_ACK = 10
OE_MODIFY_REJECT = 11
OE_EXPIRED = 12  #: IOC/market rest cancelled by the exchange
ORDER_EVENT_NAMES = {
    OE_SUBMIT: "submit", OE_DENIED: "denied", OE_ACK: "ack", OE_REJECT: "reject", OE_FILL: "fill",
    OE_CANCEL_REQ: "cancel_req", OE_CANCEL_ACK: "cancel_ack", OE_CANCEL_REJECT: "cancel_reject",
    OE_MODIFY_REQ: "modify_req", OE_MODIFY_ACK: "modify_ack", OE_MODIFY_REJECT: "modify_reject",
    OE_EXPIRED: "expired",
}

# --- reject reasons --------------------------------------------------------------------------
RJ_NONE = 0
RJ_BAD_QTY = 1
RJ_BAD_PRICE = 2
RJ_NO_QUOTE = 3
RJ_POST_ONLY_CROSS = 4
RJ_FOK_UNFILLED = 5
RJ_TOO_LATE = 6
RJ_UNKNOWN_ORDER = 7
RJ_UNKNOWN_INSTRUMENT = 8
RJ_NO_LIQUIDITY = 9
RJ_PENDING = 10
RJ_CAPACITY = 11
RJ_HALTED = 12
RJ_RISK_DENIED = 13
REASON_NAMES = {
    RJ_NONE: "",
    RJ_BAD_QTY: "quantity must be > 0 and a multiple of the lot size",
    RJ_BAD_PRICE: "limit price must be finite, > 0 and on the tick grid",
    RJ_NO_QUOTE: "no quote on the side the order would take",
    RJ_POST_ONLY_CROSS: "post-only order would cross the spread",
    RJ_FOK_UNFILLED: "fill-or-kill order could not fill in full",
    RJ_TOO_LATE: "order already filled or cancelled when the request arrived",
    RJ_UNKNOWN_ORDER: "no such order id",
    RJ_UNKNOWN_INSTRUMENT: "instrument id out of range",
    RJ_NO_LIQUIDITY: "nothing displayed on the side the order would take",
    RJ_PENDING: "a cancel or modify of this order is already in flight",
    RJ_CAPACITY: "order table full",
    RJ_HALTED: "trading in the instrument is halted (market, IOC and FOK orders cannot execute)",
    RJ_RISK_DENIED: "denied by the pre-trade risk gate (the risk event says which rule and why)",
}

# --- risk events: what happened (RISK_EVENT_DTYPE.kind) --------------------------------------
RK_DENIAL = 1  #: a request refused by the pre-trade gate
RK_TRANSITION = 2  #: the kill switch escalated (state = new state)
RK_RESET = 3  #: the kill switch was reset to ACTIVE
RISK_KIND_NAMES = {RK_DENIAL: "denial", RK_TRANSITION: "transition", RK_RESET: "reset"}
RISK_STATE_NAMES = {0: "ACTIVE", 1: "REDUCING", 2: "HALTED"}
RISK_TAG = -1  #: ``tag`` of the orders the kill switch sends itself (cancels, flattening)

LIQ_MAKER = 1
LIQ_TAKER = 2

# --- what a strategy writes: one row per request ---------------------------------------------
REQUEST_DTYPE = np.dtype(
    [
        ("action", np.int32),  # ACTION_*
        ("instrument", np.int32),
        ("order_type", np.int32),  # OT_* (submit)
        ("side", np.int32),  # +1 buy, -1 sell (submit)
        ("order_id", np.int64),  # target of cancel/modify; ignored on submit
        ("price", np.float64),  # limit price (NaN for market)
        ("qty", np.float64),  # units (submit: order size; modify: new total size)
        ("tag", np.int64),  # strategy's own label, echoed in records
    ],
    align=True,
)

# --- the order table: one row per order, exchange truth and the strategy's view side by side --
ORDER_DTYPE = np.dtype(
    [
        ("id", np.int64),
        ("instrument", np.int32),
        ("order_type", np.int32),
        ("side", np.int32),
        ("status", np.int32),  # exchange truth, ST_*
        ("local_status", np.int32),  # what the strategy knows, ST_* (updated after response latency)
        ("pending", np.int32),  # ACTION_* of a cancel/modify in flight, 0 if none
        ("price", np.float64),  # current limit price at the exchange
        ("qty", np.float64),  # current total size at the exchange
        ("filled", np.float64),  # filled at the exchange
        ("local_filled", np.float64),  # fills the strategy has been told about
        ("queue_ahead", np.float64),  # size ahead of us at our price (inf: not at a visible level)
        ("level_size", np.float64),  # displayed size at our price when last seen (queue model)
        ("traded_at_level", np.float64),  # trade volume at our price since level_size was seen
        ("new_price", np.float64),  # pending modify: target price
        ("new_qty", np.float64),  # pending modify: target size
        ("ts_sent", np.int64),  # local time the order was sent
        ("ts_arrive", np.int64),  # exchange time it arrives / arrived
        ("ts_pending", np.int64),  # exchange time the pending cancel/modify arrives
        ("ts_last_resp", np.int64),  # local time of the latest response (keeps responses in order)
        ("tag", np.int64),
    ],
    align=True,
)

# --- the strategy's view of its orders: updated only when responses arrive (no look-ahead) ---
LOCAL_ORDER_DTYPE = np.dtype(
    [
        ("id", np.int64),
        ("instrument", np.int32),
        ("side", np.int32),
        ("order_type", np.int32),
        ("status", np.int32),  # ST_*
        ("pending", np.int32),  # ACTION_* of a cancel/modify the strategy sent and has no answer to
        ("reason", np.int32),  # RJ_* of the last reject
        ("price", np.float64),
        ("qty", np.float64),
        ("filled", np.float64),
        ("tag", np.int64),
    ],
    align=True,
)

# --- responses on their way from the exchange to the strategy --------------------------------
RESPONSE_DTYPE = np.dtype(
    [
        ("ts_local", np.int64),  # delivery time
        ("seq", np.int64),  # creation order: tie-break for equal delivery times
        ("order", np.int64),  # order id
        ("event", np.int32),  # OE_*
        ("reason", np.int32),
        ("status", np.int32),  # order status after this event
        ("_pad", np.int32),
        ("price", np.float64),  # fill price / new limit price
        ("qty", np.float64),  # fill qty / new total size
        ("filled", np.float64),  # cumulative filled after this event
    ],
    align=True,
)

# --- records ---------------------------------------------------------------------------------
ORDER_EVENT_DTYPE = np.dtype(
    [
        ("ts", np.int64),  # exchange time for exchange events, local time for submit/denied/req
        ("ts_local", np.int64),  # when the strategy learns of it (local time)
        ("order_id", np.int64),
        ("event", np.int32),  # OE_*
        ("reason", np.int32),  # RJ_* for rejects; risk rule index for denials
        ("instrument", np.int32),
        ("side", np.int32),
        ("order_type", np.int32),
        ("_pad", np.int32),
        ("price", np.float64),
        ("qty", np.float64),
        ("filled", np.float64),  # cumulative filled after this event
        ("tag", np.int64),
    ],
    align=True,
)

FILL_DTYPE = np.dtype(
    [
        ("ts", np.int64),  # exchange time of the fill
        ("ts_local", np.int64),  # when the strategy learns of it
        ("order_id", np.int64),
        ("instrument", np.int32),
        ("side", np.int32),
        ("liquidity", np.int32),  # LIQ_MAKER / LIQ_TAKER
        ("_pad", np.int32),
        ("price", np.float64),
        ("qty", np.float64),
        ("fee", np.float64),  # currency; negative = rebate
        ("mid", np.float64),  # exchange mid at fill time (slippage reference)
        ("position", np.float64),  # position after the fill
        ("realized", np.float64),  # realized PnL of this fill (currency, before fees)
        ("tag", np.int64),
    ],
    align=True,
)

EQUITY_DTYPE = np.dtype(
    [
        ("ts", np.int64),  # local time of the sample
        ("event_index", np.int64),  # global index of the event that triggered the sample
        ("cash", np.float64),
        ("equity", np.float64),  # cash + sum of marked position values
        ("gross_exposure", np.float64),  # sum |position x mark x multiplier|
        ("net_exposure", np.float64),
        ("realized", np.float64),
        ("unrealized", np.float64),
        ("fees", np.float64),
    ],
    align=True,
)

RISK_EVENT_DTYPE = np.dtype(
    [
        ("ts", np.int64),
        ("order_id", np.int64),  # -1 when not about an order
        ("rule", np.int32),  # rulebook row (0-based), or a negative kill-switch code (see gate.py)
        ("kind", np.int32),  # RK_DENIAL / RK_TRANSITION / RK_RESET
        ("instrument", np.int32),
        ("state", np.int32),  # kill-switch state after the event
        ("observed", np.float64),
        ("threshold", np.float64),
    ],
    align=True,
)
