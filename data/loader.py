"""The front door for market data: read any supported source, validate it, hand back events.

Why one door: every path into the engine goes through the same checks, so a backtest never runs
on rows nobody looked at. :func:`load` returns everything in memory; :func:`iter_load` streams
validated chunks (memory bounded by ``chunk_rows``); :func:`validate_file` only reports.

Reading is :func:`tickguard.data.readers.iter_source` (format detection, column mapping, time
units); validation is :class:`tickguard.data.validate.Validator` (strict or quarantine). Options
not named here (``columns``, ``preset``, ``time_unit``, ``tz``, ``instrument``, ``chunk_rows``,
``feed_latency_ns``) go to the reader unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .readers import iter_source, source_instruments
from .checks import TIME_UNITS
from .parsed import ParsedChunk
from .schema import EVENT_DTYPE, InstrumentTable
from .validate import ValidationReport, Validator

__all__ = ["LoadResult", "LoadStream", "iter_load", "load", "validate_file"]


@dataclass(frozen=True)
class LoadResult:
    """Validated events (one array, source order), the instrument table, and the report."""

    events: np.ndarray
    instruments: InstrumentTable | None
    report: ValidationReport


class LoadStream:
    """Iterable of validated event chunks; ``report`` is set once the stream is exhausted.

    Iterate it once. In strict mode a bad row raises :class:`~tickguard.data.errors.DataError`
    during iteration (chunks before it may already have been yielded).
    """

    def __init__(self, chunks: Iterator[ParsedChunk], validator: Validator,
                 instruments: InstrumentTable | None) -> None:
        self.instruments = instruments
        self.report: ValidationReport | None = None
        self._chunks = chunks
        self._validator = validator
        self._started = False

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._started:
            raise RuntimeError("a LoadStream can be iterated only once; call iter_load again")
        self._started = True
        return self._run()

    def _run(self) -> Iterator[np.ndarray]:
        try:
            with self._validator as v:
                for chunk in self._chunks:
                    yield v.check(chunk)
                self.report = v.finish()
        finally:
            self.close()

    def close(self) -> None:
        """Release the source (also done when iteration ends, fails or is abandoned)."""
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


def _setup(path, mode, max_findings, quarantine_path, duplicates, instruments, now_ns, reader_kwargs):
    """Check options and open the source now, so file-level problems raise at the call."""
    table = source_instruments(path, instruments)  # explicit table, else the file's own
    unit = reader_kwargs.get("time_unit")
    validator = Validator(
        str(path), table, mode=mode, max_findings=max_findings, duplicates=duplicates,
        now_ns=now_ns, quarantine_path=quarantine_path,
        time_unit=unit if isinstance(unit, str) and unit in TIME_UNITS else None,  # a bad unit is the reader's bad_option
    )
    return LoadStream(iter_source(path, instruments=instruments, **reader_kwargs), validator, table)


def iter_load(
    path: str | os.PathLike[str],
    *,
    mode: str = "strict",
    max_findings: int = 1,
    quarantine_path: str | os.PathLike[str] | None = None,
    duplicates: str = "flag",
    instruments: InstrumentTable | None = None,
    now_ns: int | None = None,
    **reader_kwargs: object,
) -> LoadStream:
    """Stream validated chunks of ``path``; see :class:`LoadStream` and :func:`load` for options."""
    return _setup(path, mode, max_findings, quarantine_path, duplicates, instruments, now_ns, reader_kwargs)


def load(
    path: str | os.PathLike[str],
    *,
    mode: str = "strict",
    max_findings: int = 1,
    quarantine_path: str | os.PathLike[str] | None = None,
    duplicates: str = "flag",
    instruments: InstrumentTable | None = None,
    now_ns: int | None = None,
    **reader_kwargs: object,
) -> LoadResult:
    """Read and validate ``path`` into memory.

    ``mode="strict"`` raises :class:`~tickguard.data.errors.DataError` at the first
    ``max_findings`` problems; ``mode="quarantine"`` writes bad rows to ``quarantine_path``
    (default ``PATH.quarantine.csv``) and keeps the rest. ``duplicates="allow"`` keeps rows
    identical to the one before. ``now_ns`` fixes "now" for the implausible-time check (tests).
    """
    stream = _setup(path, mode, max_findings, quarantine_path, duplicates, instruments, now_ns, reader_kwargs)
    chunks = [c for c in stream if len(c)]
    events = np.concatenate(chunks) if chunks else np.empty(0, dtype=EVENT_DTYPE)
    assert stream.report is not None
    return LoadResult(events, stream.instruments, stream.report)


def validate_file(
    path: str | os.PathLike[str],
    *,
    mode: str = "quarantine",
    max_findings: int = 1,
    quarantine_path: str | os.PathLike[str] | None = None,
    duplicates: str = "flag",
    instruments: InstrumentTable | None = None,
    now_ns: int | None = None,
    **reader_kwargs: object,
) -> ValidationReport:
    """Read and validate ``path`` without keeping events (memory bounded by ``chunk_rows``).

    Defaults to quarantine mode, so the report covers the whole file (and the bad rows land in
    the quarantine file); ``mode="strict"`` raises at the first problem instead.
    """
    stream = _setup(path, mode, max_findings, quarantine_path, duplicates, instruments, now_ns, reader_kwargs)
    for _ in stream:
        pass
    assert stream.report is not None
    return stream.report
