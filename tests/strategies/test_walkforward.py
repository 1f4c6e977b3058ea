"""Walk-forward splits: purge and embargo for random configurations, and scikit-learn's
TimeSeriesSplit (an independent implementation) as the oracle where the two layouts coincide."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import TimeSeriesSplit

from tickguard.strategies.walkforward import WalkForward

configs = st.builds(
    WalkForward,
    train_size=st.integers(1, 400),
    test_size=st.integers(1, 300),
    horizon=st.integers(0, 60),
    embargo=st.integers(0, 30),
    expanding=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(wf=configs, n=st.integers(0, 3000))
def test_no_training_label_reaches_the_test_block(wf, n):
    splits = list(wf.split(n))
    assert len(splits) == wf.get_n_splits(n)
    covered = []
    for train, test in splits:
        assert len(train) > 0 and len(test) > 0
        # the horizon [t, t + h] of every training label ends before the test block, with the
        # embargo in between: t + h + embargo < first test row
        assert set(range(int(train[-1]), int(train[-1]) + wf.horizon + 1)).isdisjoint(test)
        assert int(train.max()) + wf.horizon + wf.embargo < int(test.min())
        assert np.array_equal(train, np.arange(train[0], train[-1] + 1))  # contiguous
        assert np.array_equal(test, np.arange(test[0], test[-1] + 1))
        assert train[0] == 0 if wf.expanding else len(train) == wf.train_size
        assert int(test.max()) < n
        covered.extend(test.tolist())
    # the test blocks tile [first_test, n) in order, each at most test_size long
    assert covered == list(range(wf.first_test, max(n, wf.first_test)))
    assert all(len(t) <= wf.test_size for _, t in splits)


@settings(max_examples=100, deadline=None)
@given(wf=configs, n=st.integers(0, 2000), cut=st.integers(0, 2000))
def test_splits_of_a_prefix_are_the_splits_cut_at_the_prefix(wf, n, cut):
    k = min(n, cut)
    full = [(tr, te[te < k]) for tr, te in wf.split(n)]
    full = [(tr, te) for tr, te in full if len(te)]
    part = list(wf.split(k))
    assert len(part) == len(full)
    for (a_tr, a_te), (b_tr, b_te) in zip(part, full):
        assert np.array_equal(a_tr, b_tr) and np.array_equal(a_te, b_te)


@settings(max_examples=150, deadline=None)
@given(wf=configs, m=st.integers(2, 8))  # TimeSeriesSplit needs n_splits >= 2
def test_matches_sklearn_time_series_split_when_aligned(wf, m):
    n = wf.first_test + m * wf.test_size  # TimeSeriesSplit anchors at the end: align the two
    oracle = TimeSeriesSplit(n_splits=m, test_size=wf.test_size, gap=wf.horizon + wf.embargo,
                             max_train_size=None if wf.expanding else wf.train_size)
    ours = list(wf.split(np.zeros(n)))
    theirs = list(oracle.split(np.zeros((n, 1))))
    assert len(ours) == len(theirs) == m
    for (a_tr, a_te), (b_tr, b_te) in zip(ours, theirs):
        np.testing.assert_array_equal(a_tr, b_tr)
        np.testing.assert_array_equal(a_te, b_te)


def test_hand_worked_layout():
    # train 5, test 3, horizon 2, embargo 1: first test row 5 + 2 + 1 = 8; block [8, 11) trains on
    # [0, 5): its last label (row 4) looks at row 6, then row 7 is the embargo
    wf = WalkForward(5, 3, 2, embargo=1)
    got = [(tr.tolist(), te.tolist()) for tr, te in wf.split(13)]
    assert got == [([0, 1, 2, 3, 4], [8, 9, 10]), ([3, 4, 5, 6, 7], [11, 12])]
    grow = WalkForward(5, 3, 2, embargo=1, expanding=True)
    assert [tr.tolist() for tr, _ in grow.split(13)] == [[0, 1, 2, 3, 4], list(range(8))]
    assert list(wf.split(8)) == []


@pytest.mark.parametrize("kwargs, match", [
    (dict(train_size=0, test_size=1, horizon=1), "train_size"),
    (dict(train_size=5, test_size=0, horizon=1), "test_size"),
    (dict(train_size=5, test_size=1, horizon=-1), "horizon"),
    (dict(train_size=5, test_size=1, horizon=1, embargo=-2), "embargo"),
    (dict(train_size=5.0, test_size=1, horizon=1), "train_size"),
])
def test_bad_sizes_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WalkForward(**kwargs)
    with pytest.raises(ValueError, match="row count"):
        list(WalkForward(5, 1, 1).split(-3))
