"""Round trips: CSV (.csv, .csv.gz, every preset) -> events -> Parquet / .npy -> events is
byte-identical, and generated events written as canonical CSV text read back bit-exact."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickguard.data.npy_io import read_npy, write_npy
from tickguard.data.parquet_io import read_parquet, write_parquet
from tickguard.data.readers import iter_source, source_instruments
from tickguard.data.schema import (
    EVENT_DTYPE,
    KIND_BAR,
    KIND_CONTROL,
    KIND_DEPTH,
    KIND_LAST_IN_BATCH,
    KIND_QUOTE,
    KIND_TRADE,
    Instrument,
    InstrumentTable,
    empty_events,
    kind_to_str,
)

TABLE = InstrumentTable([Instrument(0, "AAPL", 0.01, 1.0), Instrument(5, "ES", 0.25, 1.0, 50.0)])
CANONICAL = (
    "ts_exch,ts_local,symbol,kind,side,level,price,size,bid_px,bid_sz,ask_px,ask_sz\n"
    "2024-01-02T14:30:00Z,2024-01-02T14:30:00.000000123Z,AAPL,quote,,,,,185.01,300,185.02,200\n"
    "2024-01-02T14:30:00.5Z,2024-01-02T14:30:00.500001Z,ES,trade,sell,,4745.25,3,,,,\n"
    "2024-01-02T14:30:01Z,2024-01-02T14:30:01.000001Z,ES,depth,bid,2,4745.0,17,,,,\n"
    "2024-01-02T14:30:02Z,2024-01-02T14:30:02.000001Z,AAPL,quote|trade,b,,185.02,100,185.01,300,185.03,50\n"
)


def read_all(path, **kw) -> np.ndarray:
    chunks = list(iter_source(path, **kw))
    assert all(not c.rejects for c in chunks)
    return np.concatenate([c.events for c in chunks])


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype == EVENT_DTYPE
    assert a.tobytes() == b.tobytes()  # every field, every bit
    for name in ("price", "size", "bid_px", "bid_sz", "ask_px", "ask_sz"):
        assert (np.isnan(a[name]) == np.isnan(b[name])).all()


def through_files(events: np.ndarray, tmp: Path, table: InstrumentTable | None) -> None:
    pq_path = write_parquet(tmp / "rt.parquet", events, table)
    assert_same(read_parquet(pq_path), events)
    assert_same(read_all(pq_path, chunk_rows=3), events)  # dispatch path too
    npy_path = write_npy(tmp / "rt.npy", events, table)
    assert_same(np.asarray(read_npy(npy_path)), events)
    assert_same(read_all(npy_path, chunk_rows=3), events)
    assert source_instruments(pq_path) == table and source_instruments(npy_path) == table


def test_csv_to_parquet_and_npy_lossless(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(CANONICAL)
    events = read_all(path, instruments=TABLE)
    assert len(events) == 4 and events["ts_local"][0] - events["ts_exch"][0] == 123
    assert np.isnan(events["bid_px"][1]) and events["price"][1] == 4745.25
    through_files(events, tmp_path, TABLE)


def test_csv_gz_reads_like_csv_and_round_trips(tmp_path):
    (tmp_path / "c.csv").write_text(CANONICAL)
    (tmp_path / "c.csv.gz").write_bytes(gzip.compress(CANONICAL.encode(), mtime=0))
    plain = read_all(tmp_path / "c.csv", instruments=TABLE)
    packed = read_all(tmp_path / "c.csv.gz", instruments=TABLE, chunk_rows=2)
    assert_same(packed, plain)
    through_files(packed, tmp_path, TABLE)


@pytest.mark.parametrize(
    ("text", "kwargs", "kind"),
    [
        ("time,bid,ask,bid_size,ask_size\n2024-01-02 09:30:00.25,185.01,185.02,300,200\n"
         "2024-01-02 09:30:01,185.0,185.02,100,200\n", {"tz": "America/New_York"}, int(KIND_QUOTE)),
        ("timestamp,price,qty,side\n1704205800.000000001,185.02,100,buy\n1704205801,185.01,5,S\n",
         {"time_unit": "s"}, int(KIND_TRADE)),
        ("time,open,high,low,close,volume\n2024-01-02T14:31:00Z,10,12,9,11,100\n"
         "2024-01-02T14:32:00Z,11,12,9,10,40\n", {"preset": "bars:1min"}, int(KIND_BAR | KIND_QUOTE)),
    ],
)
def test_each_preset_user_csv_round_trips(tmp_path, text, kwargs, kind):
    path = tmp_path / "user.csv"
    path.write_text(text)
    events = read_all(path, instrument="ES", instruments=TABLE, **kwargs)
    assert (events["kind"] == kind).all() and (events["instrument"] == 5).all()
    through_files(events, tmp_path, TABLE)


def test_instrument_table_survives(tmp_path):
    events = read_all_csv_with_symbols(tmp_path)
    through_files(events, tmp_path, TABLE)
    back = source_instruments(tmp_path / "rt.parquet")
    assert back is not None and back.by_symbol("ES").multiplier == 50.0 and back[5].tick_size == 0.25
    assert source_instruments(tmp_path / "rt.npy") == TABLE


def read_all_csv_with_symbols(tmp_path: Path) -> np.ndarray:
    path = tmp_path / "s.csv"
    path.write_text(CANONICAL)
    return read_all(path, instruments=TABLE)


# --- generated events -> canonical CSV text -> events -------------------------------------------
KINDS = [KIND_QUOTE, KIND_TRADE, KIND_QUOTE | KIND_TRADE, KIND_DEPTH, KIND_CONTROL,
         KIND_TRADE | KIND_LAST_IN_BATCH, KIND_BAR | KIND_QUOTE]
any_float = st.floats(allow_nan=False, allow_infinity=False)
maybe_float = st.one_of(st.just(float("nan")), any_float)


@st.composite
def event_rows(draw):
    kind = int(draw(st.sampled_from(KINDS)))
    row = {
        "ts_exch": draw(st.integers(-(2**62), 2**62)),
        "ts_local": draw(st.integers(-(2**62), 2**62)),
        "instrument": draw(st.integers(0, 2**31 - 1)),
        "kind": kind,
        "side": draw(st.sampled_from([-1, 0, 1])),
        "level": draw(st.integers(0, 255)),
    }
    need = set()
    if kind & KIND_QUOTE:
        need |= {"bid_px", "ask_px"}
    if kind & (KIND_TRADE | KIND_DEPTH):
        need |= {"price", "size"}
    for name in ("price", "size", "bid_px", "bid_sz", "ask_px", "ask_sz"):
        row[name] = draw(any_float if name in need else maybe_float)
    return row


SIDE_TEXT = {-1: ["-1", "sell", "S", "ask"], 0: ["0", ""], 1: ["1", "+1", "Buy", "b", "bid"]}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(event_rows(), min_size=1, max_size=25), style=st.integers(0, 3), data=st.data())
def test_generated_events_survive_csv_text(tmp_path, rows, style, data):
    expected = empty_events(len(rows))
    for i, row in enumerate(rows):
        for name, value in row.items():
            expected[name][i] = value
    names = list(EVENT_DTYPE.names)
    order = data.draw(st.permutations(names))  # header in any order
    lines = [",".join(order)]
    for i, row in enumerate(rows):
        cells = {}
        for name in names:
            value = row[name]
            if name == "ts_local" and style % 2:  # ISO with ns and 'Z' on odd styles
                cells[name] = np.datetime_as_string(np.datetime64(value, "ns"), unit="ns") + "Z"
            elif name == "kind":
                cells[name] = kind_to_str(value) if style >= 2 else str(value)
            elif name == "side":
                cells[name] = data.draw(st.sampled_from(SIDE_TEXT[value]))
            elif isinstance(value, float):
                cells[name] = "" if np.isnan(value) else repr(value)
            else:
                cells[name] = str(value)
        lines.append(",".join(cells[name] for name in order))
    path = tmp_path / "gen.csv"
    path.write_text("\n".join(lines) + "\n")
    chunk_rows = data.draw(st.integers(1, 30))
    chunks = list(iter_source(path, time_unit="ns", chunk_rows=chunk_rows))
    assert [r.finding for c in chunks for r in c.rejects] == []
    got = np.concatenate([c.events for c in chunks])
    assert np.concatenate([c.rows for c in chunks]).tolist() == list(range(1, len(rows) + 1))
    assert_same(got, expected)


@pytest.mark.parametrize("compression", ["lz4", "zstd", "none"])
def test_parquet_layout_delta_timestamps_dictionary_elsewhere(tmp_path, compression):
    # The writer's layout (parquet_io.py says why): timestamps delta-encoded with no dictionary,
    # every other column dictionary-encoded; any compression reads back bit-exact, including
    # timestamps that go backwards, jump by 2^62 and repeat (the delta encoding's hard cases).
    import pyarrow.parquet as pq

    ev = empty_events(2000)
    rng = np.random.default_rng(11)
    ev["ts_exch"] = np.cumsum(rng.integers(-5, 10**6, 2000))
    ev["ts_exch"][[5, 6, 7]] = [2**62, -(2**62), 2**62]
    ev["ts_local"] = ev["ts_exch"] + 50
    ev["kind"] = KIND_QUOTE
    ev["bid_px"] = np.round(100 + np.cumsum(rng.choice([-0.01, 0.01], 2000)), 2)
    ev["ask_px"] = ev["bid_px"] + 0.01
    path = write_parquet(tmp_path / "l.parquet", ev, compression=compression)
    assert_same(read_parquet(path), ev)
    meta = pq.ParquetFile(path).metadata.row_group(0)
    for c in range(meta.num_columns):
        col = meta.column(c)
        if col.path_in_schema in ("ts_exch", "ts_local"):
            assert "DELTA_BINARY_PACKED" in col.encodings and not col.has_dictionary_page
        else:
            assert col.has_dictionary_page, col.path_in_schema
        assert col.compression == ("UNCOMPRESSED" if compression == "none" else compression.upper())
