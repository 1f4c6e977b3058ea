"""One entry point for every source format: :func:`iter_source` yields :class:`ParsedChunk`.

Why: validation, conversion and the engine should not care whether ticks came from a vendor CSV,
a gzipped export, someone's Parquet or our own canonical files. Dispatch is by extension:

* ``.csv`` / ``.csv.gz`` -> :mod:`.csv_io` (text split by hand so no row is lost silently);
* ``.parquet`` -> the canonical fast path (:func:`.parquet_io.iter_parquet`) when every
  :data:`EVENT_DTYPE` column is there and no mapping is asked for; otherwise record batches go
  through the same column mapping as CSV;
* ``.npy`` -> :func:`.npy_io.iter_npy` (memory-mapped).

File-level problems (missing/unreadable/empty file, missing column, inconsistent options) raise
:class:`DataError` when :func:`iter_source` is *called*; row-level problems become rejects.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .bars import bar_table_to_chunk
from .csv_io import (
    BAR_FIELDS,
    PRESETS,
    ColumnPlan,
    CsvText,
    RawTable,
    closest,
    table_to_chunk,
)
from .errors import DataError, Finding
from .npy_io import instruments_sidecar, iter_npy, npy_instruments, read_npy
from .parquet_io import DEFAULT_CHUNK_ROWS, iter_parquet, parquet_instruments
from .parsed import ParsedChunk
from .schema import EVENT_FIELDS, InstrumentTable
from .timestamps import check_time_options, timestamp_style

__all__ = ["SUPPORTED_EXTENSIONS", "iter_source", "plan_columns", "source_format", "source_instruments"]

SUPPORTED_EXTENSIONS = (".csv", ".csv.gz", ".parquet", ".npy")

Path_ = str | os.PathLike[str]


def source_format(path: Path_) -> str:
    """``"csv"``, ``"parquet"`` or ``"npy"`` from the file name; DataError otherwise."""
    name = Path(path).name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".npy"):
        return "npy"
    raise DataError(Finding("unsupported_format", str(path), None, None, Path(path).suffix,
                            "unknown file extension", f"use one of {list(SUPPORTED_EXTENSIONS)}"))


def _missing(path: Path_) -> DataError:
    return DataError(Finding("missing_file", str(path), None, None, str(path), "file does not exist",
                             "check the path (relative paths start at the current directory)"))


def source_instruments(path: Path_, instruments: InstrumentTable | None = None) -> InstrumentTable | None:
    """The instrument table for ``path``: the one passed (explicit wins), else the one stored with
    the file (Parquet metadata; ``NAME.instruments.json`` sidecar for ``.npy`` and CSV), else None."""
    fmt = source_format(path)
    if instruments is not None:
        return instruments
    if not Path(path).exists():
        raise _missing(path)
    if fmt == "parquet":
        return parquet_instruments(path)
    if fmt == "npy":
        return npy_instruments(path)
    side = instruments_sidecar(path)
    if not side.exists():
        return None
    try:
        return InstrumentTable.from_json(side.read_text())
    except (ValueError, TypeError) as exc:  # bad JSON or bad instrument fields
        raise DataError(Finding("unreadable_file", str(side), None, None, type(exc).__name__,
                                f"instrument sidecar is not a valid table: {exc}",
                                "rewrite it with InstrumentTable.to_json()")) from exc


def iter_source(path: Path_, *, columns: dict[str, str] | None = None, preset: str | None = None,
                time_unit: str | None = None, tz: str | None = None,
                instrument: int | str | None = None, instruments: InstrumentTable | None = None,
                chunk_rows: int = DEFAULT_CHUNK_ROWS, feed_latency_ns: int = 0) -> Iterator[ParsedChunk]:
    """Yield :class:`ParsedChunk` s of at most ``chunk_rows`` source rows from any supported file.

    * ``columns`` maps our field -> the user's column, e.g. ``{"ts_exch": "time", "bid_px": "bid"}``;
      with a mapping (or a preset) only mapped columns are read, others are ignored. Without
      either, the header must use our field names (any order, plus optional ``symbol``).
    * ``preset``: ``"quotes"`` (``time,bid,ask,bid_size,ask_size``), ``"trades"``
      (``timestamp,price,qty,side``) — both auto-detected from an exact header, case-insensitive —
      or ``"bars:<length>[:start|end]"`` for ``time,open,high,low,close,volume`` (e.g.
      ``"bars:1min"``, ``"bars:1d:start"``; label defaults to ``end``, see :mod:`.bars`).
    * Timestamps: ISO-8601 with offset, naive ISO with ``tz=``, or epoch numbers with
      ``time_unit=`` (see :mod:`.timestamps`). With a single time column it is the exchange
      time and ``ts_local = ts_exch + feed_latency_ns``.
    * ``instrument``: id or symbol for a single-instrument file (may be left out when the
      instrument table holds exactly one instrument); a ``symbol`` column (or symbols in
      ``instrument``) maps through ``instruments`` (or the file's sidecar table).

    Row accounting: ``ParsedChunk.rows`` holds the 1-based data row (physical line - 1; blank
    lines are skipped and are not rows) of each event. For tick files that is one event per row,
    so ``sum(len(events) + len(rejects))`` over chunks equals the number of data rows. **Bar
    files yield four events per row, each carrying the row's number**: count source rows as
    ``len(np.unique(chunk.rows)) + len(chunk.rejects)`` (a row never spans chunks). Canonical
    Parquet and ``.npy`` rows are numbered 1..N across chunks.
    """
    fmt = source_format(path)
    if not isinstance(chunk_rows, (int, np.integer)) or chunk_rows <= 0:
        raise DataError(Finding("bad_option", str(path), None, "chunk_rows", chunk_rows,
                                "chunk_rows must be an int > 0", "pass e.g. chunk_rows=1_000_000"))
    if not Path(path).exists():
        raise _missing(path)
    mapping = columns is not None or preset is not None
    if fmt == "npy" or (fmt == "parquet" and not mapping and _is_canonical(path)):
        given = {"columns": columns, "preset": preset, "time_unit": time_unit, "tz": tz,
                 "instrument": instrument, "feed_latency_ns": feed_latency_ns or None}
        extra = [k for k, v in given.items() if v is not None]
        if extra:
            raise DataError(Finding("bad_option", str(path), None, extra[0], given[extra[0]],
                                    f"{extra} do not apply to a canonical {fmt} file",
                                    "drop them; the file already holds tickguard events"))
        n = len(read_npy(path)) if fmt == "npy" else _open_parquet(path).metadata.num_rows
        if n == 0:
            raise DataError(Finding("empty_file", str(path), None, None, 0, "file holds no events",
                                    "check how the file was written"))
        arrays = iter_npy(path, chunk_rows) if fmt == "npy" else iter_parquet(path, chunk_rows)
        return _numbered(arrays)
    table_inst = source_instruments(path, instruments)
    if fmt == "csv":
        src = CsvText(path, int(chunk_rows))
        header, tables, close = src.header, src.tables(), src.close
    else:
        header, tables, close = _parquet_tables(path, int(chunk_rows))
    try:
        plan = plan_columns(header, str(path), columns=columns, preset=preset, time_unit=time_unit,
                            tz=tz, instrument=instrument, instruments=table_inst,
                            feed_latency_ns=feed_latency_ns)
        first = next(tables)
        _check_time_style(first, plan)
    except BaseException:
        close()
        raise
    return _chunks(first, tables, plan)


def _numbered(arrays: Iterator[np.ndarray]) -> Iterator[ParsedChunk]:
    start = 1
    for arr in arrays:
        yield ParsedChunk(np.asarray(arr), np.arange(start, start + len(arr), dtype=np.int64))
        start += len(arr)


def _chunks(first: RawTable, tables: Iterator[RawTable], plan: ColumnPlan) -> Iterator[ParsedChunk]:
    convert = bar_table_to_chunk if plan.bars else table_to_chunk
    yield convert(first, plan)
    for table in tables:
        yield convert(table, plan)


def _check_time_style(table: RawTable, plan: ColumnPlan) -> None:
    """Fail fast when the first timestamp shows a needed option is missing (no unit guessing)."""
    for key in ("ts_exch", "ts_local", "time"):
        col = plan.fields.get(key)
        if col is None:
            continue
        values = table.columns[col]
        value = next((v for v in values if timestamp_style(v) != "empty"), None)
        style = timestamp_style(value)
        if style == "epoch" and plan.time_unit is None:
            raise DataError(Finding("bad_option", plan.file, None, col, value,
                                    "timestamps are epoch numbers but no time_unit= was given",
                                    "pass time_unit='s', 'ms', 'us' or 'ns' (1704187800 is in s, "
                                    "1704187800000 in ms); units are never guessed"))
        if style == "iso_naive" and plan.tz is None:
            raise DataError(Finding("bad_option", plan.file, None, col, value,
                                    "timestamps have no UTC offset and no tz= was given",
                                    "pass tz= the zone the times are in (e.g. 'America/New_York' "
                                    "or 'UTC'), or write times with an offset / 'Z'"))


# --- Parquet that is not canonical: record batches as text, then the CSV column mapping ----------
def _open_parquet(path: Path_) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(Finding("unreadable_file", str(path), None, None, type(exc).__name__,
                                f"not a readable Parquet file: {exc}",
                                "check the file is complete and really Parquet")) from exc


def _is_canonical(path: Path_) -> bool:
    return set(EVENT_FIELDS) <= set(_open_parquet(path).schema_arrow.names)


def _arrow_text(col: pa.Array) -> np.ndarray:
    """A typed Arrow column -> str object array, losslessly (floats: shortest round-trip repr;
    timestamps: ISO with ns and 'Z' when tz-aware, naive otherwise); nulls -> ''."""
    if pa.types.is_timestamp(col.type):
        unit = col.type.unit
        ints = pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False)
        valid = np.asarray(col.is_valid().to_numpy(zero_copy_only=False))
        stamps = np.where(valid, ints, 0).astype(np.int64).view(f"datetime64[{unit}]")
        text = np.datetime_as_string(stamps, unit=unit).astype(object)
        if col.type.tz is not None:
            text = text + "Z"
        text[~valid] = ""
        return text
    out = pc.fill_null(pc.cast(col, pa.string()), "")
    return np.asarray(out.to_numpy(zero_copy_only=False), dtype=object)


def _parquet_tables(path: Path_, chunk_rows: int):
    pf = _open_parquet(path)
    header = list(pf.schema_arrow.names)
    if pf.metadata.num_rows == 0:
        raise DataError(Finding("empty_file", str(path), None, None, header, "file has no rows",
                                "check how the file was written"))

    def tables() -> Iterator[RawTable]:
        offset = 0
        for batch in pf.iter_batches(batch_size=chunk_rows):
            cols = {name: _arrow_text(batch.column(i)) for i, name in enumerate(batch.schema.names)}
            rows = np.arange(offset + 1, offset + batch.num_rows + 1, dtype=np.int64)
            offset += batch.num_rows
            yield RawTable(str(path), cols, rows)

    return header, tables(), pf.close if hasattr(pf, "close") else (lambda: None)


# --- column plan -------------------------------------------------------------------------------------
def _bad(file: str, field_: str, value: object, message: str, fix: str) -> DataError:
    return DataError(Finding("bad_option", file, None, field_, value, message, fix))


def _parse_preset(preset: str | None, file: str) -> tuple[str | None, tuple[int, str] | None]:
    if preset is None:
        return None, None
    name, _, rest = str(preset).partition(":")
    if name not in PRESETS:
        raise _bad(file, "preset", preset, "unknown preset",
                   f"use one of 'quotes', 'trades', 'bars:<length>[:start|end]'.{closest(name, list(PRESETS))}")
    if name != "bars":
        if rest:
            raise _bad(file, "preset", preset, f"preset {name!r} takes no ':' suffix", f"use {name!r}")
        return name, None
    length, _, label = rest.partition(":")
    try:
        with warnings.catch_warnings():  # pandas deprecates some unit spellings ('1d', '1H')
            warnings.simplefilter("ignore")
            duration = int(pd.Timedelta(length).value) if length else 0
    except (ValueError, TypeError):
        duration = 0
    if duration <= 0 or (label or "end") not in ("start", "end"):
        raise _bad(file, "preset", preset, "bar preset needs the bar length and optional label",
                   "write e.g. preset='bars:1min' (times label the bar end) or 'bars:1d:start'")
    return "bars", (duration, label or "end")


def plan_columns(header: list[str], file: str, *, columns: dict[str, str] | None, preset: str | None,
                 time_unit: str | None, tz: object, instrument: int | str | None,
                 instruments: InstrumentTable | None, feed_latency_ns: int) -> ColumnPlan:
    """Resolve options against a header; every inconsistency is a file-level :class:`DataError`."""
    if not isinstance(feed_latency_ns, (int, np.integer)) or feed_latency_ns < 0:
        raise _bad(file, "feed_latency_ns", feed_latency_ns, "must be an int >= 0 (nanoseconds)",
                   "pass e.g. feed_latency_ns=50_000 for 50 us")
    name, bars = _parse_preset(preset, file)
    lower = {h.lower() for h in header}
    if name is None and columns is None:
        for cand in ("quotes", "trades"):
            if lower == set(PRESETS[cand].values()):
                name = cand
        if lower == set(BAR_FIELDS):
            raise _bad(file, "preset", None, "this looks like an OHLCV bar file",
                       "say the bar length: preset='bars:1min' (times label the bar end) or 'bars:1d:start'")
    allowed = (*BAR_FIELDS, "instrument", "symbol") if bars else (*EVENT_FIELDS, "symbol")
    if name is None and columns is None:  # canonical header: our field names, nothing else
        extra = [h for h in header if h.lower() not in allowed]
        if extra:
            hints = "".join(closest(h, list(allowed)) for h in extra)
            raise DataError(Finding("unexpected_column", file, None, extra[0], header,
                                    f"columns {extra} are not tickguard fields {list(allowed)}.{hints}",
                                    "rename them, or pass columns={field: column} (unmapped columns "
                                    "are then ignored)"))
        wanted = {h.lower(): h for h in header}
    else:
        wanted = dict(PRESETS[name]) if name else {}
        for key, col in (columns or {}).items():
            if key not in allowed:
                raise _bad(file, "columns", key, f"{key!r} is not a field name",
                           f"map fields from {list(allowed)}.{closest(key, list(allowed))}")
            wanted[key] = col
    fields = {key: _resolve(col, header, file) for key, col in wanted.items()}
    return _check_plan(fields, file, bars, time_unit, tz, instrument, instruments, feed_latency_ns)


def _resolve(col: str, header: list[str], file: str) -> str:
    if col in header:
        return col
    hits = [h for h in header if h.lower() == str(col).lower()]
    if len(hits) == 1:
        return hits[0]
    raise DataError(Finding("missing_column", file, None, col, header,
                            f"expected column {col!r} not found; the file has {header}.{closest(col, header)}",
                            "rename the column, or map it with columns={field: 'your column'}"))


def _check_plan(fields, file, bars, time_unit, tz, instrument, instruments, latency) -> ColumnPlan:
    check_time_options(time_unit, tz, file)
    if bars:
        for f in BAR_FIELDS:
            if f not in fields:
                raise DataError(Finding("missing_column", file, None, f, sorted(fields.values()),
                                        f"bar files need a {f!r} column", f"map it: columns={{'{f}': ...}}"))
    elif "ts_exch" not in fields and "ts_local" not in fields:
        raise DataError(Finding("missing_column", file, None, "ts_exch", sorted(fields.values()),
                                "no timestamp column", "map your time column: columns={'ts_exch': 'time'}"))
    if "ts_exch" in fields and "ts_local" in fields and latency:
        raise _bad(file, "feed_latency_ns", latency, "the file has both ts_exch and ts_local",
                   "drop feed_latency_ns, or map only one timestamp column")
    has_col = [k for k in ("instrument", "symbol") if k in fields]
    if len(has_col) == 2:
        raise _bad(file, "columns", has_col, "both an instrument and a symbol column",
                   "map only one of them")
    if instrument is not None and has_col:
        raise _bad(file, "instrument", instrument, f"the file has a {has_col[0]!r} column",
                   "drop instrument= (it is for single-instrument files)")
    if instrument is None and not has_col and instruments is not None and len(instruments) == 1:
        instrument = int(instruments.ids[0])  # the table names exactly one instrument: that one
    if instrument is None and not has_col:
        raise DataError(Finding("missing_column", file, None, "instrument", sorted(fields.values()),
                                "no instrument column and no instrument= given",
                                "pass instrument=<id or symbol> for a single-instrument file"))
    if "symbol" in fields and instruments is None:
        raise _bad(file, "instruments", None, "symbols need an instrument table",
                   "pass instruments=InstrumentTable(...) mapping symbols to ids")
    inst_id = None
    if isinstance(instrument, str):
        try:
            inst_id = int(instruments.by_symbol(instrument).id) if instruments else None
        except KeyError:
            inst_id = None
        if inst_id is None:
            raise _bad(file, "instrument", instrument, "symbol not in the instrument table",
                       "pass instruments= holding it, or an integer id")
    elif instrument is not None:
        if not isinstance(instrument, (int, np.integer)) or not 0 <= int(instrument) < 2**31:
            raise _bad(file, "instrument", instrument, "instrument id must be an int in [0, 2**31)",
                       "pass an integer id or a symbol")
        if instruments is not None and int(instrument) not in instruments:
            raise _bad(file, "instrument", instrument, "id not in the instrument table",
                       f"use one of {instruments.ids.tolist()}")
        inst_id = int(instrument)
    infer = "kind" not in fields and not bars
    if infer and not any(k in fields for k in ("bid_px", "ask_px", "price", "size")):
        raise DataError(Finding("missing_column", file, None, "kind", sorted(fields.values()),
                                "cannot tell quotes from trades: no kind, bid/ask or price/size column",
                                "map a kind column, or bid_px/ask_px (quotes) or price/size (trades)"))
    return ColumnPlan(file, fields, bars, inst_id, instruments, time_unit, tz, int(latency), infer)


