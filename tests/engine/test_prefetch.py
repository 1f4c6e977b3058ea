"""The reader thread hands chunks over in order, hashes them in order, and passes errors on."""

from __future__ import annotations

import threading
import time

import pytest

from tickguard.engine.prefetch import prefetch


def test_order_and_on_item_run_in_the_reader_thread():
    seen, threads = [], set()

    def note(x):
        seen.append(x)
        threads.add(threading.current_thread().name)

    assert list(prefetch(range(50), depth=3, on_item=note)) == list(range(50))
    assert seen == list(range(50)) and threads == {"tickguard-prefetch"}


def test_reader_error_reaches_the_consumer_after_the_good_items():
    def items():
        yield 1
        yield 2
        raise OSError("disk gone at chunk 3")

    got = []
    with pytest.raises(OSError, match="disk gone at chunk 3"):
        for x in prefetch(items()):
            got.append(x)
    assert got == [1, 2]


def test_consumer_stopping_early_stops_the_reader():
    produced = []

    def items():
        for k in range(10_000):
            produced.append(k)
            yield k

    gen = prefetch(items(), depth=2)
    assert next(gen) == 0
    gen.close()  # the reader must not run to the end of the stream
    assert len(produced) < 10


def test_bad_depth():
    with pytest.raises(ValueError, match="depth must be >= 1"):
        list(prefetch([1], depth=0))


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_the_reader_holds_at_most_depth_items_ahead_counting_the_one_it_makes(depth):
    # the streaming pipeline's memory: each item ahead is a chunk (or a decoded batch) of ~19 MB
    made = []
    taken = []

    def items():
        for k in range(20):
            made.append(k)
            yield k

    gen = prefetch(items(), depth=depth)
    for _ in range(5):
        taken.append(next(gen))
        # an item counts as made once the generator started on it; the reader runs that far
        # ahead (waited for: a loaded machine may schedule it late) and no further
        t0 = time.monotonic()
        while len(made) - len(taken) < depth and time.monotonic() - t0 < 10.0:
            time.sleep(0.005)
        time.sleep(0.1)  # free to go further, it would have by now
        assert len(made) - len(taken) == depth, (made, taken)
    gen.close()


def test_buffer_pool_reuses_what_it_made_and_only_that():
    import numpy as np

    from tickguard.engine.prefetch import BufferPool

    pool = BufferPool(np.int64)
    a = pool.take(10)
    assert a.shape == (10,) and a.dtype == np.int64 and a.flags.c_contiguous and pool.made == 1
    pool.give(a[3:7])  # a view of a pooled array hands back the whole array
    b = pool.take(8)
    assert b.base is a.base and pool.made == 1
    pool.give(b)
    pool.give(b)  # twice: listed once, so two takes never share it
    c, d = pool.take(4), pool.take(4)
    assert c.base is a.base and d.base is not a.base and pool.made == 2
    foreign = np.zeros(10, dtype=np.int64)
    pool.give(foreign)  # the caller's own array: never handed out, never written
    pool.give(d)
    e = pool.take(20)  # the free one is too short: a longer one replaces it, the pool still holds two
    assert e.base is not foreign and e.base is not d.base and len(e) == 20 and pool.made == 2
    assert not foreign.any()
