"""The rows the reader marks for the kill switch's monitor (engine/gate.py ``marked_rows_nb``).

Oracle: the same selection written with numpy masks, on random rows of every kind, with NaN,
crossed, locked and ordinary touches, and touches left on rows that are not quotes (not marked).
"""

from __future__ import annotations

import numpy as np

from tickguard.data.schema import KIND_CONTROL, KIND_DEPTH, KIND_QUOTE, KIND_TRADE, empty_events
from tickguard.engine.gate import marked_rows_nb


def test_marks_match_numpy_masks():
    rng = np.random.default_rng(5)
    for n in (0, 1, 2, 1000):
        ev = empty_events(n)
        ev["kind"] = rng.choice([KIND_QUOTE, KIND_TRADE, KIND_DEPTH, KIND_CONTROL,
                                 KIND_QUOTE | KIND_TRADE], n)
        ev["bid_px"] = rng.choice([99.0, 100.0, 101.0, np.nan], n)
        ev["ask_px"] = rng.choice([100.0, 101.0, np.nan], n)
        quote = (ev["kind"] & KIND_QUOTE) != 0
        want = np.flatnonzero(((ev["kind"] & KIND_CONTROL) != 0) | (quote & (ev["bid_px"] >= ev["ask_px"])))
        got = marked_rows_nb(ev)
        assert got.dtype == np.int64 and np.array_equal(got, want), n
    # a hand-made case: an ordinary quote, a locked one, a crossed one, a trade row carrying a
    # crossed touch (not a quote: the loop's view ignores its touch), a CONTROL row
    ev = empty_events(5)
    ev["kind"] = [KIND_QUOTE, KIND_QUOTE, KIND_QUOTE, KIND_TRADE, KIND_CONTROL]
    ev["bid_px"] = [99.0, 100.0, 101.0, 101.0, np.nan]
    ev["ask_px"] = [100.0, 100.0, 100.0, 100.0, np.nan]
    assert marked_rows_nb(ev).tolist() == [1, 2, 4]
