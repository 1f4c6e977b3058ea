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
    """Yield ``items`` in order, produced by a background thread at most ``depth`` ahead.

    ``on_item`` runs in that thread on each item, in order, before it is handed over (the engine
    hashes its input there, beside the loop instead of before it)."""
    if depth < 1:
        raise ValueError(f"prefetch depth must be >= 1, got {depth!r}")
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if on_item is not None:
                    on_item(item)
                while not stop.is_set():
                    try:
                        q.put((True, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
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
            yield item
    finally:
        stop.set()  # the consumer stopped early (or finished): let the reader exit
        worker.join(timeout=5.0)
