"""The numba row packer of the Parquet reader equals its plain-numpy twin, byte for byte."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tickguard.data.parquet_io import _columns_to_events_py, pack_events_nb
from tickguard.data.schema import EVENT_DTYPE, EVENT_FIELDS


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 300), st.integers(0, 2**32 - 1))
def test_pack_matches_numpy_assignment(n, seed):
    rng = np.random.default_rng(seed)
    cols = []
    for name in EVENT_FIELDS:
        dt = EVENT_DTYPE[name]
        if dt.kind == "f":
            c = rng.normal(size=n) * 1e3
            c[rng.random(n) < 0.2] = np.nan  # missing values stay NaN
        else:
            info = np.iinfo(dt)
            c = rng.integers(info.min, info.max, size=n, endpoint=True, dtype=dt)
        cols.append(np.ascontiguousarray(c, dtype=dt))
    out = np.empty(n, dtype=EVENT_DTYPE)
    pack_events_nb(out, *cols)
    assert out.tobytes() == _columns_to_events_py(cols).tobytes()
