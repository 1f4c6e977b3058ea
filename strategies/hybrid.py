"""Rule overlay for signal strategies: learned signal proposes, visible rules dispose.

:class:`RuleFilter` wraps any target function (or :class:`SignalStrategy`) with an ordered list of
rules evaluated causally on one instrument's stream. At each row the first rule whose observed
value is strictly above its threshold (NaN never triggers) decides:

* ``"flat"``: target 0 (close the position and stay out), whatever the base target was (NaN too);
* ``"hold"``: repeat the overlay's own previous target for this instrument (NaN at the start),
  i.e. freeze the position the overlay had asked for.

Rule ids are positions in the rule list (as rows of a rulebook). Every row where a rule changed the
base target (NaN counts as a value) is recorded in :attr:`RuleFilter.decisions_`, a
:data:`DECISION_DTYPE` array: event index, ``ts_local``, rule id, action, observed value,
threshold, base and final target, and a reason string (up to 96 characters);
:meth:`RuleFilter.decisions_df` adds rule names. Rows of other instruments pass through untouched.

Built-in rules:

* :class:`MaxSpreadRule`: observed = spread of the last quote in ticks; threshold = ``max_ticks``.
* :class:`VolatilityQuantileRule`: observed = ``rv_{window}`` (see
  :mod:`tickguard.strategies.features`); threshold = its expanding ``quantile`` over rows 0..i
  (linear interpolation, as :func:`numpy.quantile`), defined once ``min_history`` finite values
  exist.

A custom rule is any object with ``name``, ``action`` and ``evaluate(stream) -> (observed,
threshold)`` (float64 arrays, one per stream row, each value using rows 0..i only) and
``reason(observed, threshold) -> str``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import pandas as pd

from tickguard.engine.strategy import SignalStrategy

from .features import l1_state, realized_vol, stream_index

__all__ = [
    "ACTIONS",
    "DECISION_DTYPE",
    "MaxSpreadRule",
    "Rule",
    "RuleFilter",
    "VolatilityQuantileRule",
    "hybrid",
]

ACTIONS = ("flat", "hold")

DECISION_DTYPE = np.dtype(
    [
        ("event_index", np.int64),  # position in the event array
        ("ts_local", np.int64),  # ns since the epoch, UTC
        ("rule", np.int32),  # index into the rule list
        ("action", np.int32),  # index into ACTIONS
        ("observed", np.float64),
        ("threshold", np.float64),
        ("base", np.float64),  # target proposed by the wrapped strategy [units]
        ("target", np.float64),  # target after the rule [units]
        ("reason", "U96"),
    ],
    align=True,
)


class Rule(Protocol):
    name: str
    action: str

    def evaluate(self, stream: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def reason(self, observed: float, threshold: float) -> str: ...


def _check_action(owner: str, action: str) -> None:
    if action not in ACTIONS:
        raise ValueError(f"{owner}.action must be one of {ACTIONS}, got {action!r}")


@dataclass(frozen=True)
class MaxSpreadRule:
    """Stand aside while the quoted spread exceeds ``max_ticks`` ticks of ``tick_size``."""

    max_ticks: float
    tick_size: float
    action: str = "flat"
    name: str = "max_spread"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.max_ticks) and self.max_ticks >= 0):
            raise ValueError(f"MaxSpreadRule.max_ticks must be finite and >= 0, got {self.max_ticks!r}")
        if not (np.isfinite(self.tick_size) and self.tick_size > 0):
            raise ValueError(f"MaxSpreadRule.tick_size must be the instrument's tick (> 0), "
                             f"got {self.tick_size!r}")
        _check_action("MaxSpreadRule", self.action)

    def evaluate(self, stream: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = l1_state(stream)
        ticks = np.round((s["ask_px"] - s["bid_px"]) / self.tick_size, 9)  # grid noise off
        return ticks, np.full(len(stream), float(self.max_ticks))

    def reason(self, observed: float, threshold: float) -> str:
        return f"spread {observed:g} ticks > {threshold:g}: {self.action}"


@dataclass(frozen=True)
class VolatilityQuantileRule:
    """Stand aside while realized volatility is above its own expanding ``quantile``."""

    window: int = 100
    quantile: float = 0.95
    min_history: int = 1000
    action: str = "flat"
    name: str = "vol_quantile"

    def __post_init__(self) -> None:
        if not isinstance(self.window, (int, np.integer)) or self.window < 1:
            raise ValueError(f"VolatilityQuantileRule.window must be an int >= 1, got {self.window!r}")
        if not 0 < self.quantile < 1:
            raise ValueError(f"VolatilityQuantileRule.quantile must be in (0, 1), got {self.quantile!r}")
        if not isinstance(self.min_history, (int, np.integer)) or self.min_history < 1:
            raise ValueError(f"VolatilityQuantileRule.min_history must be an int >= 1, "
                             f"got {self.min_history!r}")
        _check_action("VolatilityQuantileRule", self.action)

    def evaluate(self, stream: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rv = realized_vol(stream, self.window)
        thr = pd.Series(rv).expanding(min_periods=self.min_history).quantile(self.quantile)
        return rv, thr.to_numpy(dtype=np.float64)

    def reason(self, observed: float, threshold: float) -> str:
        return f"rv_{self.window} {observed:.3g} > q{self.quantile:g} {threshold:.3g}: {self.action}"


@dataclass
class RuleFilter:
    """``RuleFilter(base, rules)(events) -> float64[n_events]``; see the module docstring."""

    base: Callable[[np.ndarray], np.ndarray] | SignalStrategy
    rules: Sequence[Any]
    instrument: int = 0
    name: str = ""
    decisions_: np.ndarray = field(default_factory=lambda: np.zeros(0, DECISION_DTYPE), init=False,
                                   repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.base, SignalStrategy):
            self.instrument = self.base.instrument
            self.name = self.name or f"hybrid({self.base.name})"
            self.base = self.base.target
        if not callable(self.base):
            raise TypeError(f"base must be a SignalStrategy or a target function, "
                            f"got {type(self.base).__name__}")
        self.rules = list(self.rules)
        for k, rule in enumerate(self.rules):
            missing = [a for a in ("name", "action", "evaluate", "reason") if not hasattr(rule, a)]
            if missing:
                raise TypeError(f"rules[{k}] ({type(rule).__name__}) lacks {missing}; "
                                "see tickguard.strategies.hybrid.Rule")
            _check_action(f"rules[{k}]", rule.action)
        self.name = self.name or "hybrid"

    def __call__(self, events: np.ndarray) -> np.ndarray:
        base_all = np.asarray(self.base(events), dtype=np.float64)
        if base_all.shape != (len(events),):
            raise ValueError(f"base target has shape {base_all.shape}, expected ({len(events)},)")
        idx = stream_index(events, self.instrument)
        stream, base = events[idx], base_all[idx]
        fired = np.full(len(idx), -1, dtype=np.int64)  # first triggered rule per row
        obs = np.full(len(idx), np.nan)
        thr = np.full(len(idx), np.nan)
        for k, rule in enumerate(self.rules):
            o, t = (np.asarray(a, dtype=np.float64) for a in rule.evaluate(stream))
            with np.errstate(invalid="ignore"):
                hit = (fired < 0) & (o > t)
            fired[hit], obs[hit], thr[hit] = k, o[hit], t[hit]
        actions = np.array([ACTIONS.index(r.action) for r in self.rules] + [-1])[fired]
        out = base.copy()
        out[actions == 0] = 0.0
        held = actions == 1
        if held.any():  # a held row repeats the last row that was not held
            src = np.maximum.accumulate(np.where(held, -1, np.arange(len(idx))))
            out = np.where(src >= 0, out[np.maximum(src, 0)], np.nan)
        changed = (fired >= 0) & ~((out == base) | (np.isnan(out) & np.isnan(base)))
        rows = np.flatnonzero(changed)
        rec = np.zeros(len(rows), dtype=DECISION_DTYPE)
        rec["event_index"], rec["ts_local"] = idx[rows], stream["ts_local"][rows]
        rec["rule"], rec["action"] = fired[rows], actions[rows]
        rec["observed"], rec["threshold"] = obs[rows], thr[rows]
        rec["base"], rec["target"] = base[rows], out[rows]
        rec["reason"] = [self.rules[r].reason(o, t) for r, o, t in zip(fired[rows], obs[rows], thr[rows])]
        self.decisions_ = rec
        result = base_all.copy()
        result[idx] = out
        return result

    def decisions_df(self) -> pd.DataFrame:
        """The decision records of the latest call, with ``rule_name`` and ``action_name``."""
        df = pd.DataFrame(self.decisions_)
        df["rule_name"] = [self.rules[r].name for r in self.decisions_["rule"]]
        df["action_name"] = [ACTIONS[a] for a in self.decisions_["action"]]
        return df


def hybrid(base: SignalStrategy | None = None, rules: Sequence[Any] = (), *,
           max_spread_ticks: float | None = None, tick_size: float | None = None,
           vol_window: int | None = 100, vol_quantile: float = 0.95, vol_min_history: int = 1000,
           action: str = "flat", name: str = "") -> SignalStrategy:
    """Wrap ``base`` (default: :func:`~tickguard.strategies.ml.svm_trend` with its defaults) with
    ``rules``, then a :class:`MaxSpreadRule` when ``max_spread_ticks`` is given (needs
    ``tick_size``), then a :class:`VolatilityQuantileRule` unless ``vol_window=None``.
    ``strategy.target`` is the :class:`RuleFilter`."""
    if base is None:
        from .ml import svm_trend

        base = svm_trend()
    if not isinstance(base, SignalStrategy):
        raise TypeError(f"hybrid: base must be a SignalStrategy, got {type(base).__name__}; "
                        "build one with e.g. tickguard.strategies.ml.svm_trend()")
    all_rules = list(rules)
    if max_spread_ticks is not None:
        if tick_size is None:
            raise ValueError("hybrid: max_spread_ticks needs tick_size= (the instrument's tick, price units)")
        all_rules.append(MaxSpreadRule(max_spread_ticks, tick_size, action))
    if vol_window is not None:
        all_rules.append(VolatilityQuantileRule(vol_window, vol_quantile, vol_min_history, action))
    if not all_rules:
        raise ValueError("hybrid: no rule given (vol_window=None and no other); pass rules=, "
                         "max_spread_ticks= or vol_window=")
    flt = RuleFilter(base, all_rules, name=name)
    return SignalStrategy(target=flt, instrument=base.instrument, lot_size=base.lot_size, name=flt.name)
