"""Microprice / L1 queue-imbalance momentum, market orders.

Signal. On each quote event of the instrument: queue imbalance ``I = qb / (qb + qa)`` in [0, 1]
and the size-weighted mid ``micro = ask * I + bid * (1 - I)`` [price] — the weighted mid that
Stoikov (2018, "The micro-price: a high-frequency estimator of future prices", Quantitative
Finance 18(12)) starts from; his micro-price proper adjusts it with a fitted Markov model, which
this strategy does not do. The signal is ``(micro - mid) / (ask - bid)`` (dimensionless, in
[-1/2, 1/2]; it equals ``I - 1/2``): positive when the bid queue outweighs the ask queue, i.e.
when the next mid move is more likely up. NaN when a side is empty, both queues are empty or the
book is locked/crossed.

Trading: the shared rule of :mod:`tickguard.strategies.ofi` (:func:`follow_signal_nb`): target
+size when the signal > ``threshold`` (a fraction of the spread), -size when < -threshold, 0 in
between, NaN keeps the target; a position is held at least ``hold_events`` quote events and
``hold_ns`` of local time, then follows the signal; market orders for the difference while no
order is working, so |position| <= size.

Parameters (float64 array): ``[instrument, threshold, size_units, hold_events, hold_ns]``.
State: ``[imbalance, microprice, signal, quote_events, target, entry_event, entry_sec, entry_nsec]``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from tickguard.data.schema import KIND_QUOTE
from tickguard.engine.layout import M_ASK, M_ASK_SZ, M_BID, M_BID_SZ, M_MID
from tickguard.engine.strategy import NumbaStrategy

from tickguard.strategies.ofi import check_common, follow_signal_nb, trade_to_target_nb

__all__ = ["MICROPRICE_STATE_FIELDS", "microprice", "microprice_nb", "microprice_signal_nb"]

MICROPRICE_STATE_FIELDS = (
    "imbalance", "microprice", "signal", "quote_events", "target", "entry_event", "entry_sec",
    "entry_nsec",
)
_QUOTE = int(KIND_QUOTE)
_S_EVENTS, _S_HOLD = 3, 4


@njit(cache=True)
def microprice_signal_nb(bid, ask, qb, qa, mid):
    """``(imbalance, microprice, signal)`` from L1 prices/sizes; NaNs when undefined."""
    depth = qb + qa
    if not (depth > 0.0 and ask > bid) or math.isnan(qb) or math.isnan(qa):
        return np.nan, np.nan, np.nan  # NaN prices fail `ask > bid` too
    imb = qb / depth
    micro = ask * imb + bid * (1.0 - imb)
    return imb, micro, (micro - mid) / (ask - bid)


@njit(cache=True)
def microprice_nb(reason, ev, order, now, mkt, pos, orders, n_orders, params, state, aux, req):
    """The strategy callback (see the module docstring for params and state)."""
    if reason != 0:
        return 0
    inst = int(params[0])
    if ev["instrument"] != inst or (ev["kind"] & _QUOTE) == 0:
        return 0
    imb, micro, signal = microprice_signal_nb(mkt[inst, M_BID], mkt[inst, M_ASK], mkt[inst, M_BID_SZ],
                                              mkt[inst, M_ASK_SZ], mkt[inst, M_MID])
    state[0] = imb
    state[1] = micro
    state[2] = signal
    state[_S_EVENTS] += 1.0
    target = follow_signal_nb(signal, params[1], params[2], state[_S_EVENTS], now, params[3],
                              params[4], state, _S_HOLD)
    return trade_to_target_nb(req, inst, target, pos, mkt, orders, n_orders)


def microprice(instrument: int = 0, threshold: float = 0.3, size: float = 1.0, lot_size: float = 1.0,
               hold_events: int = 20, hold_ns: int = 0) -> NumbaStrategy:
    """Build the microprice strategy.

    ``threshold`` in (0, 0.5): entry when the microprice is that fraction of the spread away from
    the mid; ``size``: position in lots of ``lot_size`` units; ``hold_events`` / ``hold_ns``:
    minimum holding time.
    """
    check_common("microprice", instrument, size, lot_size, hold_events, hold_ns)
    if not (math.isfinite(threshold) and 0 < threshold < 0.5):
        raise ValueError(f"microprice: threshold must be in (0, 0.5) (a fraction of the spread; "
                         f"|microprice - mid| <= spread / 2), got {threshold!r}")
    state = np.zeros(len(MICROPRICE_STATE_FIELDS))
    state[0:3] = np.nan
    params = np.array([instrument, threshold, size * lot_size, hold_events, hold_ns], dtype=float)
    return NumbaStrategy(microprice_nb, params=params, state=state,
                         name=f"microprice({threshold:g})", max_requests=1)
