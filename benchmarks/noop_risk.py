"""A risk module whose four hooks do nothing, for the engine benchmark.

Compiled under its own name, the event loop carries the kill switch's code: the per-event wake-up
and kill checks, the hook calls per order. Only the pass-through module (tickguard.engine.gate)
drops that code. Timing this loop beside the pass-through loop shows what carrying the kill
switch costs before any rule is evaluated.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tickguard.engine.gate import (
    HOOKS_ALLOCATE, monitor_activity_nb, monitor_event_nb, monitor_sample_nb, pretrade_nb,
)
from tickguard.risk import RiskGate
from tickguard.risk.layout import KS_WAKE_ALL, KS_WAKE_AT, KS_WAKE_CROSSED, KS_WAKE_GAP

__all__ = ["HOOKS_ALLOCATE", "NoOpHooksGate", "monitor_activity_nb", "monitor_event_nb", "monitor_sample_nb",
           "pretrade_nb"]


@dataclasses.dataclass(frozen=True)
class NoOpHooksGate(RiskGate):
    """A rulebook's rows and state, run through this module's hooks, which do nothing.

    The wake-up conditions are switched off. The rulebook's own conditions would call the no-op
    event hook on every event, and it never moves them on.
    """

    module = __name__

    def new_state(self, n_instruments: int) -> tuple[np.ndarray, np.ndarray]:
        rstate, ks = super().new_state(n_instruments)
        ks[[KS_WAKE_AT, KS_WAKE_GAP]] = np.inf
        ks[[KS_WAKE_CROSSED, KS_WAKE_ALL]] = 0.0
        return rstate, ks
