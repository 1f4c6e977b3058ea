"""Order entry and response latency, per action (submit / cancel / modify).

Each direction of each action has its own model: a constant, a seeded lognormal (median and
sigma; draws are counter-based, see :mod:`rng`, so a run is reproducible), or a replayed trace
(a step function of time: the latency recorded at or before ``now``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import types as _t

from .internal import code_offset, internal_njit
from .layout import (
    L_ENTRY_A, L_ENTRY_MODE, L_RESP_A, L_RESP_MODE, LAT_CONSTANT, LAT_LOGNORMAL, LAT_TRACE,
)
from .minmax import max2, min2
from .nbtypes import F64_2D, I64_1D
from .rng import normal_nb

__all__ = ["LAT_CONSTANT", "LAT_LOGNORMAL", "LAT_TRACE", "latency_nb"]  # the modes re-exported from layout


@internal_njit(_t.int64(F64_2D, I64_1D, F64_2D, _t.int64, _t.boolean, _t.int64, _t.float64,
                        _t.int64))  # explicit: called with many literal codes (see nbtypes.py)
def latency_nb(lat, trace_ts, trace_lat, action, response, now, seed, counter):
    """Latency in ns for ``action`` (1 submit, 2 cancel, 3 modify); ``response`` picks the direction.

    ``lat`` is float64[3, L_NF]; ``trace_ts`` int64[T] sorted and ``trace_lat`` float64[T, 6] with
    columns (entry, response) x (submit, cancel, modify) hold a recorded latency trace.
    """
    code_offset(6)  # its slot (engine/internal.py)
    row = action - 1
    base = L_RESP_MODE if response else L_ENTRY_MODE
    mode = np.int64(lat[row, base])
    a = lat[row, base + 1]
    if mode == LAT_CONSTANT:
        return np.int64(a)
    if mode == LAT_LOGNORMAL:
        sigma = lat[row, base + 2]
        z = normal_nb(seed, counter, row * 2 + (1 if response else 0))
        return np.int64(a * math.exp(sigma * z))
    # trace: last recorded latency at or before now (the first one before the trace starts).
    # Bisection by hand: numba's np.searchsorted added ~0.9 s to every cold compile of the engine
    # (tested against np.searchsorted in tests/engine/test_latency_trace.py).
    lo, hi = 0, trace_ts.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if trace_ts[mid] <= now:
            lo = mid + 1
        else:
            hi = mid
    k = max2(lo - 1, 0)
    return np.int64(trace_lat[k, (3 if response else 0) + row])
