"""Portfolio accounting: positions, average price, realized/unrealized PnL, fees, cash, equity.

Conventions: a fill of ``qty`` units at ``price`` on side ``s`` (+1 buy / -1 sell) moves cash by
``-s * qty * price * multiplier - fee`` and position by ``s * qty``. Realized PnL is booked when a
fill reduces the open position, against its average entry price; a fill that flips the position
closes the old one in full and opens the rest at the fill price.
Equity = cash + sum(position * mark * multiplier), so equity - initial cash equals
realized + unrealized - fees at every sample (an invariant the tests check).
"""

from __future__ import annotations

import math

from .internal import internal_njit
from .layout import (
    A_CASH, M_ASK, M_BID, M_LAST, M_MID, P_AVG, P_FEES, P_MARK, P_POS, P_REALIZED, P_TRADED,
)
from .minmax import max2, min2

__all__ = ["apply_fill_nb", "mark_price_nb"]


@internal_njit
def apply_fill_nb(pf, acct, inst, side, qty, price, fee, mult):
    """Book one fill; returns the realized PnL it produced (currency, before fees)."""
    pos = pf[inst, P_POS]
    avg = pf[inst, P_AVG]
    signed = side * qty
    realized = 0.0
    if pos == 0.0 or (pos > 0.0) == (signed > 0.0):
        new_pos = pos + signed
        pf[inst, P_AVG] = (avg * abs(pos) + price * qty) / abs(new_pos)
    else:
        closed = min2(qty, abs(pos))
        realized = (price - avg) * closed * (1.0 if pos > 0.0 else -1.0) * mult
        new_pos = pos + signed
        if new_pos == 0.0:
            pf[inst, P_AVG] = 0.0
        elif (new_pos > 0.0) != (pos > 0.0):
            pf[inst, P_AVG] = price  # flipped: the remainder opened at this price
    pf[inst, P_POS] = new_pos
    pf[inst, P_REALIZED] += realized
    pf[inst, P_FEES] += fee
    pf[inst, P_TRADED] += qty * price * mult
    acct[A_CASH] -= signed * price * mult + fee
    return realized


@internal_njit
def mark_price_nb(mkt_row, pos, mode):
    """Mark price: 0 mid, 1 last trade, 2 the side we would exit at (bid for longs, ask for shorts).

    Falls back to the last trade, then the mid, when the preferred price is missing.
    """
    if mode == 2:
        p = mkt_row[M_BID] if pos > 0.0 else mkt_row[M_ASK]
    elif mode == 1:
        p = mkt_row[M_LAST]
    else:
        p = mkt_row[M_MID]
    if math.isnan(p):
        p = mkt_row[M_LAST]
    if math.isnan(p):
        p = mkt_row[M_MID]
    return p
