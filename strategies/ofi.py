"""Order-flow imbalance (Cont, Kukanov & Stoikov 2014) momentum on L1 quotes, market orders.

Signal. Per quote event of the instrument whose top of book differs from the previous one, the
OFI increment [units] (CKS 2014, J. Financial Econometrics 12(1), eq. 10; primes = previous L1)::

    e = 1{Pb >= Pb'} qb - 1{Pb <= Pb'} qb'  -  (1{Pa <= Pa'} qa - 1{Pa >= Pa'} qa')

i.e. bid part (+qb if the bid rose, qb - qb' if unchanged, -qb' if it fell) minus the symmetric ask
part; positive = net buying pressure. A side that is empty (NaN price or size) before or after the
event contributes 0 (the convention of :func:`tickguard.strategies.features.ofi_increments`).
Quote rows that repeat the previous L1 carry no order flow and are not counted (LOBSTER emits a
book row for every message). The increments of the last ``window`` counted events sit in a ring
buffer; the normalised OFI is their sum divided by the mean touch depth ``(qb + qa) / 2`` over the
same events (CKS scale OFI by depth): dimensionless, "net flow in touch depths". NaN until
``window`` events are counted.

Trading (:func:`follow_signal_nb`, shared with :mod:`tickguard.strategies.microprice`): the target
is +size when the signal > threshold, -size when < -threshold, 0 in between; a NaN signal keeps
the target. Once in a position the target is held for at least ``hold_events`` quote events of the
instrument *and* ``hold_ns`` of local time; after that it follows the signal (stays while the
signal persists, flattens when it falls inside the band, flips when it crosses; a flip restarts
the clock). Market orders for ``target - position`` are sent only while no order is working
(:func:`trade_to_target_nb`), so |position| <= size.

Parameters (float64 array): ``[instrument, window, threshold, size_units, hold_events, hold_ns]``.
State: ``[prev_bid, prev_bid_sz, prev_ask, prev_ask_sz, counted, sum_e, sum_depth, last_e, ofi,
quote_events, target, entry_event, entry_sec, entry_nsec, ring_e[window], ring_depth[window]]``
(entry time split into whole seconds and nanoseconds: float64 cannot hold epoch ns exactly).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from tickguard.data.schema import KIND_QUOTE
from tickguard.engine.layout import M_ASK, M_ASK_SZ, M_BID, M_BID_SZ, M_HALTED
from tickguard.engine.records import ST_IN_FLIGHT, ST_OPEN
from tickguard.engine.strategy import NumbaStrategy, submit_market_nb

__all__ = [
    "OFI_STATE_FIELDS",
    "check_common",
    "elapsed_ns_nb",
    "follow_signal_nb",
    "ofi",
    "ofi_increment_nb",
    "ofi_nb",
    "trade_to_target_nb",
]

#: names of the fixed state slots; ring buffers follow (increments, then depths)
OFI_STATE_FIELDS = (
    "prev_bid", "prev_bid_sz", "prev_ask", "prev_ask_sz", "counted", "sum_e", "sum_depth",
    "last_e", "ofi", "quote_events", "target", "entry_event", "entry_sec", "entry_nsec",
)
_QUOTE = int(KIND_QUOTE)
_S_COUNTED, _S_SUM_E, _S_SUM_D, _S_LAST_E, _S_OFI, _S_EVENTS, _S_HOLD = 4, 5, 6, 7, 8, 9, 10
_N_FIXED = len(OFI_STATE_FIELDS)
_NS = 1_000_000_000


@njit(cache=True)
def ofi_increment_nb(pb0, qb0, pa0, qa0, pb1, qb1, pa1, qa1):
    """CKS OFI increment [units] from L1 (price, size) before (``0``) and after (``1``) an event."""
    e = 0.0
    if not (math.isnan(pb0) or math.isnan(qb0) or math.isnan(pb1) or math.isnan(qb1)):
        e += (qb1 if pb1 >= pb0 else 0.0) - (qb0 if pb1 <= pb0 else 0.0)
    if not (math.isnan(pa0) or math.isnan(qa0) or math.isnan(pa1) or math.isnan(qa1)):
        e -= (qa1 if pa1 <= pa0 else 0.0) - (qa0 if pa1 >= pa0 else 0.0)
    return e


@njit(cache=True)
def elapsed_ns_nb(now, sec, nsec):
    """``now`` minus the time stored as (whole seconds, nanoseconds) floats, in int64 ns."""
    return (now // _NS - np.int64(sec)) * _NS + (now % _NS - np.int64(nsec))


@njit(cache=True)
def follow_signal_nb(signal, threshold, size, event, now, hold_events, hold_ns, state, base):
    """Update and return the target position [units] from ``signal`` (see the module docstring).

    ``state[base:base + 4]`` = ``[target, entry_event, entry_sec, entry_nsec]``; ``event`` counts
    the instrument's quote events, ``now`` is local time [ns].
    """
    target = state[base]
    if signal != signal:  # NaN: no opinion, keep what we hold
        return target
    desired = size if signal > threshold else (-size if signal < -threshold else 0.0)
    if desired == target:
        return target
    if target != 0.0 and (event - state[base + 1] < hold_events
                          or elapsed_ns_nb(now, state[base + 2], state[base + 3]) < hold_ns):
        return target  # minimum holding time not over yet
    state[base] = desired
    if desired != 0.0:
        state[base + 1] = event
        state[base + 2] = float(now // _NS)
        state[base + 3] = float(now % _NS)
    return desired


@njit(cache=True)
def trade_to_target_nb(req, inst, target, pos, mkt, orders, n_orders):
    """Write a market order for ``target - pos[inst]`` into ``req[0]``; returns the request count.

    Nothing while an order is working (orders are sequential: only the last one can work), while
    the instrument has no quote, or while the exchange halts it (a market order would be rejected).
    """
    if mkt[inst, M_HALTED] > 0.0:
        return 0
    if n_orders > 0:
        st = orders[n_orders - 1]["status"]
        if st == ST_IN_FLIGHT or st == ST_OPEN:
            return 0
    diff = target - pos[inst]
    if abs(diff) < 1e-9 * max(1.0, abs(target)):
        return 0
    if mkt[inst, M_BID] != mkt[inst, M_BID] and mkt[inst, M_ASK] != mkt[inst, M_ASK]:
        return 0
    return submit_market_nb(req, 0, inst, diff)


@njit(cache=True)
def _ofi_update_nb(pb, qb, pa, qa, window, state):
    """Fold one L1 quote into the ring buffer; returns the normalised OFI (NaN while warming)."""
    if (pb == state[0] and qb == state[1] and pa == state[2] and qa == state[3]):
        return state[_S_OFI]  # same top of book: no order flow
    e = ofi_increment_nb(state[0], state[1], state[2], state[3], pb, qb, pa, qa)
    first = state[0] != state[0] and state[2] != state[2]  # no previous quote at all
    state[0], state[1], state[2], state[3] = pb, qb, pa, qa
    if first:
        return state[_S_OFI]
    depth = 0.5 * ((0.0 if qb != qb else qb) + (0.0 if qa != qa else qa))
    n = int(state[_S_COUNTED])
    slot = n % window
    ring_e = _N_FIXED + slot
    ring_d = _N_FIXED + window + slot
    if n >= window:  # drop the oldest event of the window
        state[_S_SUM_E] -= state[ring_e]
        state[_S_SUM_D] -= state[ring_d]
    state[ring_e] = e
    state[ring_d] = depth
    state[_S_SUM_E] += e
    state[_S_SUM_D] += depth
    if slot == window - 1:  # re-sum once per lap so rounding cannot accumulate
        state[_S_SUM_E] = state[_N_FIXED:_N_FIXED + window].sum()
        state[_S_SUM_D] = state[_N_FIXED + window:_N_FIXED + 2 * window].sum()
    state[_S_COUNTED] = n + 1
    state[_S_LAST_E] = e
    if n + 1 < window or state[_S_SUM_D] <= 0.0:
        state[_S_OFI] = np.nan
    else:
        state[_S_OFI] = state[_S_SUM_E] * window / state[_S_SUM_D]
    return state[_S_OFI]


@njit(cache=True)
def ofi_nb(reason, ev, order, now, mkt, pos, orders, n_orders, params, state, aux, req):
    """The strategy callback (see the module docstring for params and state)."""
    if reason != 0:
        return 0
    inst = int(params[0])
    if ev["instrument"] != inst or (ev["kind"] & _QUOTE) == 0:
        return 0
    window = int(params[1])
    signal = _ofi_update_nb(mkt[inst, M_BID], mkt[inst, M_BID_SZ], mkt[inst, M_ASK],
                            mkt[inst, M_ASK_SZ], window, state)
    state[_S_EVENTS] += 1.0
    target = follow_signal_nb(signal, params[2], params[3], state[_S_EVENTS], now, params[4],
                              params[5], state, _S_HOLD)
    return trade_to_target_nb(req, inst, target, pos, mkt, orders, n_orders)


def check_common(name: str, instrument: int, size: float, lot_size: float, hold_events: int,
                 hold_ns: int) -> None:
    """Validate the arguments the OFI and microprice factories share."""
    if isinstance(instrument, bool) or not isinstance(instrument, (int, np.integer)) or instrument < 0:
        raise ValueError(f"{name}: instrument must be an int id >= 0, got {instrument!r}")
    if not (math.isfinite(lot_size) and lot_size > 0):
        raise ValueError(f"{name}: lot_size must be finite and > 0 (units per lot), got {lot_size!r}")
    if not (math.isfinite(size) and size > 0 and float(size).is_integer()):
        raise ValueError(f"{name}: size must be a whole number of lots >= 1, got {size!r}; "
                         "e.g. size=1")
    for arg, value in (("hold_events", hold_events), ("hold_ns", hold_ns)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name}: {arg} must be an int >= 0, got {value!r}")


def ofi(instrument: int = 0, window: int = 50, threshold: float = 0.5, size: float = 1.0,
        lot_size: float = 1.0, hold_events: int = 20, hold_ns: int = 0) -> NumbaStrategy:
    """Build the OFI strategy.

    ``window``: counted quote events in the rolling sum; ``threshold`` (> 0): entry level of the
    normalised OFI [touch depths]; ``size``: position in lots of ``lot_size`` units (the
    instrument's lot size); ``hold_events`` / ``hold_ns``: minimum holding time.
    """
    check_common("ofi", instrument, size, lot_size, hold_events, hold_ns)
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"ofi: window must be an int >= 1 (events), got {window!r}; e.g. window=50")
    if not (math.isfinite(threshold) and threshold > 0):
        raise ValueError(f"ofi: threshold must be finite and > 0 (touch depths), got {threshold!r}")
    state = np.zeros(_N_FIXED + 2 * int(window))
    state[0:4] = np.nan
    state[_S_OFI] = np.nan
    params = np.array([instrument, window, threshold, size * lot_size, hold_events, hold_ns], dtype=float)
    return NumbaStrategy(ofi_nb, params=params, state=state,
                         name=f"ofi({window},{threshold:g})", max_requests=1)
