"""Strategy plugins: two speeds, one execution path.

* :class:`NumbaStrategy` — a jitted callback run by the loop on every event and every response:

  ``on_event(reason, ev, order, now, mkt, pos, orders, n_orders, params, state, aux, req) -> int``

  ``reason`` is 0 for a market event (``ev`` the event record, ``order`` = -1, ``aux`` this event's
  row of the per-event inputs) and 1 for a response to one of our orders (``order`` its id, ``ev``
  a blank record, ``aux`` a NaN row). ``mkt`` is the strategy's market view
  float64[n_instruments, M_NF] (columns in :mod:`tickguard.engine.layout`), ``pos`` the positions
  it knows of, ``orders[:n_orders]`` its view of its orders (:data:`LOCAL_ORDER_DTYPE`), ``params``
  and ``state`` float64 arrays (state persists across calls), and ``req`` a :data:`REQUEST_DTYPE`
  buffer: write requests into ``req[0..k)`` and return ``k``.
  Everything the callback sees has already reached it at ``now``: it cannot see the future.

* :class:`SignalStrategy` — Python computes a causal target position per event (e.g. from a model
  fitted walk-forward) and the engine trades toward it through the same gate, latency and fills.

Plugins are found through the ``tickguard.strategies`` entry-point group (:func:`discover`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable

import numpy as np
from numba import config as numba_config

from .internal import internal_njit
from .layout import M_ASK, M_BID
from .records import (
    ACTION_SUBMIT, OT_LIMIT, OT_MARKET, ST_IN_FLIGHT, ST_OPEN,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "NumbaStrategy",
    "SignalStrategy",
    "discover",
    "load_strategy",
    "submit_limit_nb",
    "submit_market_nb",
    "target_position_nb",
]

ENTRY_POINT_GROUP = "tickguard.strategies"


@dataclass(frozen=True)
class NumbaStrategy:
    """A jitted callback plus its parameters, initial state and optional per-event inputs."""

    on_event: Any
    params: np.ndarray = field(default_factory=lambda: np.zeros(0))
    state: np.ndarray = field(default_factory=lambda: np.zeros(0))
    aux: np.ndarray | None = None  # float64[n_events, k], aligned to the events
    name: str = ""
    max_requests: int = 16

    def __post_init__(self) -> None:
        if getattr(self.on_event, "py_func", None) is None and not numba_config.DISABLE_JIT:
            raise TypeError(
                f"NumbaStrategy.on_event must be an @njit function, got {type(self.on_event).__name__}"
            )
        object.__setattr__(self, "params", np.ascontiguousarray(self.params, dtype=np.float64))
        object.__setattr__(self, "state", np.array(self.state, dtype=np.float64, copy=True))
        if self.aux is not None:
            aux = np.ascontiguousarray(self.aux, dtype=np.float64)
            if aux.ndim == 1:
                aux = aux[:, None]
            if aux.ndim != 2:
                raise ValueError(f"NumbaStrategy.aux must be 1-D or 2-D, got shape {aux.shape}")
            object.__setattr__(self, "aux", aux)
        if not self.name:
            object.__setattr__(self, "name", getattr(self.on_event, "py_func", self.on_event).__name__)
        if self.max_requests <= 0:
            raise ValueError(f"NumbaStrategy.max_requests must be > 0, got {self.max_requests}")


@internal_njit
def submit_market_nb(req, k, inst, signed_qty):
    """Write a market order for ``signed_qty`` units (> 0 buys, < 0 sells) into ``req[k]``;
    returns ``k + 1``, the request count to hand back to the loop."""
    r = req[k]
    r["action"] = ACTION_SUBMIT
    r["instrument"] = inst
    r["order_type"] = OT_MARKET
    r["side"] = 1 if signed_qty > 0.0 else -1
    r["price"] = np.nan
    r["qty"] = abs(signed_qty)
    r["tag"] = 0
    return k + 1


@internal_njit
def submit_limit_nb(req, k, inst, signed_qty, price, order_type=OT_LIMIT, tag=0):
    """Write a limit order (``order_type`` OT_LIMIT, or OT_IOC, OT_FOK, OT_POST_ONLY) for
    ``signed_qty`` units (> 0 buys, < 0 sells) at ``price`` into ``req[k]``, labelled ``tag`` in
    the records; returns ``k + 1``, the request count to hand back to the loop."""
    r = req[k]
    r["action"] = ACTION_SUBMIT
    r["instrument"] = inst
    r["order_type"] = order_type
    r["side"] = 1 if signed_qty > 0.0 else -1
    r["price"] = price
    r["qty"] = abs(signed_qty)
    r["tag"] = tag
    return k + 1


@internal_njit
def target_position_nb(reason, ev, order, now, mkt, pos, orders, n_orders, params, state, aux, req):
    """Trade toward ``aux[0]`` (target position of instrument ``params[0]``) with market orders.

    Sends nothing while one of its orders is still working (so it never double-counts), and skips
    NaN targets and events of other instruments. ``params[1]`` is the lot size to round to.
    """
    if reason != 0:
        return 0
    inst = np.int64(params[0])
    if ev["instrument"] != inst:
        return 0
    target = aux[0]
    if target != target:  # NaN: no opinion yet
        return 0
    for k in range(n_orders - 1, -1, -1):
        st = orders[k]["status"]
        if orders[k]["instrument"] == inst and (st == ST_IN_FLIGHT or st == ST_OPEN):
            return 0
    lot = params[1]
    diff = target - pos[inst]
    if lot > 0.0:
        diff = np.round(diff / lot) * lot
    no_quote = mkt[inst, M_BID] != mkt[inst, M_BID] and mkt[inst, M_ASK] != mkt[inst, M_ASK]
    if diff == 0.0 or no_quote:
        return 0
    return submit_market_nb(req, 0, inst, diff)


@dataclass(frozen=True)
class SignalStrategy:
    """A Python strategy: ``target(events) -> float64[n_events]`` target positions in units.

    The function must be causal: the value at event i may use events[0..i] only. The engine
    checks the shape and finiteness (NaN means "no opinion yet") and trades toward the target.
    """

    target: Callable[[np.ndarray], np.ndarray]
    instrument: int = 0
    lot_size: float = 1.0
    name: str = ""
    max_position: float = float("inf")  #: largest |target| allowed [units]; a larger one is an error

    def __post_init__(self) -> None:
        if not self.max_position > 0:  # NaN too
            raise ValueError(f"SignalStrategy.max_position must be > 0 (units), got {self.max_position!r}")

    def to_numba(self, events: np.ndarray) -> NumbaStrategy:
        name = self.name or getattr(self.target, "__name__", type(self.target).__name__)
        try:
            values = np.asarray(self.target(events), dtype=np.float64)
        except Exception as exc:
            raise RuntimeError(f"signal strategy {name!r} raised {type(exc).__name__}: {exc}") from exc
        if values.shape != (len(events),):
            raise ValueError(
                f"signal strategy {name!r} returned shape {values.shape}; it must return one "
                f"target per event, shape ({len(events)},)"
            )
        bad = np.flatnonzero(np.isinf(values))
        if len(bad):
            i = int(bad[0])
            raise ValueError(
                f"signal strategy {name!r} returned a non-finite target {float(values[i])!r} at event {i} "
                f"(ts_local={int(events['ts_local'][i])}); return NaN for 'no opinion' or a finite size"
            )
        over = np.flatnonzero(np.abs(values) > self.max_position)  # NaN ("no opinion") never is
        if len(over):
            i = int(over[0])
            raise ValueError(
                f"signal strategy {name!r} asked for a target of {float(values[i])!r} units at event "
                f"{i} (ts_local={int(events['ts_local'][i])}), beyond max_position={self.max_position!r}; "
                "clip the signal or raise max_position"
            )
        return NumbaStrategy(
            target_position_nb, params=np.array([self.instrument, self.lot_size]), aux=values,
            name=name, max_requests=1,
        )


def discover() -> dict[str, Any]:
    """Strategy plugins registered under the ``tickguard.strategies`` entry-point group."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_strategy(name: str) -> Any:
    """Load a registered plugin by name (the entry point's object: usually a factory)."""
    found = discover()
    if name not in found:
        import difflib

        close = difflib.get_close_matches(name, list(found), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise KeyError(f"no strategy plugin named {name!r}{hint} (installed: {sorted(found)})")
    return found[name].load()
