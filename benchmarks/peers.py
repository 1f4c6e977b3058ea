"""Peers side by side: the same L1 quotes and the same EMA-crossover strategy in other backtesters.

Each peer has its own function, imports its package only when called, and returns one row
(:data:`PEER_ROW_KEYS`). A peer that is not installed gives the row
``status = "not installed (pip install tickguard[peers])"``; nothing is faked.

The strategy everywhere: EMAs of the mid (spans ``fast``/``slow`` events, seeded with the first
mid, the bare loop's recursion ``ema = (1 - alpha) * ema + alpha * mid``), target +-``size``
from event ``slow`` on, one order per change of target. Float arithmetic is the same IEEE double sequence in
numba and in Python, so the bar engines see the bare loop's signals exactly (hftbacktest rebuilds
prices as tick index x tick size, which may differ in the last bit); whether the *trades* agree
then depends on the fill convention, which each row states (``convention``, ``caveats``).
``orders`` counts the orders the strategy sent, ``fills`` the orders the peer
filled, ``pending_at_end`` those it had not filled when the data ran out (the bar engines fill an
order when the *next* bar is processed, so an order sent on the last bar never fills).

Timing: ``prep_s`` turns the events into the peer's input (not counted), ``setup_s`` is the import
plus a warm-up run on the first ``warmup_events`` (numba compilation for hftbacktest and vectorbt;
not counted), ``run_s`` one run over all the events, from building the backtester to the result.
``events_per_s`` is tickguard events (quote rows) per second of ``run_s``.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import time
import warnings
from importlib import metadata
from typing import Any, Callable

import numpy as np
from numba import njit

__all__ = [
    "NOT_INSTALLED",
    "PEERS",
    "PEER_ROW_KEYS",
    "ema_targets_nb",
    "run_backtesting",
    "run_backtrader",
    "run_hftbacktest",
    "run_peer",
    "run_vectorbt",
    "to_hftbacktest_events",
]

NOT_INSTALLED = "not installed (pip install tickguard[peers])"
PEER_ROW_KEYS = ("peer", "package", "version", "status", "events", "prep_s", "setup_s", "run_s",
                 "events_per_s", "orders", "fills", "pending_at_end", "final_position", "convention",
                 "caveats", "warnings")
_BAR_CAVEAT = ("bar engine: one bar per tick, OHLC = mid, volume 1; fills at the mid, not the touch "
               "(P&L differs from tickguard's by half a spread per unit traded)")


def _row(peer: str, package: str, events: int, convention: str, caveats: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(PEER_ROW_KEYS)
    row.update(peer=peer, package=package, events=int(events), convention=convention,
               caveats=list(caveats), warnings=[])
    return row


def _messages(caught: list[warnings.WarningMessage]) -> list[str]:
    return sorted({f"{w.category.__name__}: {str(w.message)[:160]}" for w in caught})


def _import(row: dict[str, Any], module: str) -> Any | None:
    """Import ``module``; on failure fill the row's status and return None."""
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("always")  # a peer's import-time warnings are recorded, not raised
            mod = importlib.import_module(module)
        row["warnings"] = _messages(caught)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        row["status"] = NOT_INSTALLED if missing in ("", module) else f"import failed: {exc}"
        return None
    except ImportError as exc:  # installed but broken (e.g. a binary built for other numpy)
        row["status"] = f"import failed: {type(exc).__name__}: {exc}"
        return None
    try:
        row["version"] = metadata.version(row["package"])
    except metadata.PackageNotFoundError:
        row["version"] = getattr(mod, "__version__", None)
    return mod


def _timed(row: dict[str, Any], fn: Callable[[np.ndarray], dict[str, Any]], events: np.ndarray,
           warmup_events: int, t_import: float) -> dict[str, Any]:
    """Warm up on a prefix, then one timed run; peer warnings and progress bars are captured."""
    sink = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(sink):
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        fn(events[: min(warmup_events, len(events))])
        row["setup_s"] = t_import + time.perf_counter() - t0
        t0 = time.perf_counter()
        out = fn(events)
        row["run_s"] = time.perf_counter() - t0
    row["warnings"] = sorted(set(row["warnings"]) | set(_messages(caught)))
    row.update(out)
    row["events_per_s"] = len(events) / row["run_s"] if row["run_s"] > 0 else None
    row["status"] = "ok"
    return row


def _mid(events: np.ndarray) -> np.ndarray:
    return 0.5 * (events["bid_px"] + events["ask_px"])


def _bars(events: np.ndarray, pd: Any, names: tuple[str, ...]) -> Any:
    """One bar per event, OHLC = mid; index ts_local floored to microseconds (strictly increasing
    for ``l1_quotes``, whose events are >= 1 us apart; Python datetimes hold no nanoseconds)."""
    mid = _mid(events)
    idx = pd.DatetimeIndex((events["ts_local"] // 1000 * 1000).astype("datetime64[ns]"))
    o, h, lo, c, v = names
    return pd.DataFrame({o: mid, h: mid, lo: mid, c: mid, v: 1.0}, index=idx)


@njit(cache=True)
def ema_targets_nb(mid, fast, slow, size):
    """Target position per event (NaN before event ``slow``), the bare loop's recursion."""
    out = np.full(mid.shape[0], np.nan)
    a_f = 2.0 / (fast + 1.0)
    a_s = 2.0 / (slow + 1.0)
    b_f, b_s = 1.0 - a_f, 1.0 - a_s
    ema_f = 0.0
    ema_s = 0.0
    for i in range(mid.shape[0]):
        if i == 0:
            ema_f = mid[i]
            ema_s = mid[i]
        else:
            ema_f = b_f * ema_f + a_f * mid[i]
            ema_s = b_s * ema_s + a_s * mid[i]
        if i + 1 >= slow:
            out[i] = size if ema_f > ema_s else -size
    return out


# --- hftbacktest ---------------------------------------------------------------------------------


def to_hftbacktest_events(events: np.ndarray, hbt: Any) -> np.ndarray:
    """L1 quotes as hftbacktest depth rows: per quote, clear the old bid/ask level when its price
    moved, then set the new one; every row is both an exchange and a local event."""
    n = len(events)
    bid, ask = events["bid_px"], events["ask_px"]
    prev_bid, prev_ask = np.r_[np.nan, bid[:-1]], np.r_[np.nan, ask[:-1]]
    out = np.zeros(4 * n, dtype=hbt.event_dtype)
    flags = hbt.EXCH_EVENT | hbt.LOCAL_EVENT | hbt.DEPTH_EVENT
    for j, (side, px, qty) in enumerate(((hbt.BUY_EVENT, prev_bid, 0.0), (hbt.SELL_EVENT, prev_ask, 0.0),
                                         (hbt.BUY_EVENT, bid, events["bid_sz"]),
                                         (hbt.SELL_EVENT, ask, events["ask_sz"]))):
        out["ev"][j::4] = flags | side
        out["exch_ts"][j::4] = events["ts_exch"]
        out["local_ts"][j::4] = events["ts_local"]
        out["px"][j::4] = px
        out["qty"][j::4] = qty
    keep = np.ones(4 * n, dtype=bool)
    keep[0::4] = prev_bid != bid  # NaN != x: the first quote's "clear" rows are dropped below
    keep[1::4] = prev_ask != ask
    keep[:2] = False
    return out[keep]


# Plain @njit: numba cannot cache a function taking hftbacktest's jitclass (it holds a pointer).
@njit
def _hft_ema_nb(hbt, fast, slow, size, gtc, market):
    a_f = 2.0 / (fast + 1.0)
    a_s = 2.0 / (slow + 1.0)
    b_f, b_s = 1.0 - a_f, 1.0 - a_s
    ema_f = 0.0
    ema_s = 0.0
    seen = 0
    oid = 0
    pending = 0
    while hbt.wait_next_feed(False, 1 << 62) == 2:
        d = hbt.depth(0)
        mid = 0.5 * (d.best_bid + d.best_ask)
        if seen == 0:
            ema_f = mid
            ema_s = mid
        else:
            ema_f = b_f * ema_f + a_f * mid
            ema_s = b_s * ema_s + a_s * mid
        seen += 1
        if seen < slow:
            continue
        target = size if ema_f > ema_s else -size
        diff = target - hbt.position(0)
        if diff != 0.0:
            oid += 1
            if diff > 0.0:
                r = hbt.submit_buy_order(0, oid, d.best_ask, diff, gtc, market, True)
            else:
                r = hbt.submit_sell_order(0, oid, d.best_bid, -diff, gtc, market, True)
            pending = 1 if r == 1 else 0  # 1: the data ended before the response
            hbt.clear_inactive_orders(0)
    return oid, hbt.state_values(0).num_trades, pending, hbt.position(0)


def run_hftbacktest(events: np.ndarray, *, fast: float = 50.0, slow: float = 200.0, size: float = 1.0,
                    tick_size: float = 0.01, warmup_events: int = 2000) -> dict[str, Any]:
    """hftbacktest (tick-level, numba + Rust): market orders, zero order latency."""
    row = _row("hftbacktest", "hftbacktest", len(events),
               "tick-level L2 book rebuilt from the quotes; market orders, constant order latency 0, "
               "no partial fills, fills at the touch; feed times from the data (ts_exch, ts_local)",
               ["orders fill against the exchange-side book, which may already hold the next quote "
                "(50 us feed latency): fill prices can differ from tickguard's, counts should not",
                "each quote becomes 2-4 depth rows; events/s counts the quotes"])
    t0 = time.perf_counter()
    hbt = _import(row, "hftbacktest")
    if hbt is None:
        return row
    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = to_hftbacktest_events(events, hbt)
    row["prep_s"] = time.perf_counter() - t0

    def one(ev: np.ndarray) -> dict[str, Any]:
        feed = data if len(ev) == len(events) else to_hftbacktest_events(ev, hbt)
        asset = (hbt.BacktestAsset().data([feed]).linear_asset(1.0).constant_order_latency(0, 0)
                 .risk_adverse_queue_model().no_partial_fill_exchange().trading_value_fee_model(0.0, 0.0)
                 .tick_size(tick_size).lot_size(1.0))
        bt = hbt.HashMapMarketDepthBacktest([asset])
        orders, fills, pending, pos = _hft_ema_nb(bt, float(fast), float(slow), float(size), hbt.GTC, hbt.MARKET)
        bt.close()
        return {"orders": int(orders), "fills": int(fills), "pending_at_end": int(pending),
                "final_position": float(pos)}

    return _timed(row, one, events, warmup_events, t_import)


# --- vectorbt ------------------------------------------------------------------------------------


def run_vectorbt(events: np.ndarray, *, fast: float = 50.0, slow: float = 200.0, size: float = 1.0,
                 warmup_events: int = 2000) -> dict[str, Any]:
    """vectorbt ``Portfolio.from_signals`` on one bar per tick (close = mid)."""
    row = _row("vectorbt", "vectorbt", len(events),
               "from_signals on close = mid: long while target > 0, short (reversing) while < 0; "
               "fills at the signal bar's close, no latency, no fees",
               [_BAR_CAVEAT, "signals from a numba kernel with the bare loop's recursion; vectorbt "
                "simulates the orders and the portfolio (both timed)"])
    t0 = time.perf_counter()
    vbt = _import(row, "vectorbt")
    if vbt is None:
        return row
    import pandas as pd

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    close_all = _bars(events, pd, ("o", "h", "l", "close", "v"))["close"]
    row["prep_s"] = time.perf_counter() - t0

    def one(ev: np.ndarray) -> dict[str, Any]:
        close = close_all.iloc[: len(ev)]
        target = ema_targets_nb(close.to_numpy(), float(fast), float(slow), float(size))
        pf = vbt.Portfolio.from_signals(close, entries=target > 0, short_entries=target < 0, size=size,
                                        init_cash=1e12, fees=0.0, freq="1us")
        valid = target[~np.isnan(target)]
        orders = int(len(valid) > 0) + int(np.count_nonzero(np.diff(valid)))
        return {"orders": orders, "fills": int(pf.orders.count()), "pending_at_end": 0,
                "final_position": float(pf.assets().iloc[-1])}

    return _timed(row, one, events, warmup_events, t_import)


# --- backtesting.py ------------------------------------------------------------------------------


def _backtesting_strategy(Strategy: type) -> type:
    class EmaCrossover(Strategy):  # type: ignore[misc, valid-type]
        fast, slow, size = 50.0, 200.0, 1.0

        def init(self) -> None:
            self.k = 0  # bars folded into the EMAs (next() starts at the second bar: catch up)
            self.ema_f = self.ema_s = 0.0
            self.a_f, self.a_s = 2.0 / (self.fast + 1.0), 2.0 / (self.slow + 1.0)
            self.b_f, self.b_s = 1.0 - self.a_f, 1.0 - self.a_s
            self.n_orders = self.n_fills = 0
            self.prev_pos = 0.0

        def next(self) -> None:
            close = self.data.Close
            i = len(close) - 1
            pos = self.position.size
            self.n_fills += pos != self.prev_pos
            self.prev_pos = pos
            while self.k <= i:
                mid = close[self.k]
                if self.k == 0:
                    self.ema_f = self.ema_s = mid
                else:
                    self.ema_f = self.b_f * self.ema_f + self.a_f * mid
                    self.ema_s = self.b_s * self.ema_s + self.a_s * mid
                self.k += 1
            if self.k < self.slow:
                return
            target = self.size if self.ema_f > self.ema_s else -self.size
            if target != pos:
                self.n_orders += 1
                (self.buy if target > 0 else self.sell)(size=self.size)

    return EmaCrossover


def run_backtesting(events: np.ndarray, *, fast: float = 50.0, slow: float = 200.0, size: float = 1.0,
                    warmup_events: int = 2000) -> dict[str, Any]:
    """backtesting.py (PyPI ``backtesting``) on one bar per tick."""
    row = _row("backtesting.py", "backtesting", len(events),
               "trade_on_close=True: an order sent in next() fills at that bar's close (when the next "
               "bar is processed); exclusive_orders=True flips the position with one order",
               [_BAR_CAVEAT, "an order sent on the last bar never fills (pending_at_end)",
                "size in whole units (int)"])
    t0 = time.perf_counter()
    bt = _import(row, "backtesting")
    if bt is None:
        return row
    import pandas as pd

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    df = _bars(events, pd, ("Open", "High", "Low", "Close", "Volume"))
    row["prep_s"] = time.perf_counter() - t0
    strategy = _backtesting_strategy(bt.Strategy)

    def one(ev: np.ndarray) -> dict[str, Any]:
        test = bt.Backtest(df.iloc[: len(ev)], strategy, cash=1e12, commission=0.0, trade_on_close=True,
                           exclusive_orders=True)
        stats = test.run(fast=float(fast), slow=float(slow), size=int(size))
        s = stats._strategy
        return {"orders": int(s.n_orders), "fills": int(s.n_fills),
                "pending_at_end": int(s.n_orders - s.n_fills), "final_position": float(s.position.size)}

    return _timed(row, one, events, warmup_events, t_import)


# --- backtrader ----------------------------------------------------------------------------------


def _backtrader_strategy(bt: Any) -> type:
    class EmaCrossover(bt.Strategy):  # type: ignore[misc, name-defined]
        params = (("fast", 50.0), ("slow", 200.0), ("size", 1.0))

        def __init__(self) -> None:
            self.ema_f = self.ema_s = 0.0
            self.a_f, self.a_s = 2.0 / (self.p.fast + 1.0), 2.0 / (self.p.slow + 1.0)
            self.b_f, self.b_s = 1.0 - self.a_f, 1.0 - self.a_s
            self.seen = self.orders = self.fills = 0
            self.working = False

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                self.fills += 1
            if order.status in (order.Completed, order.Canceled, order.Margin, order.Rejected):
                self.working = False

        def next(self) -> None:
            mid = self.data.close[0]
            if self.seen == 0:
                self.ema_f = self.ema_s = mid
            else:
                self.ema_f = self.b_f * self.ema_f + self.a_f * mid
                self.ema_s = self.b_s * self.ema_s + self.a_s * mid
            self.seen += 1
            if self.seen < self.p.slow or self.working:
                return
            target = self.p.size if self.ema_f > self.ema_s else -self.p.size
            if target != self.position.size:
                self.orders += 1
                self.working = True
                self.order_target_size(target=target)

    return EmaCrossover


def run_backtrader(events: np.ndarray, *, fast: float = 50.0, slow: float = 200.0, size: float = 1.0,
                   warmup_events: int = 2000) -> dict[str, Any]:
    """backtrader on one bar per tick, cheat-on-close market orders."""
    row = _row("backtrader", "backtrader", len(events),
               "broker.set_coc(True): market orders fill at the signal bar's close (backtrader's "
               "default, next bar's open, would lag one bar); order_target_size flips with one order",
               [_BAR_CAVEAT, "an order sent on the last bar never fills (pending_at_end)",
                "timestamps floored to microseconds (Python datetimes)"])
    t0 = time.perf_counter()
    bt = _import(row, "backtrader")
    if bt is None:
        return row
    import pandas as pd

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    df = _bars(events, pd, ("open", "high", "low", "close", "volume"))
    row["prep_s"] = time.perf_counter() - t0
    strategy = _backtrader_strategy(bt)

    def one(ev: np.ndarray) -> dict[str, Any]:
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.adddata(bt.feeds.PandasData(dataname=df.iloc[: len(ev)]))
        cerebro.addstrategy(strategy, fast=float(fast), slow=float(slow), size=float(size))
        cerebro.broker.setcash(1e12)
        cerebro.broker.set_coc(True)
        s = cerebro.run()[0]
        return {"orders": int(s.orders), "fills": int(s.fills), "pending_at_end": int(s.orders - s.fills),
                "final_position": float(s.position.size)}

    return _timed(row, one, events, warmup_events, t_import)


PEERS: dict[str, Callable[..., dict[str, Any]]] = {
    "hftbacktest": run_hftbacktest,
    "vectorbt": run_vectorbt,
    "backtesting": run_backtesting,
    "backtrader": run_backtrader,
}


def run_peer(name: str, events: np.ndarray, **kwargs: Any) -> dict[str, Any]:
    """Run the peer ``name`` (a key of :data:`PEERS`); any failure inside it becomes the row's
    status, so one broken peer does not stop the suite."""
    try:
        fn = PEERS[name]
    except KeyError:
        raise ValueError(f"unknown peer {name!r}; use one of {sorted(PEERS)}") from None
    try:
        return fn(events, **kwargs)
    except Exception as exc:  # a peer's own failure is a finding to report, not a crash
        row = _row(name, name, len(events), "", [])
        row["status"] = f"failed: {type(exc).__name__}: {str(exc)[:300]}"
        return row
