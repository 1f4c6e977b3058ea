"""Streaming k-way merge of time-sorted event streams into one ``ts_local``-ordered stream.

Why: a backtest replays several feeds (instruments, venues, days) as one sequence in local receive
time. Sources can be larger than memory, so the merge streams: it keeps one buffered chunk per
source and never sorts what it has not yet seen.

Order is total and deterministic: ``(ts_local, source index, row index within the source)``, so
equal timestamps keep source order and, within a source, file order (a stable merge).

Streaming rule: every future row of an unexhausted source ``s`` has a key greater than the key of
the last row buffered from ``s`` (sources are sorted, and the row index grows). So everything whose
key is <= the smallest "last buffered key" across unexhausted sources can be emitted now. Each
round empties at least the buffer that defines that bound, which is then refilled — memory stays
at about K x (source chunk size) rows.

The merge of the emitted prefixes is one numba kernel (:func:`kway_merge_nb`, a binary heap of K
cursors, O(N log K)); :func:`kway_merge_py` is an independent ``heapq`` twin for tests.

A source that is not sorted by ``ts_local`` is an error naming the source, row and values — it is
never sorted silently, because a mis-ordered feed usually means a wrong file or a clock problem.
"""

from __future__ import annotations

import heapq
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
from numba import njit

from .errors import DataError, Finding
from .npy_io import instruments_sidecar, iter_npy, npy_instruments, read_npy
from .parquet_io import (
    DEFAULT_CHUNK_ROWS,
    ParquetEventWriter,
    iter_parquet,
    parquet_instruments,
    parquet_num_rows,
)
from .schema import EVENT_DTYPE, InstrumentTable

__all__ = [
    "kway_merge_nb",
    "kway_merge_py",
    "merge_arrays",
    "merge_files",
    "merge_streams",
]


# --- kernel ---------------------------------------------------------------------------------
def _kway_merge(keys: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Merge K sorted runs ``keys[offsets[s]:offsets[s+1]]``; return the permutation of indices.

    Ties go to the lower run index, then to the earlier row within a run. A binary min-heap holds
    one cursor per non-empty run, ordered by (key at cursor, run index).
    """
    k = len(offsets) - 1
    n = offsets[k] - offsets[0] if k > 0 else 0
    out = np.empty(n, dtype=np.int64)
    heap = np.empty(max(k, 1), dtype=np.int64)  # run indices
    cur = offsets[:-1].copy() if k > 0 else np.empty(0, dtype=np.int64)
    size = 0
    for s in range(k):  # push runs in index order, sifting up
        if offsets[s] < offsets[s + 1]:
            heap[size] = s
            i = size
            size += 1
            while i > 0:
                p = (i - 1) // 2
                a, b = heap[i], heap[p]
                if keys[cur[a]] < keys[cur[b]] or (keys[cur[a]] == keys[cur[b]] and a < b):
                    heap[i], heap[p] = b, a
                    i = p
                else:
                    break
    m = 0
    while size > 0:
        s = heap[0]
        out[m] = cur[s]
        m += 1
        cur[s] += 1
        if cur[s] == offsets[s + 1]:  # run exhausted: move the last heap item to the root
            size -= 1
            heap[0] = heap[size]
        i = 0  # sift the root down
        while True:
            left = 2 * i + 1
            if left >= size:
                break
            best = left
            right = left + 1
            if right < size:
                r, lf = heap[right], heap[left]
                if keys[cur[r]] < keys[cur[lf]] or (keys[cur[r]] == keys[cur[lf]] and r < lf):
                    best = right
            a, b = heap[best], heap[i]
            if keys[cur[a]] < keys[cur[b]] or (keys[cur[a]] == keys[cur[b]] and a < b):
                heap[i], heap[best] = a, b
                i = best
            else:
                break
    return out


kway_merge_nb = njit(cache=True)(_kway_merge)


def kway_merge_py(keys: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Pure-Python twin of :func:`kway_merge_nb` built on :mod:`heapq` (for tests)."""
    heap = [(int(keys[offsets[s]]), s, int(offsets[s])) for s in range(len(offsets) - 1)
            if offsets[s] < offsets[s + 1]]
    heapq.heapify(heap)
    out = []
    while heap:
        _, s, i = heapq.heappop(heap)
        out.append(i)
        if i + 1 < offsets[s + 1]:
            heapq.heappush(heap, (int(keys[i + 1]), s, i + 1))
    return np.array(out, dtype=np.int64)


# --- validation -----------------------------------------------------------------------------
def _check_chunk(chunk: object, s: int, name: str, first_row: int, prev_ts: int | None) -> np.ndarray:
    """Check dtype and ``ts_local`` order of one chunk; ``first_row`` is its 0-based start row."""
    if not isinstance(chunk, np.ndarray) or chunk.dtype != EVENT_DTYPE:
        got = getattr(chunk, "dtype", type(chunk).__name__)
        raise DataError(Finding("wrong_dtype", name, None, None, str(got),
                                f"source {s} yielded a chunk that is not an EVENT_DTYPE array",
                                "yield numpy arrays of tickguard.data.EVENT_DTYPE"))
    ts = chunk["ts_local"]
    if len(ts):
        if prev_ts is not None and ts[0] < prev_ts:
            _raise_unsorted(s, name, first_row, prev_ts, int(ts[0]))
        bad = np.flatnonzero(ts[1:] < ts[:-1])
        if len(bad):
            j = int(bad[0])
            _raise_unsorted(s, name, first_row + j + 1, int(ts[j]), int(ts[j + 1]))
    return chunk


def _raise_unsorted(s: int, name: str, row0: int, prev: int, cur: int) -> None:
    raise DataError(Finding(
        "unsorted_source", name, row0 + 1, "ts_local", (prev, cur),
        f"source {s} is not sorted by ts_local: row {row0 + 1} has ts_local {cur} after {prev}",
        "sort the source by ts_local first (stable, e.g. "
        "events[np.argsort(events['ts_local'], kind='stable')]) or check its clock/latency fields"))


def _merge_runs(runs: list[np.ndarray]) -> np.ndarray:
    """Merge already-validated sorted arrays (in source order) with the kernel."""
    runs = [r for r in runs if len(r)]
    if not runs:
        return np.empty(0, dtype=EVENT_DTYPE)
    if len(runs) == 1:
        return np.ascontiguousarray(runs[0])
    offsets = np.zeros(len(runs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(r) for r in runs])
    allrows = np.concatenate(runs)
    order = kway_merge_nb(np.ascontiguousarray(allrows["ts_local"]), offsets)
    return allrows[order]


# --- public API -----------------------------------------------------------------------------
def merge_arrays(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Merge in-memory event arrays, each sorted by ``ts_local``, into one new array."""
    runs = [_check_chunk(a, s, f"<array {s}>", 0, None) for s, a in enumerate(arrays)]
    return _merge_runs(runs)


def merge_streams(
    sources: Sequence[Iterable[np.ndarray]],
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    *,
    names: Sequence[str] | None = None,
) -> Iterator[np.ndarray]:
    """Merge K streams of event chunks (each sorted by ``ts_local``); yield chunks of <= ``chunk_rows``.

    ``names`` (optional, one per source) label sources in error messages, e.g. file paths.
    """
    if chunk_rows <= 0:
        raise ValueError(f"chunk_rows must be > 0, got {chunk_rows!r}")
    k = len(sources)
    labels = list(names) if names is not None else [f"<source {s}>" for s in range(k)]
    if len(labels) != k:
        raise ValueError(f"names has {len(labels)} entries for {k} sources")
    iters = [iter(src) for src in sources]
    buf: list[np.ndarray] = [np.empty(0, dtype=EVENT_DTYPE) for _ in range(k)]
    pulled = [0] * k  # rows pulled so far from each source (row index of the next pulled row)
    last_ts: list[int | None] = [None] * k
    live = [True] * k
    while True:
        for s in range(k):  # refill empty buffers; skip empty chunks
            while live[s] and not len(buf[s]):
                try:
                    chunk = next(iters[s])
                except StopIteration:
                    live[s] = False
                    break
                chunk = _check_chunk(chunk, s, labels[s], pulled[s], last_ts[s])
                if len(chunk):
                    buf[s] = chunk
                    pulled[s] += len(chunk)
                    last_ts[s] = int(chunk["ts_local"][-1])
        # Bound = smallest (last buffered ts, source) over live sources; None = everything is in.
        bound: tuple[int, int] | None = None
        for s in range(k):
            if live[s]:
                key = (int(buf[s]["ts_local"][-1]), s)
                bound = key if bound is None or key < bound else bound
        runs = []
        for s in range(k):
            b = buf[s]
            if bound is None or s == bound[1]:
                cut = len(b)
            else:  # rows with (ts, s) <= (tb, sb): ts < tb, or ts == tb and s < sb
                cut = int(np.searchsorted(b["ts_local"], bound[0], "right" if s < bound[1] else "left"))
            runs.append(b[:cut])
            buf[s] = b[cut:]
        merged = _merge_runs(runs)
        for start in range(0, len(merged), chunk_rows):
            yield merged[start : start + chunk_rows]
        if bound is None:
            return


def _open_source(path: Path, chunk_rows: int) -> tuple[Iterable[np.ndarray], int, InstrumentTable | None]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return iter_parquet(path, chunk_rows), parquet_num_rows(path), parquet_instruments(path)
    if suffix == ".npy":
        return iter_npy(path, chunk_rows), len(read_npy(path)), npy_instruments(path)
    raise DataError(Finding("unknown_format", str(path), None, None, path.suffix,
                            "merge_files reads canonical .parquet or .npy event files only",
                            "convert the file first (`tickguard data convert IN OUT.parquet`)"))


def _union_instruments(tables: list[tuple[str, InstrumentTable | None]]) -> InstrumentTable | None:
    merged: dict[int, object] = {}
    origin: dict[int, str] = {}
    for name, table in tables:
        for inst in table or ():
            if inst.id in merged and merged[inst.id] != inst:
                raise DataError(Finding(
                    "instrument_conflict", name, None, "instruments", inst,
                    f"instrument id {inst.id} differs from {merged[inst.id]!r} in {origin[inst.id]}",
                    "give each instrument a unique id across the files being merged"))
            merged.setdefault(inst.id, inst)
            origin.setdefault(inst.id, name)
    return InstrumentTable(merged.values()) if merged else None  # type: ignore[arg-type]


def merge_files(
    paths: Sequence[str | os.PathLike[str]],
    out_path: str | os.PathLike[str],
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Path:
    """Merge canonical ``.parquet`` / ``.npy`` event files into ``out_path`` (``.parquet`` or ``.npy``).

    The instrument tables of the inputs are united (an id used for two different instruments is an
    error). Output is written atomically (``.partial`` then rename). Returns ``out_path``.
    """
    in_paths = [Path(p) for p in paths]
    out = Path(out_path)
    opened = [_open_source(p, chunk_rows) for p in in_paths]
    instruments = _union_instruments([(str(p), o[2]) for p, o in zip(in_paths, opened)])
    stream = merge_streams([o[0] for o in opened], chunk_rows, names=[str(p) for p in in_paths])
    if out.suffix.lower() == ".parquet":
        with ParquetEventWriter(out, instruments, row_group_rows=chunk_rows) as writer:
            for chunk in stream:
                writer.write(chunk)
        return out
    if out.suffix.lower() != ".npy":
        raise ValueError(f"merge_files: out_path must end in .parquet or .npy, got {out.name!r}")
    total = sum(o[1] for o in opened)
    tmp = out.with_name(out.name + ".partial")
    arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=EVENT_DTYPE, shape=(total,))
    try:
        pos = 0
        for chunk in stream:
            arr[pos : pos + len(chunk)] = chunk
            pos += len(chunk)
        arr.flush()
    except BaseException:
        del arr
        tmp.unlink(missing_ok=True)
        raise
    del arr
    if instruments is not None:
        side = instruments_sidecar(out)
        side_tmp = side.with_name(side.name + ".partial")
        side_tmp.write_text(instruments.to_json())
        os.replace(side_tmp, side)
    os.replace(tmp, out)
    return out
