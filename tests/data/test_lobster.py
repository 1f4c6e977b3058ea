"""LOBSTER reader: the real AMZN sample (independent pandas/Decimal oracles) and hand-made files."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tickguard.data.errors import DataError
from tickguard.data.lobster import (
    LobsterStats,
    iter_lobster,
    lobster_depth_diff_nb,
    lobster_depth_diff_py,
    parse_lobster_name,
    read_lobster,
)
from tickguard.data.schema import (
    KIND_CONTROL,
    KIND_DEPTH,
    KIND_LAST_IN_BATCH,
    KIND_QUOTE,
    KIND_TRADE,
    KIND_TYPE_MASK,
)

# tests/data/test_lobster.py -> parents[2] is the repo root; shared/ sits beside it
LOBSTER_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lobster"
STEM = "AMZN_2012-06-21_34200000_57600000"
MSG = LOBSTER_DIR / f"{STEM}_message_1.csv"
BOOK = LOBSTER_DIR / f"{STEM}_orderbook_1.csv"
needs_sample = pytest.mark.skipif(not MSG.exists() or not BOOK.exists(),
                                  reason=f"real LOBSTER sample not found at {LOBSTER_DIR}")
NY_MIDNIGHT_EDT_UTC = pd.Timestamp("2012-06-21 04:00:00", tz="UTC").value  # 00:00 EDT = 04:00 UTC


@pytest.fixture(scope="module")
def sample():
    if not MSG.exists():
        pytest.skip(f"real LOBSTER sample not found at {LOBSTER_DIR}")
    return read_lobster(MSG)


@pytest.fixture(scope="module")
def sample_depth():
    if not MSG.exists():
        pytest.skip(f"real LOBSTER sample not found at {LOBSTER_DIR}")
    return read_lobster(MSG, depth=True, chunk_rows=10_000)


def raw_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


@needs_sample
def test_sample_row_count_and_types(sample):
    ev, table, stats = sample
    msgs = pd.read_csv(MSG)  # independent count (this copy has a header row)
    # NB: the file holds 57 515 data rows (the README says 57 514; counted here, not assumed)
    assert len(ev) == len(msgs) == 57_515
    assert table.by_symbol("AMZN").id == 0 and table[0].tick_size == 0.01
    assert stats.message_rows == len(msgs)
    assert stats.messages_by_type == {k: int((msgs["Type"] == k).sum()) for k in range(1, 8)}
    n_trades = int(msgs["Type"].isin([4, 5]).sum())
    assert int(np.count_nonzero(ev["kind"] & KIND_TRADE)) == n_trades == stats.events_by_kind["trade"]
    assert np.all(ev["kind"] & KIND_QUOTE)  # no halts in this file: every row carries the book
    assert stats.bad_message_rows == stats.bad_orderbook_rows == 0 and not stats.findings


@needs_sample
def test_sample_timestamps_exact(sample):
    ev = sample[0]
    first = raw_lines(MSG)[1].split(",")[0]
    assert first == "34200.01746"
    # 09:30:00 New York on 2012-06-21 is 13:30:00 UTC (EDT, UTC-4), plus 0.01746 s = 17 460 000 ns
    assert ev["ts_exch"][0] == pd.Timestamp("2012-06-21 13:30:00", tz="UTC").value + 17_460_000
    # every row against an independent Decimal parse of the raw strings
    times = pd.read_csv(MSG, dtype=str)["Time"]
    expected = np.array([int(Decimal(t) * 10**9) for t in times], dtype=np.int64) + NY_MIDNIGHT_EDT_UTC
    assert np.array_equal(ev["ts_exch"], expected)
    assert np.array_equal(ev["ts_local"], ev["ts_exch"])  # feed_latency_ns=0


@needs_sample
def test_sample_quotes_not_crossed(sample):
    ev = sample[0]
    both = ~np.isnan(ev["bid_px"]) & ~np.isnan(ev["ask_px"])
    assert both.sum() > 50_000
    assert np.all(ev["bid_px"][both] < ev["ask_px"][both])


@needs_sample
def test_sample_hand_checked_rows(sample):
    ev = sample[0]
    m, b = raw_lines(MSG), raw_lines(BOOK)
    # data row 1: "34200.01746,5,0,1,2238200,-1" — hidden execution of a sell order (buyer aggressor)
    assert m[1] == "34200.01746,5,0,1,2238200,-1" and b[1] == "2239500,100,2231800,100"
    r = ev[0]
    assert r["kind"] & KIND_TYPE_MASK == KIND_TRADE | KIND_QUOTE and r["side"] == 1
    assert (r["price"], r["size"]) == (223.82, 1.0)
    assert (r["ask_px"], r["ask_sz"], r["bid_px"], r["bid_sz"]) == (223.95, 100.0, 223.18, 100.0)
    # data row 3: "34200.19023,4,11885113,21,2238100,1" — visible execution of a buy order
    assert m[3] == "34200.19023,4,11885113,21,2238100,1" and b[3] == "2239500,100,2237500,100"
    r = ev[2]
    assert r["kind"] & KIND_TYPE_MASK == KIND_TRADE | KIND_QUOTE and r["side"] == -1  # seller-initiated
    assert (r["price"], r["size"], r["bid_px"], r["ask_px"]) == (223.81, 21.0, 223.75, 223.95)
    # data row 2 (new buy limit order): a quote, side = the order's direction
    assert ev[1]["kind"] & KIND_TYPE_MASK == KIND_QUOTE and ev[1]["side"] == 1 and ev[1]["bid_px"] == 223.81
    # rows 3 and 4 share a timestamp: only row 4 closes the batch
    assert not ev[2]["kind"] & KIND_LAST_IN_BATCH and ev[3]["kind"] & KIND_LAST_IN_BATCH


@needs_sample
def test_sample_last_in_batch_and_chunking(sample):
    ev = sample[0]
    ts = ev["ts_exch"]
    expected = np.append(ts[1:] != ts[:-1], True)  # last row of each equal-ts run
    assert np.array_equal((ev["kind"] & KIND_LAST_IN_BATCH) != 0, expected)
    small = read_lobster(MSG, chunk_rows=997)[0]  # batches straddle chunk edges
    assert small.tobytes() == ev.tobytes()


@needs_sample
def test_sample_header_and_headerless_identical(sample, tmp_path):
    for src in (MSG, BOOK):  # LOBSTER's original form: no header row
        (tmp_path / src.name).write_text("\n".join(raw_lines(src)[1:]) + "\n")
    ev2, _, stats2 = read_lobster(tmp_path / MSG.name)
    assert ev2.tobytes() == sample[0].tobytes()
    assert stats2.messages_by_type == sample[2].messages_by_type


@needs_sample
def test_sample_depth_replays_to_the_book(sample, sample_depth):
    ev, _, stats = sample_depth
    primary = ev[(ev["kind"] & KIND_DEPTH) == 0]
    # the primary rows are the depth=False events, except that batch marks moved to depth rows
    a, b = primary.copy(), sample[0].copy()
    a["kind"] &= ~KIND_LAST_IN_BATCH
    b["kind"] &= ~KIND_LAST_IN_BATCH
    assert a.tobytes() == b.tobytes()
    assert stats.events_by_kind["depth"] == int(np.count_nonzero(ev["kind"] & KIND_DEPTH)) > 0
    # Replay depth updates into price->size dicts; after each message's updates, the book must
    # equal the orderbook row (level 1: exactly the touch, empty side = empty dict).
    book_rows = pd.read_csv(BOOK).to_numpy()
    books = {1: {}, -1: {}}
    i = -1
    kinds, sides, prices, sizes = ev["kind"], ev["side"], ev["price"], ev["size"]
    checked = 0
    for j in range(len(ev)):
        if kinds[j] & KIND_DEPTH:
            p = int(round(prices[j] * 10_000))
            if sizes[j] == 0:
                del books[sides[j]][p]
            else:
                books[sides[j]][p] = int(sizes[j])
        else:
            i += 1
        if j + 1 == len(ev) or not kinds[j + 1] & KIND_DEPTH:  # this message fully applied
            ask_px, ask_sz, bid_px, bid_sz = book_rows[i]
            assert books[-1] == ({} if ask_px == 9999999999 else {ask_px: ask_sz})
            assert books[1] == ({} if bid_px == -9999999999 else {bid_px: bid_sz})
            checked += 1
    assert checked == len(primary) == 57_515
    assert np.array_equal((ev["kind"] & KIND_LAST_IN_BATCH) != 0,
                          np.append(ev["ts_exch"][1:] != ev["ts_exch"][:-1], True))


# --- hand-made files -----------------------------------------------------------------------------
def write_pair(tmp_path: Path, msgs: list[str], book: list[str], *, stem="TEST_2012-01-10_34200000_57600000",
               levels=1, header=False) -> Path:
    m = tmp_path / f"{stem}_message_{levels}.csv"
    b = tmp_path / f"{stem}_orderbook_{levels}.csv"
    m.write_text(("Time,Type,OrderId,Size,Price,Direction\n" if header else "") + "\n".join(msgs) + "\n")
    b.write_text(("h" + ",h" * (4 * levels - 1) + "\n" if header else "") + "\n".join(book) + "\n")
    return m


BOOK1 = "1001000,5,1000000,7"  # ask 100.10 x5, bid 100.00 x7


def test_winter_date_is_utc_minus_5_and_latency(tmp_path):
    m = write_pair(tmp_path, ["34200.5,1,1,7,1000000,1"], [BOOK1])
    ev, table, _ = read_lobster(m, feed_latency_ns=250, instrument_id=3, tick_size=0.05)
    assert ev["ts_exch"][0] == pd.Timestamp("2012-01-10 14:30:00.5", tz="UTC").value  # EST
    assert ev["ts_local"][0] == ev["ts_exch"][0] + 250
    assert ev["instrument"][0] == 3 and table[3].symbol == "TEST" and table[3].tick_size == 0.05
    summer = read_lobster(m, date="2012-07-10")[0]  # explicit date overrides the file name
    assert summer["ts_exch"][0] == pd.Timestamp("2012-07-10 13:30:00.5", tz="UTC").value


def test_nanosecond_time_is_exact(tmp_path):
    m = write_pair(tmp_path, ["34200.000000001,1,1,7,1000000,1", "57599.999999999,1,1,7,1000000,1"],
                   [BOOK1, BOOK1])
    ev = read_lobster(m)[0]
    midnight_est = pd.Timestamp("2012-01-10 05:00:00", tz="UTC").value
    assert (ev["ts_exch"] - midnight_est).tolist() == [34_200_000_000_001, 57_599_999_999_999]
    assert int(float("34200.000000001") * 1e9) == 34_200_000_000_000  # why floats are not used


def test_cross_trade_and_halt_mapping(tmp_path):
    m = write_pair(tmp_path, [
        "34200.1,6,-1,300,1000500,-1",   # opening cross
        "34300.0,7,0,0,-1,-1",           # halt begins
        "34400.0,7,0,0,0,-1",            # quoting resumes
        "34500.0,7,0,0,1,-1",            # trading resumes
    ], [BOOK1] * 4)
    ev, _, stats = read_lobster(m)
    assert ev[0]["kind"] & (KIND_TRADE | KIND_QUOTE) == KIND_TRADE | KIND_QUOTE and ev[0]["side"] == 0
    assert (ev[0]["price"], ev[0]["size"]) == (100.05, 300.0)
    ctrl = ev[1:]
    assert np.all(ctrl["kind"] == KIND_CONTROL | KIND_LAST_IN_BATCH)
    assert ctrl["side"].tolist() == [-1, 0, 1]
    assert np.isnan(ctrl["bid_px"]).all() and np.isnan(ctrl["price"]).all()
    assert stats.messages_by_type[6] == 1 and stats.messages_by_type[7] == 3
    assert stats.events_by_kind["control"] == 3 and stats.events_by_kind["trade"] == 1


def test_two_level_depth_hand_worked(tmp_path):
    # levels: ask1, asz1, bid1, bsz1, ask2, asz2, bid2, bsz2
    m = write_pair(tmp_path, [
        "34200.0,1,1,5,1001000,-1",
        "34200.0,1,2,4,999000,1",    # same ts: a batch of two
        "34201.0,1,3,2,1000500,1",   # new best bid 100.05 pushes 100.00 to level 2, 99.90 out
        "34202.0,3,1,5,1001000,-1",  # ask 100.10 deleted -> ask side empty
    ], [
        "1001000,5,1000000,7,9999999999,0,-9999999999,0",
        "1001000,5,1000000,7,9999999999,0,999000,4",
        "1001000,5,1000500,2,9999999999,0,1000000,7",
        "9999999999,0,1000500,2,9999999999,0,1000000,7",
    ], levels=2)
    ev = read_lobster(m, depth=True)[0]
    rows = [(int(k), int(s), int(lv), float(p), float(z)) for k, s, lv, p, z in
            zip(ev["kind"], ev["side"], ev["level"], ev["price"], ev["size"])]
    Q, D, L = int(KIND_QUOTE), int(KIND_DEPTH), int(KIND_LAST_IN_BATCH)
    assert rows == [
        (Q, -1, 0, 100.10, 5.0),
        (D, 1, 0, 100.00, 7.0), (D, -1, 0, 100.10, 5.0),       # bids first, then asks
        (Q, 1, 0, 99.90, 4.0), (D | L, 1, 1, 99.90, 4.0),          # only the new level 2 bid
        (Q, 1, 0, 100.05, 2.0), (D, 1, 0, 100.05, 2.0), (D | L, 1, 1, 99.90, 0.0),
        (Q, -1, 0, 100.10, 5.0), (D | L, -1, 0, 100.10, 0.0),
    ]
    assert np.isnan(ev[-2]["ask_px"]) and ev[-2]["ask_sz"] == 0 and ev[-2]["bid_px"] == 100.05


def test_depth_kernel_twins_agree():
    rng = np.random.default_rng(3)
    n, nlev = 200, 3
    def side(sign):
        base = 10_000 + sign * rng.integers(0, 4, (n, 1))
        px = base + sign * np.cumsum(rng.integers(1, 3, (n, nlev)), axis=1)
        cut = rng.integers(0, nlev + 1, n)
        empty = np.arange(nlev) >= cut[:, None]
        px[empty] = -1
        sz = np.where(empty, 0, rng.integers(1, 4, (n, nlev)))
        return np.ascontiguousarray(px), np.ascontiguousarray(sz)
    bpx, bsz = side(-1)
    apx, asz = side(1)
    prev = np.stack([np.full(nlev, -1), np.zeros(nlev, int), np.full(nlev, -1), np.zeros(nlev, int)])
    zero = np.zeros(n, dtype=np.int64)
    args = (bpx, bsz, apx, asz, prev.astype(np.int64))
    c_py = lobster_depth_diff_py(*args, zero, zero, zero, zero, zero, False)
    c_nb = lobster_depth_diff_nb(*args, zero, zero, zero, zero, zero, False)
    assert np.array_equal(c_py, c_nb) and c_py.sum() > n
    starts = np.concatenate([[0], np.cumsum(c_py)[:-1]])
    outs = []
    for fn in (lobster_depth_diff_py, lobster_depth_diff_nb):
        o = [np.zeros(int(c_py.sum()), dtype=np.int64) for _ in range(4)]
        fn(*args, starts, *o, True)
        outs.append(np.stack(o))
    assert np.array_equal(outs[0], outs[1])


def test_header_detection_and_stream_stats(tmp_path):
    rows = ["34200.1,1,1,5,1000000,1", "34200.2,4,1,5,1000000,1"]
    (tmp_path / "h").mkdir()
    a = read_lobster(write_pair(tmp_path / "h", rows, [BOOK1, BOOK1], header=True))[0]
    b = read_lobster(write_pair(tmp_path, rows, [BOOK1, BOOK1]))[0]
    assert a.tobytes() == b.tobytes() and len(a) == 2
    st = LobsterStats()
    chunks = list(iter_lobster(write_pair(tmp_path, rows, [BOOK1, BOOK1]), chunk_rows=1, stats=st))
    assert np.concatenate(chunks).tobytes() == b.tobytes() and st.message_rows == 2
    assert parse_lobster_name(MSG.name)["levels"] == 1


@pytest.mark.parametrize("msgs, book, code, row, field", [
    (["34200.1,1,1,5,1000000,1", "34200.2,1,2,5,1000000,1"], [BOOK1], "row_count_mismatch", 2, None),
    (["34200.1,1,1,5,1000000,1"], [BOOK1, BOOK1], "row_count_mismatch", 2, None),
    (["34200.1,1,1,5,abc,1"], [BOOK1], "non_numeric", 1, "Price"),
    (["34200.1,1,1,5,1000000,1", "34200.2,9,1,5,1000000,1"], [BOOK1, BOOK1], "unknown_type", 2, "Type"),
    (["34200.1,1,1,5,1000000,0"], [BOOK1], "bad_direction", 1, "Direction"),
    (["34200.1,7,0,0,5,-1"], [BOOK1], "bad_halt_code", 1, "Price"),
    (["34200.1234567891,1,1,5,1000000,1"], [BOOK1], "bad_time", 1, "Time"),
    (["34200.2,1,1,5,1000000,1", "34200.1,1,1,5,1000000,1"], [BOOK1, BOOK1], "time_not_sorted", 2, "Time"),
    (["34200.1,1,1,5,1000000,1"], ["999000,5,1000000,7"], "crossed_book", 1, "AskPrice1"),
    (["34200.1,1,1,5,1000000,1"], ["1001000,5,1000000,x"], "non_numeric", 1, "BidSize1"),
    (["34200.1,1,1,5,1000000,1"], ["1001000,-5,1000000,7"], "negative_value", 1, "AskSize1/BidSize1"),
    (["34200.1,1,1,5,1000000,1"], ["1001000,5,1000000"], "wrong_column_count", 1, None),
    # a corrupt first row still has numbers in it: it is reported, not taken for a header row
    (["x,1,1,5,1000000,1"], [BOOK1], "bad_time", 1, "Time"),
    (["34200.1,1,1,5,1000000,1", "34200.2,1,1,5,1000000,1,9"], [BOOK1, BOOK1], "wrong_column_count", 2, None),
    (["34200.1,1,1,5,1000000"], [BOOK1], "wrong_column_count", 1, None),
])
def test_bad_input_findings(tmp_path, msgs, book, code, row, field):
    m = write_pair(tmp_path, msgs, book)
    with pytest.raises(DataError) as err:
        read_lobster(m)
    f = err.value.findings[0]
    assert (f.code, f.row, f.field) == (code, row, field), str(err.value)
    assert f.fix and f.file.endswith(".csv")


def test_orderbook_levels_must_match_file_name(tmp_path):
    m = write_pair(tmp_path, ["34200.1,1,1,5,1000000,1"], [BOOK1], levels=2)  # 4 columns, name says 2
    with pytest.raises(DataError, match="wrong_column_count"):
        read_lobster(m)


def test_skip_mode_records_every_dropped_row(tmp_path):
    m = write_pair(tmp_path, ["34200.1,1,1,5,1000000,1", "34200.2,9,1,5,1000000,1",
                              "34200.3,1,1,5,1000000,1"], [BOOK1, BOOK1, "999000,5,1000000,7"])
    ev, _, stats = read_lobster(m, on_error="skip")
    assert len(ev) == 1 and ev[0]["ts_exch"] % 10**9 == 100_000_000
    assert [(f.code, f.row) for f in stats.findings] == [("unknown_type", 2), ("crossed_book", 3)]
    assert (stats.bad_message_rows, stats.bad_orderbook_rows, stats.message_rows) == (1, 1, 3)


def test_unparseable_name_needs_date_and_symbol(tmp_path):
    m = tmp_path / "msgs.csv"
    b = tmp_path / "book.csv"
    m.write_text("34200.1,1,1,5,1000000,1\n")
    b.write_text(BOOK1 + "\n")
    with pytest.raises(DataError, match="bad_file_name"):
        read_lobster(m, b)
    ev, table, _ = read_lobster(m, b, date="2012-01-10", symbol="XYZ")
    assert table[0].symbol == "XYZ" and len(ev) == 1
