"""Canonical on-disk form: Parquet with one column per :data:`EVENT_DTYPE` field.

The instrument table rides in the file's key-value metadata (``tickguard.instruments``, JSON), so
one file is self-describing. Reading streams by record batch (row groups are read lazily by
pyarrow), so a file larger than memory replays in memory bounded by ``chunk_rows``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numba import njit

from .errors import DataError, Finding
from .schema import EVENT_DTYPE, EVENT_FIELDS, InstrumentTable

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "DEFAULT_COMPRESSION",
    "ParquetEventWriter",
    "SCHEMA_VERSION",
    "events_to_arrow",
    "is_canonical_parquet",
    "iter_parquet",
    "iter_parquet_batches",
    "parquet_batch_to_events",
    "parquet_instruments",
    "parquet_num_rows",
    "read_parquet",
    "write_parquet",
]

SCHEMA_VERSION = "1"
DEFAULT_CHUNK_ROWS = 1 << 18  # ~18 MiB of events per chunk and row group (memory bound)
_META_INSTRUMENTS = b"tickguard.instruments"
_META_VERSION = b"tickguard.schema_version"

# Timestamps are distinct and increasing: a dictionary never pays for them, and delta encoding
# stores them in a few bits each (the bundled LOBSTER day: 20.8 -> 11.0 bytes per event with
# zstd). Every other field repeats a lot and keeps its dictionary. LZ4 decodes ~40 % faster than
# zstd for ~15 % more bytes on these files, and decoding is on streaming's critical path (the loop
# waits for the reader thread at 10^8 events: benchmarks/suite.py, `_scaling`).
_DELTA_FIELDS = ("ts_exch", "ts_local")
DEFAULT_COMPRESSION = "lz4"

_ARROW_SCHEMA = pa.schema(
    [pa.field(name, pa.from_numpy_dtype(EVENT_DTYPE.fields[name][0])) for name in EVENT_FIELDS]
)


def _schema_with_meta(instruments: InstrumentTable | None) -> pa.Schema:
    meta = {_META_VERSION: SCHEMA_VERSION.encode()}
    if instruments is not None:
        meta[_META_INSTRUMENTS] = instruments.to_json().encode()
    return _ARROW_SCHEMA.with_metadata(meta)


def events_to_arrow(events: np.ndarray, instruments: InstrumentTable | None = None) -> pa.Table:
    """Column-wise, zero-copy where numpy allows, conversion of an event array to an Arrow table."""
    if events.dtype != EVENT_DTYPE:
        raise TypeError(f"events must have EVENT_DTYPE, got dtype {events.dtype}")
    cols = [pa.array(np.ascontiguousarray(events[name])) for name in EVENT_FIELDS]
    return pa.Table.from_arrays(cols, schema=_schema_with_meta(instruments))


class ParquetEventWriter:
    """Append event chunks to one Parquet file; the file appears under its name only on close.

    Writes go to ``PATH.partial`` and are renamed on a clean close, so an interrupted write never
    leaves a file that looks complete.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        instruments: InstrumentTable | None = None,
        *,
        row_group_rows: int = DEFAULT_CHUNK_ROWS,
        compression: str = DEFAULT_COMPRESSION,
    ) -> None:
        if row_group_rows <= 0:
            raise ValueError(f"row_group_rows must be > 0, got {row_group_rows!r}")
        self.path = Path(path)
        self._tmp = self.path.with_name(self.path.name + ".partial")
        self._rows = row_group_rows
        self._writer = pq.ParquetWriter(
            self._tmp, _schema_with_meta(instruments), compression=compression,
            use_dictionary=[f for f in EVENT_FIELDS if f not in _DELTA_FIELDS],
            column_encoding={f: "DELTA_BINARY_PACKED" for f in _DELTA_FIELDS},
        )
        self._instruments = instruments
        self.rows_written = 0

    def write(self, events: np.ndarray) -> None:
        if len(events):
            self._writer.write_table(
                events_to_arrow(events, self._instruments), row_group_size=self._rows
            )
            self.rows_written += len(events)

    def close(self) -> None:
        self._writer.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._writer.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "ParquetEventWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_parquet(
    path: str | os.PathLike[str],
    events: np.ndarray,
    instruments: InstrumentTable | None = None,
    *,
    row_group_rows: int = DEFAULT_CHUNK_ROWS,
    compression: str = DEFAULT_COMPRESSION,
) -> Path:
    """Write ``events`` to ``path`` atomically; returns the path."""
    with ParquetEventWriter(path, instruments, row_group_rows=row_group_rows,
                            compression=compression) as writer:
        writer.write(events)
    return Path(path)


def _open(path: str | os.PathLike[str]) -> pq.ParquetFile:
    p = Path(path)
    if not p.exists():
        raise DataError(
            Finding("missing_file", str(p), None, None, str(p), "file does not exist",
                    "check the path (relative paths are resolved from the current directory)")
        )
    try:
        return pq.ParquetFile(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(
            Finding("unreadable_file", str(p), None, None, type(exc).__name__,
                    f"not a readable Parquet file: {exc}",
                    "re-create the file with `tickguard data convert`, or check it is not truncated")
        ) from exc


def is_canonical_parquet(path: str | os.PathLike[str]) -> bool:
    """True when the file holds every :data:`EVENT_DTYPE` column (tickguard's own format)."""
    names = set(_open(path).schema_arrow.names)
    return set(EVENT_FIELDS) <= names


def parquet_instruments(path: str | os.PathLike[str]) -> InstrumentTable | None:
    meta = _open(path).schema_arrow.metadata or {}
    raw = meta.get(_META_INSTRUMENTS)
    return InstrumentTable.from_json(raw) if raw else None


def parquet_num_rows(path: str | os.PathLike[str]) -> int:
    return int(_open(path).metadata.num_rows)


@njit(cache=True, nogil=True)
def pack_events_nb(out, ts_exch, ts_local, instrument, kind, side, level, price, size, bid_px, bid_sz,
                   ask_px, ask_sz):
    """Fill the EVENT_DTYPE rows of ``out`` from one array per field, row by row.

    Writing each 72-byte row once is about five times faster than assigning the twelve fields as
    twelve strided passes (measured on 2e6 rows), which made the conversion, not the Parquet
    decoding, the bottleneck of streaming. Its twin is :func:`_columns_to_events_py`.
    """
    for i in range(out.shape[0]):
        r = out[i]
        r["ts_exch"] = ts_exch[i]
        r["ts_local"] = ts_local[i]
        r["instrument"] = instrument[i]
        r["kind"] = kind[i]
        r["side"] = side[i]
        r["level"] = level[i]
        r["price"] = price[i]
        r["size"] = size[i]
        r["bid_px"] = bid_px[i]
        r["bid_sz"] = bid_sz[i]
        r["ask_px"] = ask_px[i]
        r["ask_sz"] = ask_sz[i]


def _columns_to_events_py(columns: list[np.ndarray]) -> np.ndarray:
    """The plain-numpy twin of :func:`pack_events_nb` (one strided assignment per field)."""
    out = np.empty(len(columns[0]), dtype=EVENT_DTYPE)
    for name, col in zip(EVENT_FIELDS, columns):
        out[name] = col
    return out


def _batch_to_events(batch: pa.RecordBatch, out: np.ndarray | None = None) -> np.ndarray:
    columns = []
    for name in EVENT_FIELDS:
        col = batch.column(name)
        if col.null_count:
            # Nulls in a float column are missing values: NaN is their numpy spelling.
            if pa.types.is_floating(col.type):
                col = col.fill_null(np.nan)
            else:
                first = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
                raise DataError(
                    Finding("null_value", "<parquet>", first + 1, name, None,
                            "integer field is null", "fill the column; timestamps and ids are required")
                )
        columns.append(np.ascontiguousarray(col.to_numpy(zero_copy_only=False), dtype=EVENT_DTYPE[name]))
    if out is None:
        out = np.empty(batch.num_rows, dtype=EVENT_DTYPE)
    pack_events_nb(out, *columns)
    return out


def _batches(pf: pq.ParquetFile, chunk_rows: int) -> Iterator[pa.RecordBatch]:
    # One row group at a time: iterating the whole file lets pyarrow keep every compressed row
    # group it has read (memory grew ~15 MiB per row group, measured in benchmarks/readers.py).
    for group in range(pf.num_row_groups):
        yield from pf.iter_batches(batch_size=chunk_rows, row_groups=[group], columns=list(EVENT_FIELDS))


def iter_parquet_batches(
    path: str | os.PathLike[str], chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """The decoding half of :func:`iter_parquet`: ``(offset, batch)``, the Arrow batches of at
    most ``chunk_rows`` rows of a canonical Parquet file and the row in the file each begins at.
    :func:`parquet_batch_to_events` is the other half, so the two can run in different threads
    (the engine decodes the next batch while the one before is packed, checked and hashed)."""
    if chunk_rows <= 0:
        raise ValueError(f"chunk_rows must be > 0, got {chunk_rows!r}")
    pf = _open(path)
    missing = [n for n in EVENT_FIELDS if n not in pf.schema_arrow.names]
    if missing:
        raise DataError(
            Finding("missing_column", str(path), None, missing[0], pf.schema_arrow.names,
                    f"not a canonical tickguard Parquet file: columns {missing} are missing",
                    "load it with a column mapping (tickguard.data.load(..., columns=...)) "
                    "or convert it with `tickguard data convert`")
        )
    offset = 0
    for batch in _batches(pf, chunk_rows):
        yield offset, batch
        offset += batch.num_rows


def parquet_batch_to_events(batch: pa.RecordBatch, path: str | os.PathLike[str], offset: int,
                            out: np.ndarray | None = None) -> np.ndarray:
    """The EVENT_DTYPE rows of one batch of :func:`iter_parquet_batches` (``path`` and ``offset``
    name the file and the row in it when a value is bad), written into ``out`` when given (an
    EVENT_DTYPE array of exactly ``batch.num_rows`` rows, returned) or into a new array."""
    if out is not None and (out.dtype != EVENT_DTYPE or out.shape != (batch.num_rows,)
                            or not out.flags.c_contiguous or not out.flags.writeable):
        raise ValueError(f"out: got an array of dtype {out.dtype} and shape {out.shape}; pass a "
                         f"writable, C-contiguous EVENT_DTYPE array of shape ({batch.num_rows},), "
                         "one row per row of the batch")
    try:
        return _batch_to_events(batch, out)
    except DataError as exc:  # name the real file and the row in the whole file
        f = exc.findings[0]
        row = None if f.row is None else f.row + offset
        raise DataError(Finding(f.code, str(path), row, f.field, f.value, f.message, f.fix)) from None


def iter_parquet(
    path: str | os.PathLike[str], chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[np.ndarray]:
    """Yield event chunks of at most ``chunk_rows`` rows from a canonical Parquet file."""
    for offset, batch in iter_parquet_batches(path, chunk_rows):
        yield parquet_batch_to_events(batch, path, offset)


def read_parquet(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a whole canonical Parquet file into one event array."""
    chunks = list(iter_parquet(path))
    return np.concatenate(chunks) if chunks else np.empty(0, dtype=EVENT_DTYPE)
