"""The risk-gate hook: every request the strategy sends passes through it before it leaves.

A gate is a jitted function ``gate(req, now, mkt, pos, orders, oid, gate_cfg, gate_state) -> int``
returning 0 to let the request go, or a rule number (> 0) to deny it; on a denial it writes the
observed value and the threshold into ``gate_state[0]`` and ``gate_state[1]`` for the risk record.
The risk layer (``tickguard.risk``) compiles a rulebook into ``gate_cfg`` and supplies its own gate
through the same signature; this module holds the pass-through gate.
"""

from __future__ import annotations

from numba import njit

__all__ = ["pass_through_gate_nb"]


@njit(cache=True)
def pass_through_gate_nb(req, now, mkt, pos, orders, oid, gate_cfg, gate_state):
    """Allow everything."""
    return 0
