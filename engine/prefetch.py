"""Read the next chunk while the loop works on this one.

Decoding Parquet (pyarrow) and the compiled loop (``nogil=True``) both release the GIL, so a
reader thread one or two chunks ahead turns "read, then run" into "read while running": the
streamed throughput becomes that of the slower of the two instead of their harmonic sum.
Exceptions raised by the reader reach the consumer at the chunk where they happened.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

__all__ = ["BufferPool", "prefetch"]

T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterable[T], depth: int = 2, on_item: Callable[[T], None] | None = None) -> Iterator[T]:
    """Yield ``items`` in order, produced by a background thread at most ``depth`` ahead: made
    and not yet taken, counting the one being made (the thread starts on the next one only once
    the consumer has taken one, so ``depth`` bounds the memory held ahead, not ``depth + 1``).

    ``on_item`` runs in that thread on each item, in order, before it is handed over (the engine
    hashes its input there, beside the loop instead of before it)."""
    if depth < 1:
        raise ValueError(f"prefetch depth must be >= 1, got {depth!r}")
    q: queue.Queue = queue.Queue()  # never holds more than depth items: the slots bound it
    slots = threading.Semaphore(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            it = iter(items)
            while True:
                while not slots.acquire(timeout=0.1):  # wait for the consumer to take one
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                try:
                    item = next(it)
                except StopIteration:
                    break
                if on_item is not None:
                    on_item(item)
                q.put((True, item))
            q.put((True, _DONE))
        except BaseException as exc:  # handed to the consumer, raised there
            q.put((False, exc))

    worker = threading.Thread(target=produce, name="tickguard-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            ok, item = q.get()
            if not ok:
                raise item
            if item is _DONE:
                return
            slots.release()  # taken: the reader may start on the next one
            yield item
    finally:
        stop.set()  # the consumer stopped early (or finished): let the reader exit
        worker.join(timeout=5.0)


class BufferPool:
    """Reusable 1-D arrays of one dtype for streamed chunks: the reader takes one per chunk, the
    loop gives it back once nothing reads the chunk any more.

    A fresh array per chunk (18 MiB at the default 2^18 rows) went back to the operating system
    when freed and was faulted in again, 4 KiB at a time, by the next: reusing them cut ~0.45 s
    of kernel time and ~45 000 page faults per 10^8 streamed events on this VM
    (benchmarks/PERFORMANCE.md, "4 December, afternoon"). The pool never blocks: with none free
    it makes one, so it holds at most as many as were ever in use at once (the prefetch depth,
    the chunk in the loop and the one before it)."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = np.dtype(dtype)
        self._owned: dict[int, np.ndarray] = {}  # id -> every array the pool made
        self._free: list[np.ndarray] = []
        self._lock = threading.Lock()

    @property
    def made(self) -> int:
        """Arrays allocated so far (every other take was a reuse)."""
        return len(self._owned)

    def take(self, n: int) -> np.ndarray:
        """A C-contiguous array of ``n`` rows (uninitialized), a prefix of a pooled one."""
        with self._lock:
            base = self._free.pop() if self._free else None
            if base is None or len(base) < n:
                if base is not None:  # too short: forgotten, a longer one takes its place
                    del self._owned[id(base)]
                base = np.empty(n, dtype=self.dtype)
                self._owned[id(base)] = base
        return base[:n]

    def give(self, chunk: np.ndarray) -> None:
        """Hand back an array ``take`` returned, or a view of one: the caller reads it no more.
        Anything else (an array the pool did not make) is left alone."""
        base = chunk if chunk.base is None else chunk.base
        with self._lock:
            if self._owned.get(id(base)) is base and not any(f is base for f in self._free):
                self._free.append(base)
