"""tickguard.data — ticks in: schema, readers/writers, validation, merge, synthetic and real samples."""

from .errors import DataError, Finding, TickguardWarning
from .schema import (
    EVENT_DTYPE,
    INSTRUMENT_DTYPE,
    KIND_BAR,
    KIND_CONTROL,
    KIND_DEPTH,
    KIND_LAST_IN_BATCH,
    KIND_QUOTE,
    KIND_SNAPSHOT,
    KIND_TRADE,
    SIDE_BUY,
    SIDE_NONE,
    SIDE_SELL,
    Instrument,
    InstrumentTable,
    empty_events,
)
from .npy_io import iter_npy, read_npy, write_npy
from .parquet_io import ParquetEventWriter, iter_parquet, read_parquet, write_parquet

__all__ = [
    "DataError",
    "EVENT_DTYPE",
    "Finding",
    "INSTRUMENT_DTYPE",
    "Instrument",
    "InstrumentTable",
    "KIND_BAR",
    "KIND_CONTROL",
    "KIND_DEPTH",
    "KIND_LAST_IN_BATCH",
    "KIND_QUOTE",
    "KIND_SNAPSHOT",
    "KIND_TRADE",
    "ParquetEventWriter",
    "SIDE_BUY",
    "SIDE_NONE",
    "SIDE_SELL",
    "TickguardWarning",
    "empty_events",
    "iter_npy",
    "iter_parquet",
    "read_npy",
    "read_parquet",
    "write_npy",
    "write_parquet",
]
