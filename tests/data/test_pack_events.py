"""The numba row packer of the Parquet reader equals its plain-numpy twin, byte for byte."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tickguard.data.parquet_io import _columns_to_events_py, pack_events_nb
from tickguard.data.schema import EVENT_DTYPE, EVENT_FIELDS


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 300), st.integers(0, 2**32 - 1))
def test_pack_matches_numpy_assignment(n, seed):
    rng = np.random.default_rng(seed)
    cols = []
    for name in EVENT_FIELDS:
        dt = EVENT_DTYPE[name]
        if dt.kind == "f":
            c = rng.normal(size=n) * 1e3
            c[rng.random(n) < 0.2] = np.nan  # missing values stay NaN
        else:
            info = np.iinfo(dt)
            c = rng.integers(info.min, info.max, size=n, endpoint=True, dtype=dt)
        cols.append(np.ascontiguousarray(c, dtype=dt))
    out = np.empty(n, dtype=EVENT_DTYPE)
    pack_events_nb(out, *cols)
    assert out.tobytes() == _columns_to_events_py(cols).tobytes()


def test_parquet_halves_compose_to_iter_parquet_and_name_a_bad_row_in_the_file(tmp_path):
    # the engine decodes (iter_parquet_batches) and packs (parquet_batch_to_events) in different
    # threads; together they are iter_parquet, offsets and error rows included
    import pyarrow as pa
    import pyarrow.parquet as pq
    import pytest

    from tickguard.data.errors import DataError
    from tickguard.data.parquet_io import (
        iter_parquet, iter_parquet_batches, parquet_batch_to_events, read_parquet, write_parquet,
    )
    from tickguard.data.schema import KIND_QUOTE, empty_events

    ev = empty_events(3_500)
    ev["ts_exch"] = ev["ts_local"] = np.arange(3_500) * 10
    ev["kind"] = KIND_QUOTE
    ev["bid_px"] = np.arange(3_500) * 0.25
    good = write_parquet(tmp_path / "good.parquet", ev, row_group_rows=3_500)
    halves = [(off, parquet_batch_to_events(b, good, off)) for off, b in iter_parquet_batches(good, 1_000)]
    assert [off for off, _ in halves] == [0, 1_000, 2_000, 3_000]
    assert [c.tobytes() for _, c in halves] == [c.tobytes() for c in iter_parquet(good, 1_000)]
    assert np.concatenate([c for _, c in halves]).tobytes() == read_parquet(good).tobytes()

    table = pq.read_table(good)
    ts = table.column("ts_local").to_pylist()
    ts[2_500] = None  # an integer field may not be null
    bad = tmp_path / "bad.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("ts_local"), "ts_local",
                                    pa.array(ts, pa.int64())), bad, row_group_size=3_500)
    def by_halves():
        return [parquet_batch_to_events(b, bad, off) for off, b in iter_parquet_batches(bad, 1_000)]

    for reader in (lambda: list(iter_parquet(bad, 1_000)), by_halves):
        with pytest.raises(DataError) as info:
            reader()
        f = info.value.findings[0]
        assert (f.code, f.file, f.row, f.field) == ("null_value", str(bad), 2_501, "ts_local")


def test_parquet_batch_packs_into_a_given_array_and_refuses_a_wrong_one(tmp_path):
    import pyarrow as pa
    import pytest

    from tickguard.data.parquet_io import events_to_arrow, parquet_batch_to_events

    ev = np.zeros(7, dtype=EVENT_DTYPE)
    ev["ts_local"] = ev["ts_exch"] = np.arange(7) * 10
    ev["price"] = np.linspace(1.0, 2.0, 7)
    batch = events_to_arrow(ev).to_batches()[0]
    assert isinstance(batch, pa.RecordBatch)
    out = np.full(7, 0xFF, dtype=np.uint8).repeat(EVENT_DTYPE.itemsize).view(EVENT_DTYPE)
    got = parquet_batch_to_events(batch, "x.parquet", 0, out)
    assert got is out and out.tobytes() == ev.tobytes()
    # a row short, strided, not events
    for bad in (np.zeros(6, dtype=EVENT_DTYPE), np.zeros(14, dtype=EVENT_DTYPE)[::2],
                np.zeros(7, dtype=np.float64)):
        with pytest.raises(ValueError, match=r"out: got an array of dtype .* pass a writable, "
                                             r"C-contiguous EVENT_DTYPE array of shape \(7,\)"):
            parquet_batch_to_events(batch, "x.parquet", 0, bad)
