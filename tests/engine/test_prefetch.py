"""The reader thread hands chunks over in order, hashes them in order, and passes errors on."""

from __future__ import annotations

import threading

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
