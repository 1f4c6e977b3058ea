"""Trade-level and execution metrics from fill / order / risk records.

Definitions live in the table of :mod:`tickguard.reports.metrics` (one place); this module holds the
round-trip reconstruction and the counting. Times are int64 ns since the epoch (UTC); money is in
the quote currency; quantities in units; ``multiplier`` is per instrument id (NaN/missing -> 1).

Round trips (average-cost episodes): a trade opens when an instrument's position leaves zero and
closes on the fill that brings it back to zero; a fill that flips the position closes the trade in
full and opens a new one with the remainder (its fee is split pro rata by quantity). Adding to or
partly reducing a position stays inside the same trade. Because a closed trade starts and ends flat,
its gross PnL is the sum of its cash flows, ``-sum(side * qty * price * multiplier)``, which equals
the average-cost realized PnL the engine books (and FIFO's too: the total of an episode does not
depend on the lot-matching rule). A position counts as flat when ``|position| <= 1e-9 * qty`` of the
fill, so float residue of fractional lots does not keep a trade open.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from numba import njit

from tickguard.engine.records import (
    FILL_DTYPE, LIQ_MAKER, OE_CANCEL_REQ, OE_DENIED, OE_MODIFY_REQ, OE_REJECT, OE_SUBMIT,
    ORDER_DTYPE, ORDER_EVENT_DTYPE, OT_LIMIT, OT_POST_ONLY, RISK_EVENT_DTYPE,
)

__all__ = [
    "TRADE_DTYPE",
    "execution_stats",
    "exposure_time",
    "risk_events_by_rule",
    "round_trips",
    "round_trips_nb",
    "trade_stats",
]

#: one row per round trip; prices are quantity-weighted averages (VWAP) of the opening / closing parts
TRADE_DTYPE = np.dtype(
    [
        ("instrument", np.int32),
        ("direction", np.int32),  # +1 long, -1 short
        ("closed", np.int32),  # 1 closed, 0 still open at the end of the records
        ("n_fills", np.int32),  # fills touching the trade (a flip fill counts in both trades)
        ("entry_ts", np.int64),  # exchange time of the opening fill
        ("exit_ts", np.int64),  # exchange time of the closing fill; -1 while open
        ("entry_qty", np.float64),  # units opened (including scale-ins)
        ("entry_price", np.float64),
        ("exit_qty", np.float64),  # units closed
        ("exit_price", np.float64),  # NaN when nothing was closed yet
        ("gross_pnl", np.float64),  # currency, before fees; NaN while open
        ("fees", np.float64),  # currency, negative = rebate
        ("net_pnl", np.float64),  # gross_pnl - fees; NaN while open
    ],
    align=True,
)

_FLAT_TOL = 1e-9


@njit(cache=True)
def round_trips_nb(inst, side, qty, price, fee, ts, mult, out):
    """Fill rows in booking order -> round trips written into ``out`` (len >= fills); returns count.

    ``gross_pnl`` holds the running cash flow and ``entry_price``/``exit_price`` the running
    notionals until a trade is finished, then they are turned into PnL and VWAPs.
    """
    n_inst = mult.shape[0]
    pos = np.zeros(n_inst)
    slot = np.full(n_inst, -1, dtype=np.int64)
    n = 0
    for i in range(inst.shape[0]):
        k = inst[i]
        s = 1.0 if side[i] > 0 else -1.0
        q = qty[i]
        p = price[i]
        m = mult[k]
        left = q  # part of this fill not yet assigned to a trade
        if slot[k] >= 0 and pos[k] * s < 0.0:  # reducing: close part (or all) of the open trade
            t = out[slot[k]]
            closed = min(q, abs(pos[k]))
            t["exit_qty"] += closed
            t["exit_price"] += closed * p
            t["gross_pnl"] -= s * closed * p * m
            t["fees"] += fee[i] * closed / q
            t["n_fills"] += 1
            new_pos = pos[k] + s * q
            if abs(new_pos) <= _FLAT_TOL * q or new_pos * pos[k] < 0.0:
                t["closed"] = 1
                t["exit_ts"] = ts[i]
                t["entry_price"] /= t["entry_qty"]
                t["exit_price"] /= t["exit_qty"]
                t["net_pnl"] = t["gross_pnl"] - t["fees"]
                slot[k] = -1
                pos[k] = 0.0
                left = q - closed
                if left <= _FLAT_TOL * q:
                    left = 0.0
            else:
                pos[k] = new_pos
                left = 0.0
        if left > 0.0:
            if slot[k] < 0:  # open a new trade
                slot[k] = n
                t = out[n]
                n += 1
                t["instrument"] = k
                t["direction"] = int(s)
                t["closed"] = 0
                t["n_fills"] = 0
                t["entry_ts"] = ts[i]
                t["exit_ts"] = -1
                t["entry_qty"] = 0.0
                t["entry_price"] = 0.0
                t["exit_qty"] = 0.0
                t["exit_price"] = 0.0
                t["gross_pnl"] = 0.0
                t["fees"] = 0.0
            t = out[slot[k]]
            t["entry_qty"] += left
            t["entry_price"] += left * p
            t["gross_pnl"] -= s * left * p * m
            t["fees"] += fee[i] * left / q
            t["n_fills"] += 1
            pos[k] += s * left
    for k in range(n_inst):  # trades still open: VWAPs so far, PnL unknown without a mark
        if slot[k] >= 0:
            t = out[slot[k]]
            t["entry_price"] /= t["entry_qty"]
            t["exit_price"] = t["exit_price"] / t["exit_qty"] if t["exit_qty"] > 0.0 else np.nan
            t["gross_pnl"] = np.nan
            t["net_pnl"] = np.nan
    return n


def _check_dtype(arr: Any, dtype: np.dtype, name: str) -> np.ndarray:
    if not isinstance(arr, np.ndarray) or arr.dtype != dtype:
        got = arr.dtype if isinstance(arr, np.ndarray) else type(arr).__name__
        raise TypeError(f"{name}: expected a numpy array of the engine's record dtype, got {got}; "
                        f"pass result.{name} (the structured array, not the DataFrame)")
    return arr


def _multiplier(mult: Any, inst: np.ndarray) -> np.ndarray:
    need = int(inst.max()) + 1 if len(inst) else 1
    if mult is None:
        return np.ones(need)
    m = np.nan_to_num(np.atleast_1d(np.asarray(mult, dtype=float)), nan=1.0)
    if m.ndim != 1 or len(m) < need:
        raise ValueError(f"multiplier: got shape {m.shape} for instrument ids up to {need - 1}; "
                         "pass one value per instrument id, e.g. instruments.dense_arrays()['multiplier']")
    return m


def round_trips(fills: np.ndarray, multiplier: Any = None) -> np.ndarray:
    """Round trips (TRADE_DTYPE rows, in opening order) from fill records in booking order.

    ``multiplier``: per-instrument-id contract multipliers (default 1).
    """
    f = _check_dtype(fills, FILL_DTYPE, "fills")
    if np.any(f["instrument"] < 0):
        raise ValueError("fills: negative instrument id; fills must come from the engine's records")
    mult = _multiplier(multiplier, f["instrument"])
    out = np.zeros(len(f), dtype=TRADE_DTYPE)
    n = round_trips_nb(f["instrument"].astype(np.int64), f["side"].astype(np.int64),
                       f["qty"].astype(float), f["price"].astype(float), f["fee"].astype(float),
                       f["ts"].astype(np.int64), mult, out)
    return out[:n].copy()


def trade_stats(trades: np.ndarray) -> dict[str, float | int]:
    """Win rate, profit factor, expectancy, averages and holding time over *closed* trades.

    Wins/losses are judged on net PnL (after fees); a zero-PnL trade is neither. NaN where a ratio
    is undefined (no closed trades; no losing trades for the profit factor).
    """
    t = _check_dtype(trades, TRADE_DTYPE, "trades")
    c = t[t["closed"] == 1]
    net = c["net_pnl"]
    wins, losses = net[net > 0.0], net[net < 0.0]
    n = len(c)
    gross_win, gross_loss = float(wins.sum()), float(-losses.sum())
    hold = (c["exit_ts"] - c["entry_ts"]).astype(float) / 1e9
    nan = float("nan")
    return {
        "n_trades": n,
        "n_open_trades": int(len(t) - n),
        "n_winning_trades": int(len(wins)),
        "n_losing_trades": int(len(losses)),
        "win_rate": len(wins) / n if n else nan,
        "profit_factor": gross_win / gross_loss if gross_loss > 0.0 else nan,
        "expectancy": float(net.mean()) if n else nan,
        "avg_win": float(wins.mean()) if len(wins) else nan,
        "avg_loss": float(losses.mean()) if len(losses) else nan,
        "trades_gross_pnl": float(c["gross_pnl"].sum()),
        "trades_net_pnl": float(net.sum()),
        "avg_holding_s": float(hold.mean()) if n else nan,
    }


def exposure_time(ts: np.ndarray, instrument: np.ndarray, position: np.ndarray,
                  start: int, end: int) -> float:
    """Share of ``[start, end]`` (ns) during which any instrument's position is non-zero.

    ``ts``/``instrument``/``position``: fill times, ids and position *after* each fill, in booking
    order; positions are zero before the first fill. Fill times are exchange times, which need not
    be monotone across instruments: a fill takes effect at the running maximum of ``ts`` (never
    before a fill booked ahead of it). NaN when ``end <= start``.
    """
    ts = np.asarray(ts, dtype=np.int64)
    inst = np.asarray(instrument, dtype=np.int64)
    pos = np.asarray(position, dtype=float)
    if not (len(ts) == len(inst) == len(pos)):
        raise ValueError(f"exposure_time: ts, instrument, position lengths differ "
                         f"({len(ts)}, {len(inst)}, {len(pos)}); pass columns of one fills array")
    if end <= start:
        return float("nan")
    held = np.zeros(len(ts), dtype=bool)  # after fill i, is any instrument non-zero?
    idx = np.arange(len(ts))
    for k in np.unique(inst):
        last = np.maximum.accumulate(np.where(inst == k, idx, -1))  # latest fill of k so far
        held |= (last >= 0) & (pos[np.maximum(last, 0)] != 0.0)
    bounds = np.clip(np.append(np.maximum.accumulate(ts), end), start, end)
    return float(np.sum(np.diff(bounds)[held]) / (end - start))


def execution_stats(fills: np.ndarray, orders: np.ndarray, order_events: np.ndarray,
                    multiplier: Any = None, initial_cash: float = float("nan")) -> dict[str, Any]:
    """Counts, fees, maker/taker split, turnover, order-to-trade ratio, limit fill ratio, slippage."""
    f = _check_dtype(fills, FILL_DTYPE, "fills")
    o = _check_dtype(orders, ORDER_DTYPE, "orders")
    oe = _check_dtype(order_events, ORDER_EVENT_DTYPE, "order_events")
    mult = _multiplier(multiplier, f["instrument"])
    m = mult[f["instrument"]]
    notional = f["qty"] * f["price"] * m
    total_notional = float(notional.sum())
    maker_notional = float(notional[f["liquidity"] == LIQ_MAKER].sum())
    ev = oe["event"]
    messages = int(np.isin(ev, (OE_SUBMIT, OE_CANCEL_REQ, OE_MODIFY_REQ)).sum())
    lim = o[np.isin(o["order_type"], (OT_LIMIT, OT_POST_ONLY))]
    lim_qty = float(lim["qty"].sum())
    has_mid = np.isfinite(f["mid"]) & (f["mid"] > 0.0)
    side = np.where(f["side"] > 0, 1.0, -1.0)
    slip_cost = float(np.sum((side * (f["price"] - f["mid"]) * f["qty"] * m)[has_mid]))
    mid_notional = float(np.sum((f["mid"] * f["qty"] * m)[has_mid]))
    nan = float("nan")
    return {
        "n_orders": int(len(o)),
        "n_fills": int(len(f)),
        "n_order_messages": messages,
        "n_denied": int((ev == OE_DENIED).sum()),
        "n_rejected": int((ev == OE_REJECT).sum()),
        "order_to_trade": messages / len(f) if len(f) else nan,
        "fees_paid": float(f["fee"].sum()),
        "traded_notional": total_notional,
        "turnover": total_notional / initial_cash if initial_cash > 0 else nan,
        "maker_share": maker_notional / total_notional if total_notional > 0 else nan,
        "taker_share": 1.0 - maker_notional / total_notional if total_notional > 0 else nan,
        "n_limit_orders": int(len(lim)),
        "limit_fill_ratio": float(lim["filled"].sum()) / lim_qty if lim_qty > 0 else nan,
        "slippage_vs_fill_mid_bps": 1e4 * slip_cost / mid_notional if mid_notional > 0 else nan,
        "slippage_vs_fill_mid_cost": slip_cost,
        "slippage_reference": "exchange mid at fill time (FILL_DTYPE.mid); the records hold no mid "
                              "at decision time, so this is not slippage vs the decision mid",
    }


def risk_events_by_rule(risk_events: np.ndarray,
                        rule_names: Mapping[int, str] | None = None) -> dict[str, int]:
    """Count of risk events per rule, keyed by ``rule_names[rule]`` or ``"rule_<n>"``, sorted by rule."""
    r = _check_dtype(risk_events, RISK_EVENT_DTYPE, "risk_events")
    names = dict(rule_names or {})
    rules, counts = np.unique(r["rule"], return_counts=True)
    return {names.get(int(k), f"rule_{int(k)}"): int(c) for k, c in zip(rules, counts)}
