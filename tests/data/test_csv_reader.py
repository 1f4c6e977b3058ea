"""CSV reading through iter_source: canonical headers, mappings, presets, rejects, file errors,
row numbering and count conservation; plus the non-canonical Parquet path and dispatch."""

from __future__ import annotations

import calendar
import gzip
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tickguard.data.errors import DataError
from tickguard.data.npy_io import instruments_sidecar, write_npy
from tickguard.data.parquet_io import write_parquet
from tickguard.data.readers import iter_source, source_format, source_instruments
from tickguard.data.schema import (
    EVENT_DTYPE,
    KIND_DEPTH,
    KIND_QUOTE,
    KIND_TRADE,
    Instrument,
    InstrumentTable,
    empty_events,
)

NS = 10**9
T0 = calendar.timegm(datetime(2024, 1, 2, 14, 30).timetuple()) * NS  # 2024-01-02T14:30:00Z
HEADER = "ts_exch,ts_local,instrument,kind,side,level,price,size,bid_px,bid_sz,ask_px,ask_sz"
TABLE = InstrumentTable([Instrument(0, "AAPL", 0.01), Instrument(3, "MSFT", 0.01)])


def write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def collect(path, **kw):
    chunks = list(iter_source(path, **kw))
    events = np.concatenate([c.events for c in chunks])
    rows = np.concatenate([c.rows for c in chunks])
    rejects = [r for c in chunks for r in c.rejects]
    return events, rows, rejects, chunks


def error_of(call) -> object:
    with pytest.raises(DataError) as err:
        call()
    return err.value.findings[0]


def test_canonical_header_any_order_kind_and_side_spellings(tmp_path):
    text = (
        "kind,ts_exch,ts_local,instrument,side,price,size,bid_px,bid_sz,ask_px,ask_sz\n"
        "quote,2024-01-02T14:30:00Z,2024-01-02T14:30:00.000001Z,0,,,,100,5,100.5,7\n"
        "Trade,2024-01-02T14:30:01Z,2024-01-02T14:30:01.000001Z,3,BUY,100.5,2,,,,\n"
        "2,2024-01-02T14:30:02Z,2024-01-02T14:30:02Z,0,s,100.25,1,,,,\n"
        "quote|trade,2024-01-02T14:30:03Z,2024-01-02T14:30:03Z,0,-1,100.5,1,100,5,100.5,6\n"
        "trade,2024-01-02T14:30:04Z,2024-01-02T14:30:04Z,0,ask,100.5,1,,,,\n"
        "trade,2024-01-02T14:30:05Z,2024-01-02T14:30:05Z,0,+1,100.5,1,,,,\n"
        "trade,2024-01-02T14:30:06Z,2024-01-02T14:30:06Z,0,b,100.5,1,,,,\n"
    )
    ev, rows, rejects, _ = collect(write(tmp_path, text))
    assert rejects == []
    assert rows.tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert ev["kind"].tolist() == [1, 2, 2, 3, 2, 2, 2]
    assert ev["side"].tolist() == [0, 1, -1, -1, -1, 1, 1]
    assert ev["instrument"].tolist() == [0, 3, 0, 0, 0, 0, 0]
    assert ev["ts_exch"][0] == T0 and ev["ts_local"][0] == T0 + 1000
    assert ev["bid_px"][0] == 100.0 and ev["ask_sz"][0] == 7.0
    assert np.isnan(ev["bid_px"][1]) and ev["price"][1] == 100.5
    assert ev["level"].tolist() == [0] * 7  # no level column -> 0


def test_rejects_name_row_field_value_and_keep_raw(tmp_path):
    text = (
        HEADER + "\n"
        "2024-01-02T14:30:00Z,2024-01-02T14:30:00Z,0,quote,,,,,100,5,100.5,7\n"   # 1 ok
        "bad,2024-01-02T14:30:00Z,0,quote,,,,,100,5,100.5,7\n"                    # 2 timestamp
        "2024-01-02T14:30:00Z,2024-01-02T14:30:00Z,0,quote,,,,,1O0,5,100.5,7\n"   # 3 number
        "2024-01-02T14:30:00Z,2024-01-02T14:30:00Z,0,quoet,,,,,100,5,100.5,7\n"   # 4 kind
        "2024-01-02T14:30:00Z,2024-01-02T14:30:00Z,0,trade,up,,1,1,,,,\n"          # 5 side
        "2024-01-02T14:30:00Z,2024-01-02T14:30:00Z,0,quote,,,,,,5,100.5,7\n"       # 6 missing bid
        "2024-01-02T14:30:00Z,2024-01-02T14:30:00Z,,trade,,,1,1,,,,\n"             # 7 missing instrument
        "2024-01-02T14:30:00Z,2024-01-02T14:30:00Z,0,trade,,,1,,,,,\n"             # 8 missing size
        "2024-01-02T14:30:00Z,2024-01-02T14:30:00Z,0,trade,,,inf,1,,,,\n"          # 9 non-finite
        "2024-01-02T14:30:00Z,2024-01-02T14:30:00Z,0,depth,1,300,1,1,,,,\n"        # 10 level range
        ",2024-01-02T14:30:00Z,0,trade,,,1,1,,,,\n"                                # 11 empty ts
        "2024-01-02T14:30:00Z,2024-01-02T14:30:00Z,0,,,,1,1,,,,\n"                 # 12 empty kind
    )
    path = write(tmp_path, text)
    ev, rows, rejects, _ = collect(path)
    assert rows.tolist() == [1]
    got = [(r.finding.row, r.finding.code, r.finding.field, r.finding.value) for r in rejects]
    assert got == [
        (2, "unparseable_timestamp", "ts_exch", "bad"),
        (3, "unparseable_number", "bid_px", "1O0"),
        (4, "unknown_kind", "kind", "quoet"),
        (5, "unknown_side", "side", "up"),
        (6, "missing_value", "bid_px", ""),
        (7, "missing_value", "instrument", ""),
        (8, "missing_value", "size", ""),
        (9, "unparseable_number", "price", "inf"),
        (10, "unparseable_number", "level", "300"),
        (11, "missing_value", "ts_exch", ""),
        (12, "missing_value", "kind", ""),
    ]
    for r in rejects:
        assert r.finding.file == str(path) and r.finding.fix and r.finding.message
        assert list(r.raw) == HEADER.split(",")
    assert rejects[1].raw["bid_px"] == "1O0" and rejects[1].raw["ask_px"] == "100.5"


def test_truncated_last_line_and_wrong_field_count(tmp_path):
    good = "2024-01-02T14:30:00Z,2024-01-02T14:30:00Z,0,trade,b,0,1,1,,,,\n"
    text = HEADER + "\n" + good + "2024-01-02T14:30:00Z,0,trade\n" + good + "2024-01-02T14:30:00Z,2024-01-02T14:3"
    ev, rows, rejects, _ = collect(write(tmp_path, text))
    assert rows.tolist() == [1, 3]
    assert [(r.finding.row, r.finding.code) for r in rejects] == [(2, "wrong_field_count"), (4, "truncated_line")]
    cut = rejects[1]
    assert "no newline" in cut.finding.message and cut.finding.field == "instrument"
    assert cut.raw == {"ts_exch": "2024-01-02T14:30:00Z", "ts_local": "2024-01-02T14:3"}
    # too many fields keeps the extras in the raw record
    ev, rows, rejects, _ = collect(write(tmp_path, HEADER + "\n" + good.strip() + ",9,9\n" + good, "x.csv"))
    assert rejects[0].finding.code == "wrong_field_count" and rejects[0].raw["_extra_2"] == "9"
    # a short last line WITH a newline is also truncated
    _, _, rejects, _ = collect(write(tmp_path, HEADER + "\n" + good + "2024-01-02T14:30:00Z,1\n\n", "y.csv"))
    assert rejects[0].finding.code == "truncated_line" and rejects[0].finding.row == 2


def test_chunking_row_numbers_blank_lines_and_counts(tmp_path):
    lines = []
    for i in range(23):
        ok = i % 5 != 3
        ts = f"{1_704_205_800 + i}" if ok else "x"
        lines.append(f"{ts},0,trade,b,100.{i},{i + 1}")
        if i == 10:
            lines.append("")  # a blank line is not a data row but keeps physical numbering
    text = "ts_exch,instrument,kind,side,price,size\n" + "\n".join(lines) + "\n"
    path = write(tmp_path, text)
    whole = collect(path, time_unit="s")
    for chunk_rows in (1, 2, 7, 1000):
        ev, rows, rejects, chunks = collect(path, time_unit="s", chunk_rows=chunk_rows)
        assert sum(c.rows_in for c in chunks) == 23  # conserved: events + rejects == data rows
        assert all(c.rows_in <= chunk_rows for c in chunks)
        assert ev.tobytes() == whole[0].tobytes() and rows.tolist() == whole[1].tolist()
        assert [r.finding.row for r in rejects] == [4, 9, 15, 20]  # line - 1; the blank is line 13
    assert whole[1][-1] == 24 and whole[0]["price"][-1] == 100.22


def test_quoted_fields_and_crlf(tmp_path):
    text = ('ts_exch,instrument,kind,side,price,size\r\n'
            '"2024-01-02T14:30:00Z",0,"trade",b,"1,5",1\r\n'
            '2024-01-02T14:30:01Z,0,trade,"s",2.5,"3"\r\n')
    ev, rows, rejects, _ = collect(write(tmp_path, text))
    # "1,5" is one field (quoted) and not a number: rejected, not split
    assert [(r.finding.row, r.finding.code, r.finding.value) for r in rejects] == [(1, "unparseable_number", "1,5")]
    assert rows.tolist() == [2] and ev["side"][0] == -1 and ev["size"][0] == 3.0


def test_quotes_preset_autodetect_instrument_symbol_and_latency(tmp_path):
    text = "Time,BID,ask,bid_size,ask_size\n2024-01-02 09:30:00,100,100.5,5,7\n2024-01-02 09:30:01,100,100.25,5,7\n"
    path = write(tmp_path, text)
    ev, rows, rejects, _ = collect(path, tz="America/New_York", instrument="MSFT", instruments=TABLE,
                                   feed_latency_ns=250)
    assert rejects == [] and ev["kind"].tolist() == [int(KIND_QUOTE)] * 2
    assert ev["ts_exch"][0] == T0 and ev["ts_local"][0] == T0 + 250
    assert ev["instrument"].tolist() == [3, 3] and ev["ask_px"][1] == 100.25
    assert np.isnan(ev["price"]).all()


def test_trades_preset_and_explicit_mapping_with_per_row_kind(tmp_path):
    path = write(tmp_path, "timestamp,price,qty,side\n1704205800000,100.5,3,sell\n")
    ev, *_ = collect(path, time_unit="ms", instrument=0)
    assert ev["kind"][0] == KIND_TRADE and ev["size"][0] == 3 and ev["side"][0] == -1 and ev["ts_exch"][0] == T0
    text = ("when,sym,b,a,last,vol,junk\n"
            "1704205800,AAPL,100,100.5,,,x\n"
            "1704205801,MSFT,,,100.5,2,y\n"
            "1704205802,AAPL,100,100.5,100.5,1,z\n"
            "1704205803,AAPL,,,,,z\n"
            "1704205804,GOOG,100,101,,,z\n")
    cols = {"ts_exch": "when", "symbol": "sym", "bid_px": "b", "ask_px": "a", "price": "last", "size": "vol"}
    ev, rows, rejects, _ = collect(write(tmp_path, text, "m.csv"), columns=cols, time_unit="s", instruments=TABLE)
    assert rows.tolist() == [1, 2, 3]
    assert ev["kind"].tolist() == [int(KIND_QUOTE), int(KIND_TRADE), int(KIND_QUOTE | KIND_TRADE)]
    assert ev["instrument"].tolist() == [0, 3, 0]
    assert [(r.finding.row, r.finding.code, r.finding.field) for r in rejects] == [
        (4, "missing_value", "b"), (5, "unknown_instrument", "sym")]
    assert rejects[1].raw["junk"] == "z"  # raw keeps every column, mapped or not


def test_instrument_column_holding_symbols_and_depth_requirements(tmp_path):
    text = ("ts_exch,instrument,kind,side,price,size\n"
            "1,AAPL,depth,1,100,5\n2,7,depth,-1,101,0\n3,MSFT,depth,1,,5\n")
    ev, rows, rejects, _ = collect(write(tmp_path, text), time_unit="ns", instruments=TABLE)
    assert ev["instrument"].tolist() == [0, 7]  # unknown *ids* pass (validation flags them)
    assert ev["kind"].tolist() == [int(KIND_DEPTH)] * 2
    assert [(r.finding.code, r.finding.field) for r in rejects] == [("missing_value", "price")]


@pytest.mark.parametrize(
    ("text", "kwargs", "code", "needle"),
    [
        ("", {}, "empty_file", "no header"),
        (HEADER + "\n", {}, "empty_file", "no data rows"),
        (HEADER + "\n\n\n", {}, "empty_file", "no data rows"),
        ("ts_exch,instrument,kind,price,size,bid_price\n1,0,trade,1,1,\n", {"time_unit": "s"},
         "unexpected_column", "Did you mean 'bid_px'"),
        ("time,bid,ask\n1,2,3\n", {"columns": {"ts_exch": "tme", "bid_px": "bid"}, "instrument": 0},
         "missing_column", "Did you mean 'time'"),
        ("ts_exch,kind,price,size\n1,trade,1,1\n", {"time_unit": "s"}, "missing_column", "instrument="),
        ("ts_exch,instrument,price,size\n1704205800,0,1,1\n", {}, "bad_option", "time_unit"),
        ("ts_exch,instrument,price,size\n2024-01-02 09:30,0,1,1\n", {}, "bad_option", "tz="),
        ("ts_exch,instrument,price,size\n1,0,1,1\n", {"time_unit": "sec"}, "bad_option", "unknown time unit"),
        ("ts_exch,instrument,price,size\n1,0,1,1\n", {"time_unit": "s", "instrument": 0}, "bad_option",
         "single-instrument"),
        ("ts_exch,symbol,price,size\n1,AAPL,1,1\n", {"time_unit": "s"}, "bad_option", "instrument table"),
        ("ts_exch,instrument,ts_local,price,size\n1,0,1,1,1\n", {"time_unit": "s", "feed_latency_ns": 5},
         "bad_option", "both ts_exch and ts_local"),
        ("ts_exch,instrument,side\n1,0,b\n", {"time_unit": "s"}, "missing_column", "quotes from trades"),
        ("time,open,high,low,close,volume\n1,1,1,1,1,1\n", {"time_unit": "s"}, "bad_option", "bars:1min"),
        ("a,a\n1,2\n", {}, "bad_header", "repeated"),
        ("timestamp,price,qty,side\n1,1,1,b\n", {"preset": "trade"}, "bad_option", "Did you mean 'trades'"),
        ("timestamp,price,qty,side\n1,1,1,b\n", {"instrument": "NOPE", "instruments": TABLE, "time_unit": "s"},
         "bad_option", "symbol not in the instrument table"),
        ("timestamp,price,qty,side\n1,1,1,b\n", {"columns": {"prize": "price"}}, "bad_option", "not a field"),
    ],
)
def test_file_level_errors_raise_at_call(tmp_path, text, kwargs, code, needle):
    path = write(tmp_path, text)
    finding = error_of(lambda: iter_source(path, **kwargs))  # no iteration needed
    assert finding.code == code
    assert needle in str(finding)
    assert finding.file == str(path) and finding.row is None


def test_missing_file_unknown_extension_and_bad_gzip(tmp_path):
    assert error_of(lambda: iter_source(tmp_path / "nope.csv")).code == "missing_file"
    finding = error_of(lambda: iter_source(write(tmp_path, "x", "data.xlsx")))
    assert finding.code == "unsupported_format" and ".csv.gz" in finding.fix and "data.xlsx" in finding.file
    good = HEADER + "\n" + "2024-01-02T14:30:00Z,2024-01-02T14:30:00Z,0,trade,b,0,1,1,,,,\n" * 2000
    blob = gzip.compress(good.encode())
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError) as err:
        list(iter_source(cut, chunk_rows=100))
    assert err.value.findings[0].code == "unreadable_file"
    (tmp_path / "ok.csv.gz").write_bytes(blob)
    ev, rows, rejects, _ = collect(tmp_path / "ok.csv.gz", chunk_rows=300)
    assert len(ev) == 2000 and rows[-1] == 2000 and not rejects


def test_non_canonical_parquet_goes_through_mapping(tmp_path):
    stamps = pa.array([T0, T0 + 1, None], type=pa.timestamp("ns", tz="America/New_York"))
    table = pa.table({"time": stamps, "bid": [100.1, 0.1 + 0.2, 99.0], "ask": [100.5, 101.0, 1e300],
                      "bid_size": [1, 2, 3], "ask_size": [4.5, 5.0, 6.0]})
    path = tmp_path / "user.parquet"
    pq.write_table(table, path)
    ev, rows, rejects, chunks = collect(path, preset="quotes", instrument=0, chunk_rows=2)
    assert len(chunks) == 2 and rows.tolist() == [1, 2]
    assert ev["ts_exch"].tolist() == [T0, T0 + 1]
    assert ev["bid_px"][1] == 0.1 + 0.2 and ev["ask_sz"][0] == 4.5  # floats survive bit-exactly
    assert [(r.finding.row, r.finding.code, r.finding.field) for r in rejects] == [(3, "missing_value", "time")]
    naive = pa.table({"time": pa.array([0], type=pa.timestamp("s")), "bid": [1.0], "ask": [2.0],
                      "bid_size": [1.0], "ask_size": [1.0]})
    pq.write_table(naive, tmp_path / "naive.parquet")
    assert error_of(lambda: iter_source(tmp_path / "naive.parquet", instrument=0)).code == "bad_option"
    ev, *_ = collect(tmp_path / "naive.parquet", instrument=0, tz="UTC")
    assert ev["ts_exch"].tolist() == [0]


def test_canonical_parquet_and_npy_dispatch_numbering_and_options(tmp_path):
    ev = empty_events(5)
    ev["ts_exch"] = ev["ts_local"] = np.arange(5) + T0
    ev["kind"] = KIND_TRADE
    ev["price"], ev["size"] = 100.0, 1.0
    for path in (write_parquet(tmp_path / "c.parquet", ev, TABLE), write_npy(tmp_path / "c.npy", ev, TABLE)):
        got, rows, rejects, chunks = collect(path, chunk_rows=2)
        assert [len(c.events) for c in chunks] == [2, 2, 1]
        assert rows.tolist() == [1, 2, 3, 4, 5] and got.tobytes() == ev.tobytes() and not rejects
        assert source_instruments(path) == TABLE
        assert error_of(lambda: iter_source(path, time_unit="s")).code == "bad_option"
    write_npy(tmp_path / "e.npy", empty_events(0))
    assert error_of(lambda: iter_source(tmp_path / "e.npy")).code == "empty_file"
    assert source_format("A.CSV.GZ") == "csv"


def test_source_instruments_explicit_wins_and_csv_sidecar(tmp_path):
    path = write(tmp_path, "ts_exch,symbol,kind,price,size\n1,MSFT,trade,1,1\n")
    assert source_instruments(path) is None
    other = InstrumentTable.single("X")
    assert source_instruments(path, other) is other
    instruments_sidecar(path).write_text(TABLE.to_json())
    assert source_instruments(path) == TABLE
    ev, *_ = collect(path, time_unit="s")  # symbols resolve through the sidecar table
    assert ev["instrument"].tolist() == [3]
    assert error_of(lambda: source_instruments(tmp_path / "none.parquet")).code == "missing_file"


def test_events_dtype_and_chunk_contract(tmp_path):
    path = write(tmp_path, "timestamp,price,qty,side\n1,1,1,b\n2,x,1,s\n")
    chunks = list(iter_source(path, time_unit="s", instrument=0))
    assert all(c.events.dtype == EVENT_DTYPE for c in chunks)
    assert sum(c.rows_in for c in chunks) == 2


def test_bad_utf8_line_and_quoted_newline(tmp_path):
    head = b"ts_exch,instrument,kind,side,price,size\n"
    body = b"1,0,trade,b,1,1\n2,0,trade,\xff\xfe,1,1\n3,0,trade,s,2,2\n"
    path = tmp_path / "enc.csv"
    path.write_bytes(head + body)
    ev, rows, rejects, chunks = collect(path, time_unit="s")
    assert rows.tolist() == [1, 3] and sum(c.rows_in for c in chunks) == 3
    assert [(r.finding.row, r.finding.code) for r in rejects] == [(2, "bad_encoding")]
    text = 'ts_exch,instrument,kind,side,price,size\n1,0,"tra\nde",b,1,1\n2,0,trade,b,1,1\n'
    for chunk_rows in (1, 2, 10):
        ev, rows, rejects, _ = collect(write(tmp_path, text, "q.csv"), time_unit="s", chunk_rows=chunk_rows)
        # the quoted field spans lines 2-3: one record (row 1), rejected as an unknown kind
        assert [(r.finding.row, r.finding.code) for r in rejects] == [(1, "unknown_kind")]
        assert rows.tolist() == [3]


def test_directory_is_unreadable(tmp_path):
    (tmp_path / "dir.csv").mkdir()
    assert error_of(lambda: iter_source(tmp_path / "dir.csv")).code == "unreadable_file"


def test_single_instrument_table_supplies_the_id(tmp_path):
    path = write(tmp_path, "timestamp,price,qty,side\n1,1,1,b\n")
    ev, *_ = collect(path, time_unit="s", instruments=InstrumentTable([Instrument(9, "ES", 0.25)]))
    assert ev["instrument"].tolist() == [9]
    assert error_of(lambda: iter_source(path, time_unit="s", instruments=TABLE)).code == "missing_column"
