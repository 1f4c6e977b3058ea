"""Top-of-book state per instrument, updated from one event row."""

from __future__ import annotations

import math

from numba import njit

from tickguard.data.schema import KIND_QUOTE, KIND_TRADE

from .layout import (
    M_ASK, M_ASK_SZ, M_BID, M_BID_SZ, M_LAST, M_MID, M_TAKEN_ASK, M_TAKEN_BID, M_TS_QUOTE,
)

__all__ = ["apply_market_event_nb"]

_QUOTE = int(KIND_QUOTE)
_TRADE = int(KIND_TRADE)


@njit(cache=True)
def apply_market_event_nb(mkt, inst, kind, price, bid_px, bid_sz, ask_px, ask_sz, ts):
    """Update ``mkt[inst]`` from one event; returns True when the quote changed."""
    quoted = False
    if kind & _QUOTE:
        row = mkt[inst]
        if bid_px != row[M_BID] or bid_sz != row[M_BID_SZ]:
            row[M_TAKEN_BID] = 0.0  # a new touch: our earlier takes are in the data from now on
        if ask_px != row[M_ASK] or ask_sz != row[M_ASK_SZ]:
            row[M_TAKEN_ASK] = 0.0
        row[M_BID] = bid_px
        row[M_ASK] = ask_px
        row[M_BID_SZ] = bid_sz
        row[M_ASK_SZ] = ask_sz
        if math.isnan(bid_px) or math.isnan(ask_px):
            row[M_MID] = ask_px if math.isnan(bid_px) else bid_px
        else:
            row[M_MID] = 0.5 * (bid_px + ask_px)
        row[M_TS_QUOTE] = ts
        quoted = True
    if kind & _TRADE:
        mkt[inst, M_LAST] = price
    return quoted
