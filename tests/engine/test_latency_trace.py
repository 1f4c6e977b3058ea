"""A replayed latency trace: the latency at ``now`` is the last one recorded at or before it (the
first one before the trace starts), for each action and direction; oracle: numpy's searchsorted."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tickguard.engine.latency import LAT_TRACE, latency_nb
from tickguard.engine.layout import L_ENTRY_MODE, L_NF, L_RESP_MODE


@given(ts=st.lists(st.integers(-10**6, 10**6), min_size=1, max_size=40),
       nows=st.lists(st.integers(-2 * 10**6, 2 * 10**6), min_size=1, max_size=20))
@settings(max_examples=300, deadline=None)
def test_trace_latency_is_the_last_recorded_at_or_before_now(ts, nows):
    trace_ts = np.sort(np.array(ts, dtype=np.int64))  # repeats allowed: the last of them counts
    trace_lat = np.arange(len(ts) * 6, dtype=np.float64).reshape(len(ts), 6) * 10.0 + 1.0
    lat = np.zeros((3, L_NF))
    lat[:, L_ENTRY_MODE] = LAT_TRACE
    lat[:, L_RESP_MODE] = LAT_TRACE
    for now in nows + ts:  # also exactly at recorded times
        k = max(int(np.searchsorted(trace_ts, now, side="right")) - 1, 0)
        for action in (1, 2, 3):
            for response in (False, True):
                want = int(trace_lat[k, (3 if response else 0) + action - 1])
                assert latency_nb(lat, trace_ts, trace_lat, action, response, now, 0.0, 0) == want
