"""Quarantine mode: the side file, count conservation, and chunk-boundary independence.

The core property test compares :class:`Validator` with a row-at-a-time pure-Python oracle of the
stateful rules (running maximum of accepted ``ts_local``, duplicate of the previous accepted row,
whole-row quarantine for multi-event rows) on random streams cut into random chunks.
"""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tickguard.data.checks import plausible_window, stateless_checks
from tickguard.data.errors import DataError, Finding
from tickguard.data.parsed import ParsedChunk, Reject
from tickguard.data.schema import EVENT_FIELDS, KIND_BAR, KIND_QUOTE, InstrumentTable, empty_events
from tickguard.data.validate import QUARANTINE_COLUMNS, Validator

T0 = 1_700_000_000 * 10**9
NOW = T0 + 10**12
TABLE = InstrumentTable.single("ES", tick_size=0.25, lot_size=1.0)


def quotes(n: int, start: int = 0) -> np.ndarray:
    ev = empty_events(n)
    ev["ts_exch"] = T0 + (start + np.arange(n)) * 1_000_000
    ev["ts_local"] = ev["ts_exch"] + 10_000
    ev["kind"] = KIND_QUOTE
    ev["bid_px"], ev["ask_px"] = 100.0, 100.25
    ev["bid_sz"], ev["ask_sz"] = start + np.arange(n) + 1.0, 5.0
    return ev


def reject(row: int, code: str = "unparseable_number") -> Reject:
    f = Finding(code, "t.csv", row, "bid_px", "abc", "not a number", "write a decimal number")
    return Reject(f, {"ts_exch": "1", "bid_px": "abc"})


def read_q(path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def run(chunks, tmp_path, name="q.csv", **kw):
    v = Validator("t.csv", TABLE, mode="quarantine", now_ns=NOW, quarantine_path=tmp_path / name, **kw)
    out = [v.check(c) for c in chunks]
    rep = v.finish()
    acc = np.concatenate(out) if out else empty_events(0)
    return acc, rep


def test_quarantine_file_lists_each_bad_row_once_with_all_codes(tmp_path):
    ev = quotes(5)
    ev["bid_px"][1] = 101.0  # crossed ...
    ev["ask_sz"][1] = -2.0  # ... and negative size on the same row
    ev["ask_px"][3] = 100.3  # off tick
    acc, rep = run([ParsedChunk(ev, [1, 2, 3, 5, 6], [reject(4)])], tmp_path)
    assert (rep.rows_in, rep.rows_accepted, rep.rows_quarantined) == (6, 3, 3)
    assert rep.counts_by_code == {"negative_size": 1, "crossed_quote": 1, "off_tick_grid": 1,
                                  "unparseable_number": 1}
    assert [f.row for f in rep.findings] == [2, 2, 4, 5]
    assert acc["bid_sz"].tolist() == [1.0, 3.0, 5.0]
    lines = read_q(tmp_path / "q.csv")
    assert list(lines[0]) == list(QUARANTINE_COLUMNS)
    assert [(r["row"], r["code"], r["field"], r["value"]) for r in lines] == [
        ("2", "negative_size;crossed_quote", "ask_sz", "-2.0"),
        ("4", "unparseable_number", "bid_px", "abc"),
        ("5", "off_tick_grid", "ask_px", "100.3"),
    ]
    # Event rows carry their fields (NaN written empty); rejects carry the raw record.
    assert lines[0]["bid_px"] == "101.0" and lines[0]["kind"] == "quote" and lines[0]["price"] == ""
    assert lines[1]["bid_px"] == "abc" and json.loads(lines[1]["raw"]) == {"ts_exch": "1", "bid_px": "abc"}
    assert "multiple of tick_size 0.25" in lines[2]["message"] and "tick_size" in lines[2]["fix"]


def test_clean_run_writes_header_only_file_and_no_partial(tmp_path):
    acc, rep = run([ParsedChunk(quotes(3), [1, 2, 3])], tmp_path)
    assert rep.ok and rep.quarantine_path == str(tmp_path / "q.csv")
    assert read_q(tmp_path / "q.csv") == [] and not list(tmp_path.glob("*.partial"))


def test_default_quarantine_path_and_abort_removes_partial(tmp_path):
    src = tmp_path / "feed.csv"
    ev = quotes(2)
    ev["bid_px"][0] = 101.0
    with pytest.raises(KeyError):
        with Validator(src, TABLE, mode="quarantine", now_ns=NOW) as v:
            v.check(ParsedChunk(ev, [1, 2]))
            assert (tmp_path / "feed.csv.quarantine.csv.partial").exists()
            raise KeyError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_strict_and_quarantine_agree_on_first_finding(tmp_path):
    ev = quotes(6)
    ev["ask_sz"][4] = -1.0
    ev["ts_exch"][2] = ev["ts_local"][2] + 1
    _, rep = run([ParsedChunk(ev, np.arange(1, 7))], tmp_path)
    v = Validator("t.csv", TABLE, now_ns=NOW)
    with pytest.raises(DataError) as info:
        v.check(ParsedChunk(ev, np.arange(1, 7)))
    assert info.value.findings[0] == rep.findings[0]
    assert info.value.findings[0].code == "local_before_exchange" and info.value.more == 1


# --- chunk boundaries --------------------------------------------------------------------------
def test_out_of_order_first_row_of_next_chunk(tmp_path):
    a, b = quotes(3), quotes(3, start=3)
    b["ts_local"][0] = a["ts_local"][1]  # equal to an earlier row: still below the max of chunk a
    b["ts_exch"][0] = b["ts_local"][0] - 5
    acc, rep = run([ParsedChunk(a, [1, 2, 3]), ParsedChunk(b, [4, 5, 6])], tmp_path)
    assert [(f.code, f.row, f.value) for f in rep.findings] == [("out_of_order", 4, int(a["ts_local"][1]))]
    assert str(int(a["ts_local"][2])) in rep.findings[0].message
    assert len(acc) == 5


def test_duplicate_first_row_of_next_chunk_and_strict_mode(tmp_path):
    a = quotes(3)
    b = quotes(2, start=3)
    b[0] = a[2]
    acc, rep = run([ParsedChunk(a, [1, 2, 3]), ParsedChunk(b, [4, 5])], tmp_path)
    assert [(f.code, f.row, f.field, f.value) for f in rep.findings] == [("duplicate_row", 4, None, 3)]
    v = Validator("t.csv", TABLE, now_ns=NOW)
    v.check(ParsedChunk(a, [1, 2, 3]))
    with pytest.raises(DataError, match="identical in every field to row 3"):
        v.check(ParsedChunk(b, [4, 5]))


def test_duplicate_of_a_duplicate_names_the_accepted_row(tmp_path):
    ev = quotes(4)
    ev[2] = ev[1]
    ev[3] = ev[1]
    _, rep = run([ParsedChunk(ev[:3], [1, 2, 3]), ParsedChunk(ev[3:], [4])], tmp_path)
    assert [(f.row, f.value) for f in rep.findings] == [(3, 2), (4, 2)]


def bars(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n bars as four events each (open/high/low/close) sharing the source row number."""
    ev = empty_events(4 * n)
    ev["ts_exch"] = T0 + np.arange(4 * n) * 1000
    ev["ts_local"] = ev["ts_exch"]
    ev["kind"] = KIND_BAR
    ev["price"] = 100.0 + np.tile([0.0, 1.0, -1.0, 0.5], n)
    return ev, np.repeat(np.arange(1, n + 1), 4)


def test_multi_event_row_is_quarantined_whole_and_counted_once(tmp_path):
    ev, rows = bars(3)
    ev["price"][6] = math.nan  # the low of bar 2
    acc, rep = run([ParsedChunk(ev, rows)], tmp_path)
    assert (rep.rows_in, rep.rows_accepted, rep.rows_quarantined) == (3, 2, 1)
    assert len(acc) == 8 and set(np.unique(acc["ts_exch"] - T0) // 4000) == {0, 2}
    (line,) = read_q(tmp_path / "q.csv")
    assert (line["row"], line["code"], line["field"]) == ("2", "non_finite", "price")
    assert [e["price"] for e in json.loads(line["raw"])][:2] == [100.0, 101.0]


def test_multi_event_row_out_of_order_does_not_raise_the_maximum(tmp_path):
    # Bar 2 starts below bar 1's close (bad) but ends far above; bar 3 is in order relative to
    # bar 1 and must be accepted: a rejected row never moves the running maximum.
    ev, rows = bars(3)
    ev["ts_local"][4:8] = ev["ts_local"][2] - 1 + np.array([0, 10**9, 2 * 10**9, 3 * 10**9])
    ev["ts_exch"][4:8] = ev["ts_local"][4:8]
    acc, rep = run([ParsedChunk(ev, rows)], tmp_path)
    assert [(f.code, f.row) for f in rep.findings] == [("out_of_order", 2)]
    assert rep.rows_accepted == 2 and len(acc) == 8


def test_identical_bars_are_duplicates_but_equal_prices_inside_a_bar_are_not(tmp_path):
    ev, rows = bars(3)
    ev["price"][0:4] = 100.0  # open = high = low = close: one row, four equal prices
    ev["ts_local"][0:4] = ev["ts_exch"][0:4] = T0
    ev[8:12] = ev[4:8]
    acc, rep = run([ParsedChunk(ev, rows)], tmp_path)
    assert [(f.code, f.row, f.value) for f in rep.findings] == [("duplicate_row", 3, 2)]


def test_chunk_that_splits_a_row_is_refused():
    ev, rows = bars(2)
    v = Validator("t.csv", None, now_ns=NOW)
    v.check(ParsedChunk(ev[:6], rows[:6]))
    with pytest.raises(ValueError, match="never split a row"):
        v.check(ParsedChunk(ev[6:], rows[6:]))


# --- property: oracle, conservation, chunking invariance --------------------------------------
def oracle(groups, lo, hi, duplicates):
    """Row-at-a-time statement of the rules. ``groups`` is a list of (row, events | None)."""
    dense = TABLE.dense_arrays()
    prev_max, prev = -(2**63), None
    accepted, verdict = [], {}
    for row, ev in groups:
        if ev is None:
            verdict[row] = "reject"
            continue
        hits, _ = stateless_checks(ev, lo_ns=lo, hi_ns=hi, known_ids=TABLE.ids,
                                   tick=dense["tick_size"], lot=dense["lot_size"])
        if len(hits):
            verdict[row] = "stateless"
            continue
        if duplicates == "flag" and prev is not None and len(prev) == len(ev) and all(
            all((a[f] == b[f]) or (a[f] != a[f] and b[f] != b[f]) for f in EVENT_FIELDS) for a, b in zip(prev, ev)
        ):
            verdict[row] = "duplicate_row"  # checked first: a repeated bar is also out of order
            continue
        run_max, ok = prev_max, True
        for t in ev["ts_local"].tolist():
            ok &= t >= run_max
            run_max = max(run_max, t)
        if not ok:
            verdict[row] = "out_of_order"
            continue
        prev_max, prev = run_max, ev
        accepted.append(ev)
        verdict[row] = "ok"
    return accepted, verdict


_GROUP = st.tuples(
    st.sampled_from([1, 1, 1, 4]),  # events per source row (4: a bar)
    st.sampled_from(["ok", "ok", "ok", "crossed", "back", "jump", "dup", "same_ts", "reject", "nan"]),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(st.lists(_GROUP, max_size=25), st.lists(st.integers(0, 30), max_size=4),
       st.sampled_from(["flag", "allow"]))
def test_validator_matches_oracle_and_conserves_counts_for_any_chunking(tmp_path, spec, cuts, duplicates):
    lo, hi = plausible_window(NOW)
    groups, t, prev = [], T0, None
    for row, (size, what) in enumerate(spec, start=1):
        if what == "reject":
            groups.append((row, None))
            continue
        if what == "dup" and prev is not None:
            ev = prev.copy()
        else:
            t += 1000
            ev = quotes(size, start=row)
            ev["ts_local"] = t + np.arange(size)
            ev["ts_exch"] = ev["ts_local"] - 7
            if what == "same_ts":
                ev["ts_local"] = t = t - 1000
                ev["ts_exch"] = t - 7
            elif what == "back":
                ev["ts_local"] -= 3500
                ev["ts_exch"] -= 3500
            elif what == "jump":  # starts below the max, ends far above it
                ev["ts_local"][0] -= 3500
                ev["ts_exch"][0] -= 3500
                ev["ts_local"][-1] += 10**6
            elif what == "crossed":
                ev["bid_px"][-1] = 200.0
            elif what == "nan":
                ev["ask_sz"][0] = math.nan
            t = max(t, int(ev["ts_local"].max()))
        prev = ev
        groups.append((row, ev))
    accepted, verdict = oracle(groups, lo, hi, duplicates)
    for v in set(verdict.values()):
        event(v)

    bounds = sorted({0, len(groups), *[min(c, len(groups)) for c in cuts]})
    reports, outputs, files = [], [], []
    for k, chunking in enumerate([[0, len(groups)], bounds]):
        chunks = []
        for a, b in zip(chunking[:-1], chunking[1:]):
            part = groups[a:b]
            evs = [g for _, g in part if g is not None]
            rows = [r for r, g in part if g is not None for _ in range(len(g))]
            chunks.append(ParsedChunk(np.concatenate(evs) if evs else empty_events(0),
                                      np.array(rows, dtype=np.int64), [reject(r) for r, g in part if g is None]))
        acc, rep = run(chunks, tmp_path, f"q{k}.csv", duplicates=duplicates)
        assert rep.rows_in == rep.rows_accepted + rep.rows_quarantined == len(groups)
        reports.append(json.dumps({**rep.to_dict(), "quarantine_path": None}, allow_nan=False))
        outputs.append(acc.tobytes())
        files.append((tmp_path / f"q{k}.csv").read_bytes())
    assert reports[0] == reports[1] and outputs[0] == outputs[1] and files[0] == files[1]

    want = np.concatenate(accepted) if accepted else empty_events(0)
    assert outputs[0] == want.tobytes()
    assert json.loads(reports[0])["rows_accepted"] == sum(v == "ok" for v in verdict.values())
    lines = read_q(tmp_path / "q0.csv")
    assert [int(r["row"]) for r in lines] == [r for r, v in verdict.items() if v != "ok"]
    for line in lines:
        v = verdict[int(line["row"])]
        if v in ("out_of_order", "duplicate_row"):
            assert line["code"] == v
        elif v == "reject":
            assert line["code"] == "unparseable_number"


# --- through files: CSV reader -> loader ---------------------------------------------------------
from tickguard.data.loader import iter_load, load, validate_file  # noqa: E402

HEADER = list(EVENT_FIELDS)


def row(i: int, **change) -> dict[str, object]:
    ts = T0 + i * 1_000_000
    return {"ts_exch": ts, "ts_local": ts + 10_000, "instrument": 0, "kind": "quote", "side": 0, "level": 0,
            "price": "", "size": "", "bid_px": 100.0, "bid_sz": i, "ask_px": 100.25, "ask_sz": 5, **change}


def write_csv(path, rows, header=HEADER):
    path.write_text("\n".join([",".join(header)] + [",".join(str(r[h]) for h in header) for r in rows]) + "\n")
    return path


def messy_file(tmp_path):
    rows = [row(i) for i in range(1, 11)]
    rows[1]["bid_px"] = 100.5  # row 2: crossed
    rows[3] = dict(rows[2])  # row 4: duplicate of row 3 (first row of the 2nd chunk of 3)
    rows[6].update(ts_local=rows[5]["ts_local"] - 1, ts_exch=rows[5]["ts_exch"] - 20_000)  # row 7: out of order
    rows[7]["ask_sz"] = "x"  # row 8: does not parse
    rows[8].update(bid_px=-1, ask_sz=-2)  # row 9: two problems, one quarantine line
    return write_csv(tmp_path / "messy.csv", rows)


def test_chunk_size_does_not_change_anything(tmp_path):
    path = messy_file(tmp_path)
    out = {}
    for n in (1, 3, 10_000):
        q = tmp_path / f"q{n}.csv"
        res = load(path, time_unit="ns", now_ns=NOW, instruments=TABLE, mode="quarantine",
                   quarantine_path=q, chunk_rows=n)
        out[n] = (res.events.tobytes(), json.dumps({**res.report.to_dict(), "quarantine_path": None}),
                  q.read_bytes())
    assert out[1] == out[3] == out[10_000]
    rep = json.loads(out[3][1])
    assert (rep["rows_in"], rep["rows_accepted"], rep["rows_quarantined"]) == (10, 5, 5)
    assert [(f["code"], f["row"]) for f in rep["findings"]] == [
        ("crossed_quote", 2), ("duplicate_row", 4), ("out_of_order", 7), ("unparseable_number", 8),
        ("non_positive_price", 9), ("negative_size", 9)]
    lines = read_q(tmp_path / "q3.csv")
    assert [(r["row"], r["code"]) for r in lines] == [
        ("2", "crossed_quote"), ("4", "duplicate_row"), ("7", "out_of_order"), ("8", "unparseable_number"),
        ("9", "non_positive_price;negative_size")]


def test_first_row_of_a_chunk_is_checked_against_the_previous_chunk(tmp_path):
    # chunk_rows=3: row 4 opens the second chunk and repeats row 3; row 7 opens the third and is
    # below the running maximum of chunk 2.
    rows = [row(i) for i in range(1, 9)]
    rows[3] = dict(rows[2])
    rows[6].update(ts_local=rows[4]["ts_local"], ts_exch=rows[4]["ts_exch"])
    path = write_csv(tmp_path / "f.csv", rows)
    with pytest.raises(DataError) as info:
        load(path, time_unit="ns", now_ns=NOW, chunk_rows=3, max_findings=5)
    assert [(f.code, f.row) for f in info.value.findings] == [("duplicate_row", 4), ("out_of_order", 7)]
    assert info.value.more == 0 and "at least" not in str(info.value)  # fewer than 5: all were read


def test_strict_stops_reading_quarantine_goes_on(tmp_path):
    path = messy_file(tmp_path)
    seen = []
    with pytest.raises(DataError) as info:
        for chunk in iter_load(path, time_unit="ns", now_ns=NOW, chunk_rows=3, max_findings=2):
            seen.append(len(chunk))
    assert [(f.code, f.row) for f in info.value.findings] == [("crossed_quote", 2), ("duplicate_row", 4)]
    assert seen == [2] and "at least 2 problem(s)" in str(info.value)
    assert not (tmp_path / "messy.csv.quarantine.csv").exists()  # strict writes no side file
    rep = validate_file(path, time_unit="ns", now_ns=NOW, chunk_rows=3)
    assert rep.quarantine_path == str(path) + ".quarantine.csv" and len(read_q(rep.quarantine_path)) == 5
    assert "negative_size" in str(rep) and rep.counts_by_code["negative_size"] == 1


def test_abandoned_stream_leaves_no_quarantine_file(tmp_path):
    path = messy_file(tmp_path)
    stream = iter_load(path, time_unit="ns", now_ns=NOW, chunk_rows=3, mode="quarantine")
    it = iter(stream)
    next(it)
    it.close()  # consumer stops early: no half-written side file stays behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["messy.csv"]


def test_bar_file_quarantines_whole_bar_once(tmp_path):
    header = ["time", "open", "high", "low", "close", "volume"]
    t = [f"2023-11-14T22:{m:02d}:00Z" for m in range(14, 19)]
    bars_ = [[t[0], 100, 101, 99.5, 100.5, 10], [t[1], 100.5, 101, 100, 100.3, 8],  # 100.3 off tick
             [t[2], 100.5, 101, 100, 100.75, 8], [t[2], 100.5, 101, 100, 100.75, 8],  # a repeated bar
             [t[4], 100, 100, 100, 100, 0]]  # no volume: fine
    path = tmp_path / "bars.csv"
    path.write_text("\n".join([",".join(header)] + [",".join(map(str, b)) for b in bars_]) + "\n")
    res = load(path, preset="bars:1min", instrument=0, instruments=TABLE, now_ns=NOW, mode="quarantine")
    rep = res.report
    assert (rep.rows_in, rep.rows_accepted, rep.rows_quarantined) == (5, 3, 2)
    assert len(res.events) == 12
    lines = read_q(rep.quarantine_path)
    assert [(r["row"], r["code"], r["field"], r["value"]) for r in lines] == [
        ("2", "off_tick_grid", "price", "100.3"), ("4", "duplicate_row", "", "3")]
    assert [e["price"] for e in json.loads(lines[0]["raw"])] == [100.5, 101.0, 100.0, 100.3]  # down bar: O-H-L-C
    assert rep.counts_by_code == {"off_tick_grid": 3, "duplicate_row": 1}  # price, bid_px, ask_px


# --- real data ---------------------------------------------------------------------------------
from pathlib import Path  # noqa: E402

LOBSTER = (Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lobster"
           / "AMZN_2012-06-21_34200000_57600000_message_1.csv")


@pytest.mark.skipif(not LOBSTER.exists(), reason="shared LOBSTER sample (../shared/data/lobster) not present")
def test_real_lobster_day_is_clean_except_identical_prints(tmp_path):
    import pandas as pd

    from tickguard.data.lobster import read_lobster

    ev, table, _ = read_lobster(LOBSTER)
    rows = np.arange(1, len(ev) + 1)
    v = Validator("amzn", table, mode="quarantine", quarantine_path=tmp_path / "q.csv", duplicates="allow")
    assert len(v.check(ParsedChunk(ev, rows))) == len(ev)
    rep = v.finish()
    # Empty book sides (NaN price, size 0) pass, midpoint executions (half-cent trades) pass.
    assert rep.ok and rep.rows_accepted == len(ev)
    # With duplicates flagged, exactly the events equal to the one before are set aside
    # (independent count with pandas; LOBSTER has several executions with one size, price, ns).
    df = pd.DataFrame({name: ev[name] for name in EVENT_FIELDS})
    prev = df.shift()
    same = ((df == prev) | (df.isna() & prev.isna())).all(axis=1)
    v = Validator("amzn", table, mode="quarantine", quarantine_path=tmp_path / "q2.csv")
    v.check(ParsedChunk(ev, rows))
    rep = v.finish()
    assert rep.counts_by_code == {"duplicate_row": int(same.sum())} and int(same.sum()) > 0
