"""Avellaneda–Stoikov market maker with inventory skew, quoting with limit orders.

Model (Avellaneda & Stoikov 2008, "High-frequency trading in a limit order book", Quantitative
Finance 8(3)), *stationary* variant: the time to the end of the session ``T - t`` is replaced by a
constant horizon ``tau`` [s], so the skew does not depend on the time of day::

    r     = mid - q * gamma * sigma2 * tau                         reservation price [price]
    delta = max(0.5 * (gamma * sigma2 * tau + (2 / gamma) * ln(1 + gamma / k)),
                min_half_spread_ticks * tick)                      half-spread [price]
    bid   = floor((r - delta) / tick) * tick,   ask = ceil((r + delta) / tick) * tick

``q`` is the position in units (long > 0), ``gamma`` the risk aversion [1 / (price x unit)],
``k`` the decay of fill intensity with distance from the mid [1 / price], ``sigma2`` the variance
rate of the mid [price^2 / s]. The quotes are then kept passive: the bid at most one tick below
the current best ask, the ask at least one tick above the best bid (a post-only order at the
opposite touch would be rejected; a plain limit order there would take liquidity), and never
crossing our own live order on the other side (which may be stale, waiting for a cancel answer).

Volatility, online: on each quote event with a known mid, EWMAs (smoothing ``alpha`` per event)
of the squared mid change [price^2] and of the time between quote events [s];
``sigma2 = EWMA(dmid^2) / EWMA(dt)``. Their common start-up bias cancels in the ratio. No quotes
before ``warmup`` mid changes have been folded in.

Orders. At most one live order per side, counted from the strategy's own view of its orders
(``orders[:n_orders]``: in flight, open, or open with a cancel pending). Per side, on every quote
event and every response:

* no live order and the side is allowed -> submit a limit (post-only by default) at the quote;
* a live open order, no cancel pending, and the side is not allowed or its quote moved by
  ``>= requote_ticks`` -> cancel it; the replacement goes out once the cancel is answered;
* an order in flight or with a cancel pending -> wait;
* its last order came back rejected for crossing (post-only, ``RJ_POST_ONLY_CROSS``) -> no new
  order on that side until the next quote event. The exchange sees the market before we do (feed
  latency), so a quote passive against our view can cross its touch; sent again on the reject,
  from the same view, it would cross again: with no latency at all, at the same instant, forever.

Cancel-then-new rather than modify: a price change loses queue priority either way (in this
engine a re-priced modify re-enters as a new arrival), and a fresh order lets every replacement's
full size be checked against the known position. The cost is one round trip without a quote on
that side. A side is allowed only if a full fill keeps |position| <= ``max_inventory`` (the known
position; fills not yet reported can only come from the one live order of each side, so the
exchange position cannot pass the limit either), the book is two-sided and not crossed, and the
quote is > 0.

Parameters (float64 array, ``MM_PARAM_FIELDS``); state (``MM_STATE_FIELDS``): the last mid and its
time (whole seconds, nanoseconds: float64 cannot hold epoch ns exactly), the EWMAs, the sample
count, the first order id that may still be live, and the last ``sigma2``, ``r``, ``delta``, bid
and ask computed (for inspection).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from tickguard.data.schema import KIND_QUOTE
from tickguard.engine.layout import M_ASK, M_BID, M_MID
from tickguard.engine.records import (
    ACTION_CANCEL, OT_LIMIT, OT_POST_ONLY, RJ_POST_ONLY_CROSS, ST_IN_FLIGHT, ST_OPEN, ST_REJECTED,
)
from tickguard.engine.strategy import NumbaStrategy, submit_limit_nb
from tickguard.strategies.ofi import elapsed_ns_nb

__all__ = ["MM_PARAM_FIELDS", "MM_STATE_FIELDS", "as_quotes_nb", "market_maker", "market_maker_nb"]

MM_PARAM_FIELDS = (
    "instrument", "tick", "inv_tick", "gamma", "k", "horizon_s", "min_half_spread_ticks",
    "order_size", "max_inventory", "alpha", "warmup", "order_type", "requote_ticks",
)
MM_STATE_FIELDS = (
    "prev_mid", "prev_sec", "prev_nsec", "ew_dmid2", "ew_dt", "samples", "scan_from", "sigma2",
    "reservation", "half_spread", "bid", "ask", "hold",
)
(_P_INST, _P_TICK, _P_INV, _P_GAMMA, _P_K, _P_TAU, _P_MIN_HALF, _P_SIZE, _P_MAX_INV, _P_ALPHA,
 _P_WARMUP, _P_OTYPE, _P_REQUOTE) = range(len(MM_PARAM_FIELDS))
(_S_MID, _S_SEC, _S_NSEC, _S_DM2, _S_DT, _S_N, _S_SCAN, _S_SIG2, _S_RES, _S_HALF, _S_BID,
 _S_ASK, _S_HOLD) = range(len(MM_STATE_FIELDS))
_HOLD_BID = 1  # state[_S_HOLD]: the sides held until the next quote event, bits (bid 1, ask 2)
_HOLD_ASK = 2
_QUOTE = int(KIND_QUOTE)
_NS = 1_000_000_000
_GRID_EPS = 1e-6  # ticks: (r - delta) / tick lands a hair off an integer in binary floating point


@njit(cache=True)
def _price_nb(ticks, tick, inv_tick):
    # n / round(1/tick) is the correctly rounded decimal when 1/tick is an integer (as in data/)
    return ticks / inv_tick if inv_tick > 0.0 else ticks * tick


@njit(cache=True)
def as_quotes_nb(mid, q, gamma, sigma2, tau, k, min_half_ticks, tick, inv_tick, best_bid, best_ask):
    """``(r, delta, bid, ask)``: reservation price, half-spread and tick-rounded passive quotes.

    See the module docstring; ``best_bid`` / ``best_ask`` are the current touch [price].
    """
    r = mid - q * gamma * sigma2 * tau
    delta = 0.5 * (gamma * sigma2 * tau + (2.0 / gamma) * math.log1p(gamma / k))
    delta = max(delta, min_half_ticks * tick)
    bid_t = math.floor((r - delta) / tick + _GRID_EPS)
    ask_t = math.ceil((r + delta) / tick - _GRID_EPS)
    bid_t = min(bid_t, round(best_ask / tick) - 1)  # stay passive
    ask_t = max(ask_t, round(best_bid / tick) + 1)
    return r, delta, _price_nb(bid_t, tick, inv_tick), _price_nb(ask_t, tick, inv_tick)


@njit(cache=True)
def _update_sigma_nb(mid, now, alpha, state):
    if mid != mid:
        return
    if state[_S_MID] == state[_S_MID]:
        dm = mid - state[_S_MID]
        dt = elapsed_ns_nb(now, state[_S_SEC], state[_S_NSEC]) * 1e-9
        state[_S_DM2] += alpha * (dm * dm - state[_S_DM2])
        state[_S_DT] += alpha * (dt - state[_S_DT])
        state[_S_N] += 1.0
        state[_S_SIG2] = state[_S_DM2] / state[_S_DT] if state[_S_DT] > 0.0 else np.nan
    state[_S_MID] = mid
    state[_S_SEC] = float(now // _NS)
    state[_S_NSEC] = float(now % _NS)


@njit(cache=True)
def _side_nb(req, k, orders, idx, inst, side, want, px, params):
    """Manage one side: returns the new request count (see the module docstring)."""
    if idx >= 0:
        o = orders[idx]
        if o["status"] == ST_IN_FLIGHT or o["pending"] != 0:
            return k
        moved = abs(round((o["price"] - px) / params[_P_TICK])) >= params[_P_REQUOTE]
        if want and not moved:
            return k
        r = req[k]
        r["action"] = ACTION_CANCEL
        r["instrument"] = inst
        r["order_type"] = o["order_type"]
        r["side"] = side
        r["order_id"] = o["id"]
        r["price"] = np.nan
        r["qty"] = 0.0
        r["tag"] = 0
        return k + 1
    if not want:
        return k
    return submit_limit_nb(req, k, inst, side * params[_P_SIZE], px, int(params[_P_OTYPE]))


@njit(cache=True)
def market_maker_nb(reason, ev, order, now, mkt, pos, orders, n_orders, params, state, aux, req):
    """The strategy callback (see the module docstring)."""
    inst = int(params[_P_INST])
    if reason == 0:
        if ev["instrument"] != inst or (ev["kind"] & _QUOTE) == 0:
            return 0
        _update_sigma_nb(mkt[inst, M_MID], now, params[_P_ALPHA], state)
        state[_S_HOLD] = 0.0  # news: both sides may quote again
    elif orders[order]["status"] == ST_REJECTED and orders[order]["reason"] == RJ_POST_ONLY_CROSS:
        state[_S_HOLD] = float(int(state[_S_HOLD]) | (_HOLD_BID if orders[order]["side"] > 0 else _HOLD_ASK))
    if state[_S_N] < params[_P_WARMUP]:
        return 0
    # live orders per side: everything below scan_from is known to be finished
    bid_idx = -1
    ask_idx = -1
    first_live = n_orders
    for i in range(int(state[_S_SCAN]), n_orders):
        o = orders[i]
        if o["instrument"] == inst and (o["status"] == ST_IN_FLIGHT or o["status"] == ST_OPEN):
            first_live = min(first_live, i)
            if o["side"] > 0:
                bid_idx = i
            else:
                ask_idx = i
    state[_S_SCAN] = first_live
    best_bid = mkt[inst, M_BID]
    best_ask = mkt[inst, M_ASK]
    sigma2 = state[_S_SIG2]
    ok = best_bid < best_ask and sigma2 == sigma2  # False on NaNs too
    bid_px = np.nan
    ask_px = np.nan
    if ok:
        tick = params[_P_TICK]
        r, delta, bid_px, ask_px = as_quotes_nb(
            mkt[inst, M_MID], pos[inst], params[_P_GAMMA], sigma2, params[_P_TAU], params[_P_K],
            params[_P_MIN_HALF], tick, params[_P_INV], best_bid, best_ask)
        # never cross our own other side: its order may be stale, waiting for a cancel answer
        if ask_idx >= 0:
            bid_px = min(bid_px, _price_nb(round(orders[ask_idx]["price"] / tick) - 1, tick,
                                           params[_P_INV]))
        if bid_idx >= 0:
            ask_px = max(ask_px, _price_nb(round(orders[bid_idx]["price"] / tick) + 1, tick,
                                           params[_P_INV]))
        state[_S_RES] = r
        state[_S_HALF] = delta
        state[_S_BID] = bid_px
        state[_S_ASK] = ask_px
    size = params[_P_SIZE]
    limit = params[_P_MAX_INV] + 1e-9 * size
    hold = int(state[_S_HOLD])
    want_bid = ok and bid_px > 0.0 and pos[inst] + size <= limit and (hold & _HOLD_BID) == 0
    want_ask = ok and pos[inst] - size >= -limit and (hold & _HOLD_ASK) == 0
    k = _side_nb(req, 0, orders, bid_idx, inst, 1, want_bid, bid_px, params)
    return _side_nb(req, k, orders, ask_idx, inst, -1, want_ask, ask_px, params)


def _positive(name: str, value: float, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not (math.isfinite(value) and value > 0):
        raise ValueError(f"market_maker: {name} must be a finite number > 0 ({unit}), got {value!r}")
    return float(value)


def market_maker(
    tick_size: float, *, instrument: int = 0, gamma: float = 0.1, k: float = 100.0,
    horizon_s: float = 10.0, min_half_spread_ticks: float = 0.5, order_size: float = 1.0,
    max_inventory: float = 5.0, vol_halflife: float = 100.0, warmup: int = 50,
    post_only: bool = True, requote_ticks: int = 1,
) -> NumbaStrategy:
    """Build the market maker for an instrument with tick size ``tick_size`` [price].

    ``order_size`` and ``max_inventory`` are in units (multiples of the lot size);
    ``vol_halflife``: half-life of the volatility EWMAs [quote events]; ``warmup``: mid changes
    folded in before the first quote; ``post_only``: post-only (else plain GTC limit) orders;
    ``requote_ticks``: how far the desired quote must move before the order is replaced.
    """
    tick = _positive("tick_size", tick_size, "price units; the instrument's tick size")
    for name, value, unit in (("gamma", gamma, "risk aversion, 1/(price x unit)"),
                              ("k", k, "fill-intensity decay, 1/price"),
                              ("horizon_s", horizon_s, "seconds"),
                              ("min_half_spread_ticks", min_half_spread_ticks, "ticks"),
                              ("order_size", order_size, "units"),
                              ("max_inventory", max_inventory, "units"),
                              ("vol_halflife", vol_halflife, "quote events")):
        _positive(name, value, unit)
    if max_inventory < order_size:
        raise ValueError(f"market_maker: max_inventory ({max_inventory!r}) must be >= order_size "
                         f"({order_size!r}), else no quote could ever be sent")
    if isinstance(instrument, bool) or not isinstance(instrument, (int, np.integer)) or instrument < 0:
        raise ValueError(f"market_maker: instrument must be an int id >= 0, got {instrument!r}")
    for name, value, low in (("warmup", warmup, 1), ("requote_ticks", requote_ticks, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"market_maker: {name} must be an int >= {low}, got {value!r}")
    inv = round(1.0 / tick)
    inv_tick = float(inv) if inv >= 1 and abs(1.0 / tick - inv) <= 1e-9 * inv else 0.0
    alpha = 1.0 - 0.5 ** (1.0 / vol_halflife)
    params = np.array([instrument, tick, inv_tick, gamma, k, horizon_s, min_half_spread_ticks,
                       order_size, max_inventory, alpha, warmup,
                       OT_POST_ONLY if post_only else OT_LIMIT, requote_ticks], dtype=float)
    state = np.zeros(len(MM_STATE_FIELDS))
    state[[_S_MID, _S_SIG2, _S_RES, _S_HALF, _S_BID, _S_ASK]] = np.nan
    return NumbaStrategy(market_maker_nb, params=params, state=state,
                         name=f"market_maker(gamma={gamma:g},k={k:g},tau={horizon_s:g}s)", max_requests=2)
