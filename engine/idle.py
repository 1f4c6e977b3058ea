"""The strategy that never trades: the reference workload for engine overhead."""

from __future__ import annotations

from numba import njit

__all__ = ["idle_strategy_nb"]


@njit(cache=True)
def idle_strategy_nb(reason, ev, order, now, mkt, pos, orders, n_orders, params, state, aux, req):
    """Send nothing."""
    return 0
