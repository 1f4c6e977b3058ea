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

__all__ = ["prefetch"]

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
