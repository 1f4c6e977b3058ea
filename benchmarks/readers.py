"""Benchmark of the data readers: events/s for canonical Parquet, ``.npy`` and CSV, and peak memory.

Why: the engine replays files far larger than memory, so the readers must be fast *and* stream in
memory that does not grow with the file. This measures both on seeded synthetic data
(:mod:`tickguard.data.synth`) so anyone can rerun it::

    python -m tickguard.benchmarks.readers                      # 10**7 events (a few minutes)
    python -m tickguard.benchmarks.readers --events 2000000 --json readers.json

Three parts, each printed as a table (and all written as JSON with ``--json PATH``, ``-`` for
stdout):

* **throughput** at ``--events`` rows: :func:`~tickguard.data.parquet_io.iter_parquet` and
  :func:`~tickguard.data.npy_io.iter_npy` (and both through
  :func:`~tickguard.data.readers.iter_source`), best of ``--repeat`` passes, each pass summing
  ``ts_local`` of every chunk so that memory-mapped pages are really read. Files were just
  written, so they sit in the page cache: this is decoding speed, not disk speed.
* **memory**: a fresh interpreter streams a file with small chunks (``--rss-chunk-rows``) and
  reports its peak RSS (``VmHWM``; see :mod:`._measure` for why not ``ru_maxrss``), for two
  file sizes (``--rss-events``), next to the file size and the size of the whole array;
  ``read_parquet`` (everything in memory) is the contrast. Mapped ``.npy`` pages count in RSS
  although the kernel may drop them at will; ``RssAnon`` at the end (Linux) shows what the
  process itself holds. Parquet decodes a whole row group at a time, so its memory follows
  the row-group size (``--chunk-rows`` when writing), not the chunk size asked for.
* **csv**: :func:`~tickguard.data.readers.iter_source` on ``--csv-rows`` rows of canonical CSV
  (epoch-ns integers, all fields), the same gzipped, and a "quotes" user layout with ISO-8601
  times.

File generation is timed separately and not counted. Nothing here asserts speed; row counts are
checked so a broken reader cannot report a fast figure.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from ..data.npy_io import iter_npy, read_npy
from ..data.parquet_io import DEFAULT_CHUNK_ROWS, ParquetEventWriter, iter_parquet
from ..data.readers import iter_source
from ..data.schema import EVENT_DTYPE, KIND_QUOTE
from ..data.synth import iter_synthesize, synth_instruments
from ._measure import best_of, child_peak_rss, format_bytes, format_table, machine_info

__all__ = ["main", "run"]

ITEM = EVENT_DTYPE.itemsize
SEED = 20240102

# --- generation (timed, not counted) -------------------------------------------------------------


def _npy_header(fh, n: int) -> None:
    header = np.lib.format.header_data_from_array_1_0(np.empty(0, EVENT_DTYPE))
    header["shape"] = (n,)
    np.lib.format.write_array_header_1_0(fh, header)


def _write_npy(path: Path, n: int, chunks: Iterator[np.ndarray]) -> None:
    """Stream chunks into a ``.npy`` file of ``n`` events without holding them all."""
    written = 0
    with open(path, "wb") as fh:
        _npy_header(fh, n)
        for chunk in chunks:
            fh.write(np.ascontiguousarray(chunk).tobytes())
            written += len(chunk)
    if written != n:
        raise RuntimeError(f"{path}: wrote {written} events, expected {n}")


def _prefix_chunks(arr: np.ndarray, n: int, chunk_rows: int) -> Iterator[np.ndarray]:
    for start in range(0, n, chunk_rows):
        yield arr[start : min(start + chunk_rows, n)]


def generate(folder: Path, sizes: list[int], seed: int, chunk_rows: int) -> tuple[dict, dict]:
    """Write ``events_<n>.npy`` and ``events_<n>.parquet`` for each size (smaller ones are
    prefixes of the largest); returns (paths by size, seconds by step)."""
    top = max(sizes)
    paths: dict[int, dict[str, Path]] = {}
    secs: dict[str, float] = {}
    t0 = time.perf_counter()
    big = folder / f"events_{top}.npy"
    _write_npy(big, top, iter_synthesize(top, seed=seed, chunk_rows=chunk_rows))
    secs[f"synthesize {top} -> npy"] = time.perf_counter() - t0
    src = read_npy(big)
    table = synth_instruments()
    for n in sorted(sizes):
        npy, parquet = folder / f"events_{n}.npy", folder / f"events_{n}.parquet"
        if n != top:
            t0 = time.perf_counter()
            _write_npy(npy, n, _prefix_chunks(src, n, chunk_rows))
            secs[f"copy {n} -> npy"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        with ParquetEventWriter(parquet, table, row_group_rows=chunk_rows) as writer:
            for chunk in _prefix_chunks(src, n, chunk_rows):
                writer.write(np.ascontiguousarray(chunk))
        secs[f"write {n} -> parquet"] = time.perf_counter() - t0
        paths[n] = {"npy": npy, "parquet": parquet}
    del src
    return paths, secs


def write_csvs(folder: Path, rows: int, seed: int) -> tuple[dict[str, Path], float]:
    """Canonical CSV (all fields, epoch ns), its gzip, and a quotes-layout CSV, ``rows`` each."""
    t0 = time.perf_counter()
    events = np.concatenate(list(iter_synthesize(2 * rows, seed=seed + 1)))
    canon = events[:rows]
    df = pd.DataFrame({name: canon[name] for name in EVENT_DTYPE.names})
    out = {"canonical": folder / "canonical.csv", "canonical_gz": folder / "canonical.csv.gz",
           "quotes_iso": folder / "quotes.csv"}
    df.to_csv(out["canonical"], index=False)
    with open(out["canonical"], "rb") as src, gzip.open(out["canonical_gz"], "wb", compresslevel=1) as dst:
        shutil.copyfileobj(src, dst)
    q = events[(events["kind"] & KIND_QUOTE) != 0][:rows]
    if len(q) < rows:
        raise RuntimeError(f"only {len(q)} quote rows in {2 * rows} synthetic events")
    times = np.char.add(np.datetime_as_string(q["ts_exch"].astype("datetime64[ns]"), unit="ns"), "Z")
    pd.DataFrame({"time": times, "bid": q["bid_px"], "ask": q["ask_px"],
                  "bid_size": q["bid_sz"].astype(np.int64), "ask_size": q["ask_sz"].astype(np.int64)}
                 ).to_csv(out["quotes_iso"], index=False, float_format="%.2f")
    return out, time.perf_counter() - t0


# --- measurements --------------------------------------------------------------------------------


def _touch(chunks: Iterator[np.ndarray]) -> int:
    """Read every chunk's ``ts_local`` (every page of a memmap); returns the row count."""
    rows = 0
    for c in chunks:
        c["ts_local"].view(np.uint64).sum()  # unsigned: may wrap, silently; the value is unused
        rows += len(c)
    return rows


def _touch_parsed(chunks) -> int:
    rows = 0
    for c in chunks:
        if c.rejects:
            raise RuntimeError(f"reader rejected rows: {c.rejects[0].finding}")
        rows += _touch(iter([c.events]))
    return rows


def _throughput(label: str, path: Path, n: int, fn: Callable[[], int], repeat: int) -> dict[str, Any]:
    timing = best_of(fn, repeat)
    if timing.result != n:
        raise RuntimeError(f"{label}: read {timing.result} rows, expected {n}")
    size = path.stat().st_size
    return {"reader": label, "file": path.name, "events": n, "file_bytes": size,
            "seconds_best": timing.best, "seconds_all": list(timing.times),
            "events_per_s": n / timing.best, "file_bytes_per_s": size / timing.best,
            "array_bytes_per_s": n * ITEM / timing.best}


def measure_throughput(paths: dict[str, Path], n: int, chunk_rows: int, repeat: int) -> list[dict]:
    pq, npy = paths["parquet"], paths["npy"]
    cases = [
        ("iter_parquet", pq, lambda: _touch(iter_parquet(pq, chunk_rows))),
        ("iter_source(parquet)", pq, lambda: _touch_parsed(iter_source(pq, chunk_rows=chunk_rows))),
        ("iter_npy (memmap)", npy, lambda: _touch(iter_npy(npy, chunk_rows))),
        ("iter_source(npy)", npy, lambda: _touch_parsed(iter_source(npy, chunk_rows=chunk_rows))),
    ]
    return [_throughput(label, path, n, fn, repeat) for label, path, fn in cases]


_RSS_SETUP = """
import sys
import numpy as np
from tickguard.data.npy_io import iter_npy
from tickguard.data.parquet_io import iter_parquet, read_parquet
"""
_RSS_BODY = """
path, how, chunk_rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = 0
if how == "read_parquet":
    arr = read_parquet(path)
    arr["ts_local"].view(np.uint64).sum()
    rows = len(arr)
else:
    for c in (iter_parquet if how == "iter_parquet" else iter_npy)(path, chunk_rows):
        c["ts_local"].view(np.uint64).sum()
        rows += len(c)
result = rows
"""


def measure_memory(paths: dict[int, dict[str, Path]], sizes: list[int], chunk_rows: int) -> list[dict]:
    out = []
    for n in sorted(sizes):
        for how, fmt in (("iter_parquet", "parquet"), ("iter_npy", "npy"), ("read_parquet", "parquet")):
            path = paths[n][fmt]
            mem = child_peak_rss(_RSS_BODY, _RSS_SETUP, args=[str(path), how, str(chunk_rows)])
            if mem.result != n:
                raise RuntimeError(f"{how} on {path.name}: read {mem.result} rows, expected {n}")
            chunk = None if how == "read_parquet" else chunk_rows
            out.append({"reader": how, "events": n, "chunk_rows": chunk,
                        "file_bytes": path.stat().st_size, "array_bytes": n * ITEM,
                        "baseline_rss_bytes": mem.baseline_bytes, "peak_rss_bytes": mem.peak_bytes,
                        "extra_rss_bytes": mem.extra_bytes, "ru_maxrss_bytes": mem.ru_maxrss_bytes,
                        "end_rss_anon_bytes": mem.status.get("RssAnon"),
                        "end_rss_file_bytes": mem.status.get("RssFile"), "seconds": mem.seconds})
    return out


def measure_csv(paths: dict[str, Path], rows: int, chunk_rows: int, repeat: int) -> list[dict]:
    table = synth_instruments()
    cases = [
        ("canonical", {"time_unit": "ns", "instruments": table}),
        ("canonical_gz", {"time_unit": "ns", "instruments": table}),
        ("quotes_iso", {"instrument": 0, "instruments": table}),
    ]
    out = []
    for name, kw in cases:
        path = paths[name]
        row = _throughput(f"iter_source(csv: {name})", path, rows,
                          lambda: _touch_parsed(iter_source(path, chunk_rows=chunk_rows, **kw)), repeat)
        out.append(row)
    return out


# --- report --------------------------------------------------------------------------------------


def _rate(x: float) -> str:
    return f"{x / 1e6:.2f} M/s"


def _mbs(x: float) -> str:
    return f"{x / 2**20:.0f} MiB/s"


def report(res: dict) -> str:
    m = res["machine"]
    head = (f"machine: {m['platform']} ({m['machine']}), {m['cpu_count']} CPUs ({m['cpu_usable']} usable), "
            f"{format_bytes(m['mem_total_bytes'])} RAM; Python {m['python']}, numpy {m['numpy']}, "
            f"pyarrow {m['pyarrow']}, pandas {m['pandas']}, numba {m['numba']}")
    gen = "\n".join(f"  {k}: {v:.2f} s" for k, v in res["generation_seconds"].items())
    thr = format_table(
        ["reader", "events", "file", "best s", "events/s", "file rate", "array rate"],
        [[r["reader"], r["events"], format_bytes(r["file_bytes"]), f"{r['seconds_best']:.3f}",
          _rate(r["events_per_s"]), _mbs(r["file_bytes_per_s"]), _mbs(r["array_bytes_per_s"])]
         for r in res["throughput"]])
    mem = format_table(
        ["reader", "events", "chunk", "file", "array", "peak RSS", "imports", "extra", "end anon",
         "end file"],
        [[r["reader"], r["events"], r["chunk_rows"] or "-", format_bytes(r["file_bytes"]),
          format_bytes(r["array_bytes"]), format_bytes(r["peak_rss_bytes"]),
          format_bytes(r["baseline_rss_bytes"]), format_bytes(r["extra_rss_bytes"]),
          format_bytes(r["end_rss_anon_bytes"]), format_bytes(r["end_rss_file_bytes"])]
         for r in res["memory"]])
    csv = format_table(
        ["reader", "rows", "file", "best s", "rows/s", "file rate"],
        [[r["reader"], r["events"], format_bytes(r["file_bytes"]), f"{r['seconds_best']:.3f}",
          _rate(r["events_per_s"]), _mbs(r["file_bytes_per_s"])] for r in res["csv"]])
    p = res["params"]
    return "\n\n".join([
        head,
        f"generation (not counted):\n{gen}",
        f"throughput (chunk_rows={p['chunk_rows']}, best of {p['repeat']}, warm page cache):\n{thr}",
        f"memory (fresh process; Parquet row groups of {p['chunk_rows']} rows):\n{mem}",
        f"csv (chunk_rows={p['chunk_rows']}, best of {p['csv_repeat']}):\n{csv}",
    ])


def run(events: int = 10**7, *, rss_events: list[int] | None = None, csv_rows: int = 10**6,
        chunk_rows: int = DEFAULT_CHUNK_ROWS, rss_chunk_rows: int = 1 << 18, repeat: int = 3,
        csv_repeat: int = 1, seed: int = SEED, tmpdir: str | None = None) -> dict:
    """Run every measurement; returns the JSON-able result."""
    rss_events = rss_events or [max(events // 5, 1), events]
    res: dict[str, Any] = {
        "benchmark": "tickguard.benchmarks.readers", "machine": machine_info(),
        "params": {"events": events, "rss_events": rss_events, "csv_rows": csv_rows,
                   "chunk_rows": chunk_rows, "rss_chunk_rows": rss_chunk_rows, "repeat": repeat,
                   "csv_repeat": csv_repeat, "seed": seed, "event_itemsize": ITEM},
    }
    with tempfile.TemporaryDirectory(prefix="tickguard-bench-", dir=tmpdir) as tmp:
        folder = Path(tmp)
        sizes = sorted(set(rss_events) | {events})
        paths, gen = generate(folder, sizes, seed, chunk_rows)
        csv_paths, gen["csv files"] = write_csvs(folder, csv_rows, seed)
        res["generation_seconds"] = gen
        res["throughput"] = measure_throughput(paths[events], events, chunk_rows, repeat)
        res["memory"] = measure_memory(paths, rss_events, rss_chunk_rows)
        res["csv"] = measure_csv(csv_paths, csv_rows, chunk_rows, csv_repeat)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tickguard.benchmarks.readers",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10**7, help="events for throughput (default 10**7)")
    ap.add_argument("--rss-events", type=lambda s: [int(float(x)) for x in s.split(",")], default=None,
                    help="comma-separated sizes for peak memory (default EVENTS/5,EVENTS)")
    ap.add_argument("--csv-rows", type=int, default=10**6, help="rows per CSV file (default 10**6)")
    ap.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS,
                    help=f"chunk and Parquet row-group rows (default {DEFAULT_CHUNK_ROWS})")
    ap.add_argument("--rss-chunk-rows", type=int, default=1 << 18, help="chunk rows when measuring memory")
    ap.add_argument("--repeat", type=int, default=3, help="passes per binary reader; best is reported")
    ap.add_argument("--csv-repeat", type=int, default=1, help="passes per CSV reader")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--tmpdir", default=None, help="where temporary files go (default: system temp)")
    ap.add_argument("--json", default=None, metavar="PATH", help="write the figures as JSON ('-': stdout)")
    a = ap.parse_args(argv)
    if min(a.events, a.csv_rows, a.chunk_rows, a.rss_chunk_rows, a.repeat, a.csv_repeat) < 1:
        ap.error("sizes and repeats must be >= 1")
    res = run(a.events, rss_events=a.rss_events, csv_rows=a.csv_rows, chunk_rows=a.chunk_rows,
              rss_chunk_rows=a.rss_chunk_rows, repeat=a.repeat, csv_repeat=a.csv_repeat, seed=a.seed,
              tmpdir=a.tmpdir)
    given = argv if argv is not None else sys.argv[1:]
    res["command"] = " ".join(["python -m tickguard.benchmarks.readers", *given])
    print(report(res))
    if a.json == "-":
        print(json.dumps(res, indent=2))
    elif a.json:
        Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
        print(f"\nwrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
