"""``tickguard data convert IN OUT``: any supported source -> canonical Parquet or ``.npy``.

Every row passes validation on the way (strict by default; quarantine mode writes bad rows to a
side file and converts the rest). Parquet output streams chunk by chunk in bounded memory;
``.npy`` output is one contiguous array, so it is assembled in memory first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError, Finding
from .loader import iter_load
from .npy_io import write_npy
from .parquet_io import ParquetEventWriter
from .schema import EVENT_DTYPE
from .validate import ValidationReport

__all__ = ["convert"]

_OUTPUTS = (".parquet", ".npy")


def convert(src: str | os.PathLike[str], dst: str | os.PathLike[str], **options: Any) -> ValidationReport:
    """Validate ``src`` and write its accepted events to ``dst`` (``.parquet`` or ``.npy``).

    ``options`` go to :func:`tickguard.data.loader.iter_load` (mode, quarantine_path, columns,
    preset, time_unit, tz, instrument, instruments, chunk_rows, ...). Returns the report.
    """
    out = Path(dst)
    suffix = out.suffix.lower()
    if suffix not in _OUTPUTS:
        raise DataError(Finding("unsupported_format", str(out), None, None, out.suffix,
                                "output format not supported", f"name the output *{' or *'.join(_OUTPUTS)}"))
    if out.resolve() == Path(src).resolve():
        raise DataError(Finding("bad_option", str(out), None, None, str(out),
                                "output would overwrite the input", "choose another output path"))
    stream = iter_load(src, **options)
    if suffix == ".parquet":
        writer = ParquetEventWriter(out, stream.instruments)
        try:
            for chunk in stream:
                writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        writer.close()
    else:
        chunks = list(stream)
        events = np.concatenate(chunks) if chunks else np.empty(0, dtype=EVENT_DTYPE)
        write_npy(out, events, stream.instruments)
    if stream.report is None:  # set when the stream is exhausted
        raise RuntimeError(f"{src}: validation report missing after a complete read")
    return stream.report
