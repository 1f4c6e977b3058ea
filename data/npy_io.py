"""``.npy`` event files: raw :data:`EVENT_DTYPE` arrays, memory-mapped on read.

The instrument table sits beside the array in ``NAME.npy.instruments.json``. Memory-mapping means
a file larger than memory replays in bounded memory: the OS pages chunks in and out.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import DataError, Finding
from .parquet_io import DEFAULT_CHUNK_ROWS
from .schema import EVENT_DTYPE, InstrumentTable

__all__ = ["instruments_sidecar", "iter_npy", "npy_instruments", "read_npy", "write_npy"]


def instruments_sidecar(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".instruments.json")


def write_npy(
    path: str | os.PathLike[str], events: np.ndarray, instruments: InstrumentTable | None = None
) -> Path:
    """Write ``events`` (and the instrument sidecar) atomically."""
    if events.dtype != EVENT_DTYPE:
        raise TypeError(f"events must have EVENT_DTYPE, got dtype {events.dtype}")
    p = Path(path)
    tmp = p.with_name(p.name + ".partial")
    with open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(events), allow_pickle=False)
    if instruments is not None:
        side = instruments_sidecar(p)
        side_tmp = side.with_name(side.name + ".partial")
        side_tmp.write_text(instruments.to_json())
        os.replace(side_tmp, side)
    os.replace(tmp, p)
    return p


def read_npy(path: str | os.PathLike[str], *, mmap: bool = True) -> np.ndarray:
    """Open an event ``.npy`` file, memory-mapped read-only by default."""
    p = Path(path)
    if not p.exists():
        raise DataError(Finding("missing_file", str(p), None, None, str(p), "file does not exist",
                                "check the path"))
    try:
        arr = np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(Finding("unreadable_file", str(p), None, None, type(exc).__name__,
                                f"not a readable .npy file: {exc}",
                                "re-create it with `tickguard data convert`")) from exc
    if arr.dtype != EVENT_DTYPE:
        raise DataError(Finding("wrong_dtype", str(p), None, None, str(arr.dtype),
                                "array does not have tickguard's EVENT_DTYPE",
                                "convert the source with `tickguard data convert IN OUT.npy`"))
    return arr


def iter_npy(path: str | os.PathLike[str], chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[np.ndarray]:
    """Yield views of at most ``chunk_rows`` rows of a memory-mapped event file."""
    if chunk_rows <= 0:
        raise ValueError(f"chunk_rows must be > 0, got {chunk_rows!r}")
    arr = read_npy(path)
    for start in range(0, len(arr), chunk_rows):
        yield arr[start : start + chunk_rows]


def npy_instruments(path: str | os.PathLike[str]) -> InstrumentTable | None:
    side = instruments_sidecar(path)
    return InstrumentTable.from_json(side.read_text()) if side.exists() else None
