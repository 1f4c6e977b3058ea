"""Regenerate the bundled synthetic samples in data/samples/ exactly.

Run from the repository root (with the project installed):

    python examples/make_samples.py            # rewrite data/samples/synthetic_*
    python examples/make_samples.py --check    # regenerate to a temp dir, compare byte for byte

Outputs (see data/samples/SOURCES.md):

* ``synthetic_l1.parquet`` — 50 000 events of SYN0, ``synthesize(50_000, seed=20240102)``,
  default :class:`~tickguard.data.synth.SynthConfig` (L1 quotes and trades).
* ``synthetic_quotes.csv.gz`` — the first 4 000 quote rows of the same events in a "user" CSV
  layout ``time,bid,ask,bid_size,ask_size`` (ISO-8601 UTC exchange times with microseconds and
  a ``Z``), to exercise the column-mapping CSV reader. gzip header time is fixed (mtime=0) so the
  bytes are reproducible. The Parquet bytes depend on the pyarrow version that wrote them.
"""

from __future__ import annotations

import argparse
import filecmp
import gzip
import io
import sys
import tempfile
from pathlib import Path

import numpy as np

from tickguard.data.parquet_io import write_parquet
from tickguard.data.schema import KIND_QUOTE
from tickguard.data.synth import synthesize

SAMPLE_SEED = 20240102
SAMPLE_EVENTS = 50_000
CSV_ROWS = 4_000
SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
FILES = ("synthetic_l1.parquet", "synthetic_quotes.csv.gz")


def quotes_csv(events: np.ndarray, rows: int) -> bytes:
    """The first ``rows`` quote rows as ``time,bid,ask,bid_size,ask_size`` CSV text."""
    q = events[(events["kind"] & KIND_QUOTE) != 0][:rows]
    times = np.datetime_as_string(q["ts_exch"].astype("datetime64[ns]"), unit="us")
    out = io.StringIO()
    out.write("time,bid,ask,bid_size,ask_size\n")
    for t, b, a, bs, az in zip(times, q["bid_px"], q["ask_px"], q["bid_sz"], q["ask_sz"]):
        out.write(f"{t}Z,{b:.2f},{a:.2f},{bs:.0f},{az:.0f}\n")
    return out.getvalue().encode()


def write_samples(folder: Path) -> list[Path]:
    events, instruments = synthesize(SAMPLE_EVENTS, seed=SAMPLE_SEED)
    parquet = write_parquet(folder / FILES[0], events, instruments)
    csv = folder / FILES[1]
    with open(csv, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(quotes_csv(events, CSV_ROWS))
    return [parquet, csv]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the bundled files")
    args = parser.parse_args(argv)
    if not args.check:
        for path in write_samples(SAMPLES):
            print(f"wrote {path} ({path.stat().st_size} bytes)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        write_samples(Path(tmp))
        stale = [f for f in FILES if not filecmp.cmp(Path(tmp) / f, SAMPLES / f, shallow=False)]
    print("samples up to date" if not stale else f"stale: {stale}; rerun without --check")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
