"""The pure-Python reference loop: the bare loop's strategy and accounting, without numba.

Why: the suite shows what compiling buys. :func:`ema_loop_py` is a line-for-line twin of
:func:`tickguard.benchmarks.engine.bare_ema_loop_nb` (EMA-crossover momentum on the mid, fills at
the touch, no latency, no records) over plain Python floats. Both use IEEE double arithmetic in
the same order, so on the same events they agree exactly: same trade count, same final position
and cash (a test checks it).

It runs about two orders of magnitude slower, so the suite times it on a prefix of the events
and extrapolates per event (:func:`measure_pyloop` says so in what it returns). The columns are
turned into Python lists first (not timed: it is data loading, the part a pure-Python backtester
would do when reading its input); the loop itself is what is timed.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

__all__ = ["ema_loop_py", "measure_pyloop"]


def ema_loop_py(bid: Sequence[float], ask: Sequence[float], fast: float, slow: float,
                size: float) -> tuple[float, float, int]:
    """Returns (final cash, final position, trades); cash < 0 after buying, position > 0 long.

    ``fast``/``slow``: EMA spans in events (alpha = 2 / (span + 1)); no signal before event
    ``slow`` (1-based); market orders to +-``size`` fill at the ask (buys) or the bid (sells).
    """
    a_fast = 2.0 / (fast + 1.0)
    a_slow = 2.0 / (slow + 1.0)
    b_fast = 1.0 - a_fast
    b_slow = 1.0 - a_slow
    ema_f = 0.0
    ema_s = 0.0
    cash = 0.0
    pos = 0.0
    trades = 0
    for i in range(len(bid)):
        b = bid[i]
        a = ask[i]
        mid = 0.5 * (b + a)
        if i == 0:
            ema_f = mid
            ema_s = mid
        else:
            ema_f = b_fast * ema_f + a_fast * mid
            ema_s = b_slow * ema_s + a_slow * mid
        if i + 1 < slow:
            continue
        target = size if ema_f > ema_s else -size
        diff = target - pos
        if diff != 0.0:
            price = a if diff > 0.0 else b
            cash -= diff * price
            pos = target
            trades += 1
    return cash, pos, trades


def measure_pyloop(events: np.ndarray, n_events: int, *, fast: float = 50.0, slow: float = 200.0,
                   size: float = 1.0, extrapolate_to: int | None = None) -> dict[str, Any]:
    """Time :func:`ema_loop_py` on the first ``n_events`` of ``events`` (once: it is slow and its
    timing is steady); ``extrapolate_to`` events are then priced at the measured rate."""
    if isinstance(n_events, bool) or not isinstance(n_events, (int, np.integer)) or n_events < 1:
        raise ValueError(f"n_events must be an int >= 1, got {n_events!r}")
    part = events[: int(n_events)]
    bid = part["bid_px"].tolist()
    ask = part["ask_px"].tolist()
    t0 = time.perf_counter()
    cash, pos, trades = ema_loop_py(bid, ask, fast, slow, size)
    secs = time.perf_counter() - t0
    rate = len(part) / secs if secs > 0 else float("inf")
    out: dict[str, Any] = {
        "loop": "pure Python",
        "events_measured": len(part),
        "seconds": secs,
        "events_per_s": rate,
        "trades": trades,
        "final_position": pos,
        "final_cash": cash,
        "extrapolated": extrapolate_to is not None and extrapolate_to != len(part),
        "note": f"timed on the first {len(part)} events; rate extrapolated per event",
    }
    if extrapolate_to is not None:
        out["extrapolated_events"] = int(extrapolate_to)
        out["extrapolated_seconds"] = extrapolate_to / rate
    return out
