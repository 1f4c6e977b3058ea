"""The rulebook inside the event loop: the risk module the engine compiles in, and its front door.

This module *is* a risk module in the sense of :mod:`tickguard.engine.gate`: the code generator
imports it and the loop calls its four hooks (re-exported from :mod:`.pretrade` and
:mod:`.killswitch`). :class:`RiskGate` carries the compiled rulebook and allocates the state::

    from tickguard.risk import RiskGate
    result = tickguard.engine.run(events, strategy, risk=RiskGate.load("rulebook.toml", instruments))
    result.risk_events_df()   # every denial and transition, with the rule id and a sentence
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import layout as L
from .killswitch import (
    monitor_activity_nb, monitor_event_nb, monitor_sample_nb, new_risk_state, ring_overflows,
)
from .pretrade import pretrade_nb
from .rulebook import Rulebook, load_rulebook

__all__ = [
    "DEFAULT_RULEBOOK", "HOOKS_ALLOCATE", "RiskGate", "monitor_activity_nb", "monitor_event_nb", "monitor_sample_nb",
    "pretrade_nb",
]

# the four hooks are internal_njit kernels, which numba refuses any allocation: the loop calls
# them without reference counting (engine/gate.py)
HOOKS_ALLOCATE = False
DEFAULT_RULEBOOK = Path(__file__).resolve().parent / "rulebooks" / "default.toml"
_PSEUDO_NAMES = {L.PSEUDO_HALTED: "kill-switch:halted", L.PSEUDO_REDUCING: "kill-switch:reducing",
                 L.PSEUDO_EXTERNAL: "kill-switch:external", L.PSEUDO_RESET: "kill-switch:reset"}


@dataclass(frozen=True)
class RiskGate:
    """A compiled rulebook, ready for ``Backtest(..., risk=RiskGate(...))``."""

    rulebook: Rulebook
    source: str = ""
    every_event: bool = False  # show monitor_event_nb every event, not only wake-ups (tests)
    # the pre-trade gate and the activity monitor written out for this rulebook's shape
    # (risk/gate_codegen.py): the same answers, less work per order, but each new shape compiles
    # the loop again (seconds)
    specialize: bool = False

    @property
    def module(self) -> str:
        """The risk hooks the loop compiles in: this module, or the gate generated for the shape."""
        if not self.specialize:
            return __name__
        from .gate_codegen import gate_module

        return gate_module(self.rulebook.rules).__name__

    @classmethod
    def load(cls, path_or_text: str | Path = DEFAULT_RULEBOOK, instruments: Any = None,
             specialize: bool = False) -> "RiskGate":
        """Compile a TOML rulebook (a path or the text itself); symbols resolve via ``instruments``;
        ``specialize``: the pre-trade gate written out for its shape (see the field)."""
        return cls(load_rulebook(path_or_text, instruments), source=str(path_or_text)[:200],
                   specialize=specialize)

    @property
    def rules(self) -> np.ndarray:
        return self.rulebook.rules

    def new_state(self, n_instruments: int) -> tuple[np.ndarray, np.ndarray]:
        state = new_risk_state(self.rulebook, n_instruments, self.every_event)
        return state.rstate, state.ks

    def ring_overflows(self, rstate: np.ndarray) -> dict[str, int]:
        """After a run on ``rstate``: {rule id: entries still inside its window that its full
        ring dropped} for the rules that dropped any (their windows were judged short)."""
        counts = ring_overflows(self.rulebook.rules, rstate)
        return {self.rulebook.ids[r]: int(c) for r, c in enumerate(counts) if c > 0}

    def rule_name(self, rule: int) -> str:
        """The rule id of a risk record's ``rule`` (row index, or a negative kill-switch code)."""
        if rule < 0:
            return _PSEUDO_NAMES.get(rule, f"kill-switch:{rule}")
        return self.rulebook.ids[rule]

    def explain(self, rule: int, observed: float, threshold: float) -> str:
        return self.rulebook.explain(rule, observed, threshold)

    def describe(self) -> dict[str, Any]:
        """JSON-able echo (config echo in summaries and the result hash)."""
        return self.rulebook.to_dict()
