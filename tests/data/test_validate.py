"""Row checks and strict validation: one broken input per check, an independent oracle, and the
same checks reached through real files (CSV reader -> loader)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickguard.data.checks import CODES, GRID_TOL, TIME_UNITS, plausible_window, stateless_checks
from tickguard.data.errors import DataError, Finding
from tickguard.data.parsed import ParsedChunk, Reject
from tickguard.data.schema import (
    EVENT_FIELDS,
    KIND_BAR,
    KIND_CONTROL,
    KIND_DEPTH,
    KIND_LAST_IN_BATCH,
    KIND_QUOTE,
    KIND_TRADE,
    Instrument,
    InstrumentTable,
    empty_events,
)
from tickguard.data.validate import Validator

T0 = 1_700_000_000 * 10**9  # 2023-11-14T22:13:20Z
NOW = T0 + 10**12
TABLE = InstrumentTable([Instrument(0, "ES", tick_size=0.25, lot_size=1.0),
                         Instrument(1, "XY", tick_size=0.01, lot_size=0.0)])


def quotes(n: int) -> np.ndarray:
    """n clean quotes of instrument 0, 1 ms apart, 10 us feed latency."""
    ev = empty_events(n)
    ev["ts_exch"] = T0 + np.arange(n) * 1_000_000
    ev["ts_local"] = ev["ts_exch"] + 10_000
    ev["kind"] = KIND_QUOTE
    ev["bid_px"], ev["ask_px"] = 100.0, 100.25
    ev["bid_sz"], ev["ask_sz"] = np.arange(n) + 1.0, 5.0  # sizes differ: no accidental duplicates
    return ev


def chunk(ev: np.ndarray, first_row: int = 1, rejects=()) -> ParsedChunk:
    return ParsedChunk(ev, np.arange(first_row, first_row + len(ev)), list(rejects))


def strict_error(ev: np.ndarray, table=TABLE, **kw) -> DataError:
    v = Validator("t.csv", table, now_ns=NOW, **kw)
    with pytest.raises(DataError) as info:
        v.check(chunk(ev))
        v.finish()
    return info.value


def only_finding(ev: np.ndarray, table=TABLE, **kw) -> Finding:
    err = strict_error(ev, table, **kw)
    f = err.findings[0]
    assert f.fix in str(err) and f.message in str(err)
    return f


def test_clean_quotes_pass_and_report_counts():
    v = Validator("t.csv", TABLE, now_ns=NOW)
    out = v.check(chunk(quotes(5)))
    rep = v.finish()
    assert len(out) == 5 and rep.ok
    assert (rep.rows_in, rep.rows_accepted, rep.rows_quarantined) == (5, 5, 0)
    assert rep.counts_by_code == {} and rep.findings == []


# --- one broken row per check -----------------------------------------------------------------
@pytest.mark.parametrize("field", ["bid_px", "ask_px", "bid_sz", "ask_sz"])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_quote_field(field, bad):
    ev = quotes(4)
    ev[field][2] = bad
    f = only_finding(ev)
    assert (f.code, f.row, f.field) == ("non_finite", 3, field)
    assert f.value != f.value if math.isnan(bad) else f.value == bad


def test_non_finite_depends_on_kind():
    ev = quotes(3)
    ev["kind"][1] = KIND_TRADE
    ev["price"][1], ev["size"][1] = 100.0, math.nan  # a trade without size
    f = only_finding(ev)
    assert (f.code, f.row, f.field) == ("non_finite", 2, "size")
    # A bar needs a price but not a size; a control row needs neither.
    ev = quotes(3)
    ev["kind"][1], ev["price"][1] = KIND_BAR, 100.0
    ev["kind"][2] = KIND_CONTROL
    ev[["bid_px", "ask_px", "bid_sz", "ask_sz"]][1:] = (math.nan,) * 4
    v = Validator("t.csv", TABLE, now_ns=NOW)
    assert len(v.check(chunk(ev))) == 3 and v.finish().ok


def test_empty_quote_side_is_allowed_but_half_filled_is_not():
    ev = quotes(4)
    ev["ask_px"][1], ev["ask_sz"][1] = math.nan, 0.0  # LOBSTER-style empty ask
    ev["bid_px"][2], ev["bid_sz"][2] = math.nan, math.nan  # empty bid
    v = Validator("t.csv", TABLE, now_ns=NOW)
    assert len(v.check(chunk(ev))) == 4 and v.finish().ok
    ev["bid_sz"][2] = 3.0  # a size without a price
    f = only_finding(ev)
    assert (f.code, f.row, f.field) == ("non_finite", 3, "bid_px") and "missing" in f.message


def test_zero_volume_bar_is_fine_but_zero_size_at_a_quoted_price_is_not():
    ev = quotes(3)
    ev["kind"][1] = KIND_BAR | KIND_QUOTE  # how bars.py writes a bar point: sizes = volume
    ev["price"][1] = 100.0
    ev["bid_sz"][1] = ev["ask_sz"][1] = ev["size"][1] = 0.0
    v = Validator("t.csv", TABLE, now_ns=NOW)
    assert len(v.check(chunk(ev))) == 3 and v.finish().ok
    ev["kind"][1] = KIND_QUOTE
    f = only_finding(ev)
    assert (f.code, f.row, f.field, f.value) == ("non_positive_size", 2, "bid_sz", 0.0)


def test_non_positive_price():
    ev = quotes(3)
    ev["bid_px"][1] = 0.0
    f = only_finding(ev)
    assert (f.code, f.row, f.field, f.value) == ("non_positive_price", 2, "bid_px", 0.0)


def test_negative_size():
    ev = quotes(3)
    ev["ask_sz"][2] = -3.0
    f = only_finding(ev)
    assert (f.code, f.row, f.field, f.value) == ("negative_size", 3, "ask_sz", -3.0)


def test_trade_of_size_zero_but_depth_delete_ok():
    ev = quotes(3)
    ev["kind"][1] = KIND_DEPTH
    ev["price"][1], ev["size"][1], ev["side"][1] = 100.0, 0.0, 1  # delete a level: fine
    ev["kind"][2] = KIND_TRADE
    ev["price"][2], ev["size"][2] = 100.25, 0.0
    f = only_finding(ev)
    assert (f.code, f.row, f.field, f.value) == ("non_positive_size", 3, "size", 0.0)


def test_crossed_quote_and_locked_is_only_counted():
    ev = quotes(4)
    ev["bid_px"][1] = ev["ask_px"][1]  # locked: a statistic, not a finding
    ev["bid_px"][3] = 100.5  # crossed
    f = only_finding(ev)
    assert (f.code, f.row, f.field, f.value) == ("crossed_quote", 4, "bid_px", 100.5)
    assert "100.25" in f.message
    ev = quotes(4)
    ev["bid_px"][[1, 2]] = 100.25
    v2 = Validator("t.csv", TABLE, now_ns=NOW)
    v2.check(chunk(ev))
    rep = v2.finish()
    assert rep.ok and rep.locked_quotes == 2


def test_out_of_order():
    ev = quotes(4)
    ev["ts_local"][2] = ev["ts_local"][0] - 1
    ev["ts_exch"][2] = ev["ts_local"][2] - 5  # keep local >= exch so only ordering is wrong
    f = only_finding(ev)
    assert (f.code, f.row, f.field, f.value) == ("out_of_order", 3, "ts_local", int(ev["ts_local"][2]))
    assert str(int(ev["ts_local"][1])) in f.message  # the running maximum it was compared with


def test_equal_ts_local_is_in_order():
    ev = quotes(3)
    ev["ts_local"][:] = ev["ts_local"][0]
    ev["ts_exch"][:] = ev["ts_exch"][0]
    v = Validator("t.csv", TABLE, now_ns=NOW)
    assert len(v.check(chunk(ev))) == 3 and v.finish().ok


def test_duplicate_row_flag_and_allow():
    ev = quotes(4)
    ev[2] = ev[1]
    f = only_finding(ev)
    assert (f.code, f.row, f.field, f.value) == ("duplicate_row", 3, None, 2)
    assert "duplicates='allow'" in f.fix
    v = Validator("t.csv", TABLE, now_ns=NOW, duplicates="allow")
    assert len(v.check(chunk(ev))) == 4 and v.finish().ok


def test_duplicate_compares_nan_as_equal_and_every_field():
    ev = quotes(3)
    ev[1] = ev[0]
    ev["level"][1] = 1  # differs in one field only -> not a duplicate
    v = Validator("t.csv", TABLE, now_ns=NOW)
    assert len(v.check(chunk(ev))) == 3  # price/size are NaN in both rows: equal, level differs
    v.finish()


def test_local_before_exchange():
    ev = quotes(3)
    ev["ts_exch"][1] = ev["ts_local"][1] + 1
    f = only_finding(ev)
    assert (f.code, f.row, f.field, f.value) == ("local_before_exchange", 2, "ts_local", int(ev["ts_local"][1]))


@pytest.mark.parametrize(
    ("read_as", "want_unit", "words"),
    [
        ("ns", "ms", "milliseconds read as nanoseconds"),  # ms numbers read as ns: 1e6 too small
        ("ns", "s", "seconds read as nanoseconds"),
        ("ns", "us", "microseconds read as nanoseconds"),
        ("us", "ms", "milliseconds read as microseconds"),
        ("ms", "s", "seconds read as milliseconds"),
    ],
)
def test_unit_mixup(read_as, want_unit, words):
    # The file holds T0 in `want_unit`; the reader multiplied the number by the ns of `read_as`.
    ev = quotes(2)
    wrong = T0 // TIME_UNITS[want_unit] * TIME_UNITS[read_as]
    ev["ts_exch"][1] = wrong
    f = only_finding(ev, time_unit=read_as)
    assert (f.code, f.row, f.field, f.value) == ("unit_mixup", 2, "ts_exch", wrong)
    assert words in f.message and f.fix == f"pass time_unit='{want_unit}'"


def test_implausible_time_without_unit_hint():
    ev = quotes(3)
    ev["ts_exch"][0] = ev["ts_local"][0] = 0  # 1970: no power of 1000 makes 0 plausible
    ev["ts_exch"][2] = ev["ts_local"][2] = NOW + 2 * 86_400 * 10**9  # 2 days ahead: not a unit problem
    err = strict_error(ev, max_findings=5)
    got = [(f.code, f.row, f.field) for f in err.findings]
    assert got == [("implausible_time", r, name) for r in (1, 3) for name in ("ts_exch", "ts_local")]
    assert "1970-01-01" in err.findings[0].message
    lo, hi = plausible_window(NOW)
    assert lo == np.datetime64("1980-01-01", "ns").astype(np.int64) and hi == NOW + 86_400 * 10**9


def test_off_tick_grid_and_tolerance():
    ev = quotes(4)
    ev["ask_px"][1] = 100.3  # tick 0.25
    f = only_finding(ev)
    assert (f.code, f.row, f.field, f.value) == ("off_tick_grid", 2, "ask_px", 100.3)
    assert "0.25" in f.message
    # Decimal artefacts are within tolerance: 0.1 + 0.2 is not exactly 0.3 in binary, and a
    # price of 1e6 on a 0.01 grid divides to ~1e8 ticks with a rounding error far above 1e-6*eps.
    ev = quotes(3)
    ev["instrument"] = 1
    ev["bid_px"] = [0.1 + 0.2, 1e6 + 0.01, 123456.78]
    ev["ask_px"] = ev["bid_px"] + 0.01
    v = Validator("t.csv", TABLE, now_ns=NOW)
    assert len(v.check(chunk(ev))) == 3 and v.finish().ok


def test_trades_may_print_at_the_midpoint():
    ev = quotes(3)
    ev["kind"][1:] = KIND_TRADE
    ev["price"][1:], ev["size"][1:] = 100.125, 1.0  # half a 0.25 tick: a midpoint execution
    ev["bid_px"][1:] = ev["ask_px"][1:] = ev["bid_sz"][1:] = ev["ask_sz"][1:] = math.nan
    v = Validator("t.csv", TABLE, now_ns=NOW)
    assert len(v.check(chunk(ev))) == 3 and v.finish().ok
    ev["price"][2] = 100.0625  # a quarter tick is off even for a trade
    f = only_finding(ev)
    assert (f.code, f.row, f.field, f.value) == ("off_tick_grid", 3, "price", 100.0625)


def test_off_lot_grid_skips_zero_lot():
    ev = quotes(3)
    ev["bid_sz"][0] = 1.5  # lot 1
    f = only_finding(ev)
    assert (f.code, f.row, f.field, f.value) == ("off_lot_grid", 1, "bid_sz", 1.5)
    ev["instrument"] = 1  # lot_size 0: not checked
    ev["bid_px"], ev["ask_px"] = 100.01, 100.02
    v = Validator("t.csv", TABLE, now_ns=NOW)
    assert len(v.check(chunk(ev))) == 3 and v.finish().ok


def test_unknown_instrument_only_with_a_table():
    ev = quotes(3)
    ev["instrument"][1] = 7
    f = only_finding(ev)
    assert (f.code, f.row, f.field, f.value) == ("unknown_instrument", 2, "instrument", 7)
    v = Validator("t.csv", None, now_ns=NOW)  # no table: ids and grids are not checked
    assert len(v.check(chunk(ev))) == 3 and v.finish().ok


@pytest.mark.parametrize(("kind", "words"), [(0, "no type bit"), (0x0041, "unknown bits"),
                                             (int(KIND_LAST_IN_BATCH), "no type bit")])
def test_unknown_kind(kind, words):
    ev = quotes(3)
    ev["kind"][2] = kind
    f = only_finding(ev)
    assert (f.code, f.row, f.field, f.value) == ("unknown_kind", 3, "kind", kind)
    assert words in f.message


def test_quote_with_last_in_batch_is_fine():
    ev = quotes(2)
    ev["kind"][1] = KIND_QUOTE | KIND_LAST_IN_BATCH
    v = Validator("t.csv", TABLE, now_ns=NOW)
    assert len(v.check(chunk(ev))) == 2 and v.finish().ok


# --- strict mode -------------------------------------------------------------------------------
def test_strict_first_finding_says_at_least_and_stops():
    ev = quotes(6)
    ev["bid_px"][[1, 3, 5]] = 101.0
    v = Validator("t.csv", TABLE, now_ns=NOW)
    with pytest.raises(DataError) as info:
        v.check(chunk(ev))
    err = info.value
    assert [f.row for f in err.findings] == [2] and err.more == 2
    assert "at least 3 problem(s)" in str(err) and "mode='quarantine'" in str(err)
    with pytest.raises(RuntimeError):  # the validator is spent
        v.check(chunk(quotes(1), 10))


def test_strict_max_findings_collects_across_chunks_and_counts_rejects():
    rej = Reject(Finding("unparseable_number", "t.csv", 4, "bid_px", "1,0", "not a number", "use '.'"),
                 {"bid_px": "1,0"})
    a = quotes(3)
    a["bid_px"][1] = 101.0
    b = quotes(6)[3:]
    b["ask_sz"][1] = -1.0
    v = Validator("t.csv", TABLE, now_ns=NOW, max_findings=3)
    v.check(ParsedChunk(a, [1, 2, 3], []))
    with pytest.raises(DataError) as info:
        v.check(ParsedChunk(b, [5, 6, 7], [rej]))
    got = [(f.code, f.row) for f in info.value.findings]
    assert got == [("crossed_quote", 2), ("unparseable_number", 4), ("negative_size", 6)]
    assert info.value.more == 0 and "at least 3" in str(info.value)


def test_strict_fewer_than_max_raises_at_finish_with_exact_count():
    ev = quotes(4)
    ev["bid_px"][2] = 101.0
    v = Validator("t.csv", TABLE, now_ns=NOW, max_findings=10)
    assert len(v.check(chunk(ev))) == 3
    with pytest.raises(DataError) as info:
        v.finish()
    assert len(info.value.findings) == 1 and "at least" not in str(info.value)


def test_several_problems_on_one_row_are_listed_in_code_order():
    ev = quotes(2)
    ev["instrument"][1] = 9
    ev["bid_px"][1] = -1.0
    ev["ask_sz"][1] = math.inf
    err = strict_error(ev, max_findings=10)
    # Unknown instrument: no grid checks (no tick to check against); bid -1 < ask: not crossed.
    assert [(f.code, f.row, f.field) for f in err.findings] == [
        ("unknown_instrument", 2, "instrument"), ("non_finite", 2, "ask_sz"), ("non_positive_price", 2, "bid_px"),
    ]


@pytest.mark.parametrize("kw", [{"mode": "lenient"}, {"duplicates": "drop"}, {"max_findings": 0},
                                {"time_unit": "minutes"}])
def test_bad_options(kw):
    with pytest.raises(ValueError):
        Validator("t.csv", None, **kw)


def test_report_is_strict_json_and_readable(tmp_path):
    import json

    ev = quotes(5)
    ev["ask_px"][3] = 100.3
    ev["bid_sz"][4] = math.nan  # a NaN value must not leak into JSON
    v = Validator("t.csv", TABLE, now_ns=NOW, mode="quarantine", quarantine_path=tmp_path / "q.csv")
    v.check(chunk(ev))
    rep = v.finish()
    d = json.loads(json.dumps(rep.to_dict(), allow_nan=False))
    assert d["counts_by_code"] == {"non_finite": 1, "off_tick_grid": 1} and d["ok"] is False
    assert [f["value"] for f in d["findings"]] == [100.3, "nan"]
    text = str(rep)
    assert "rows quarantined" in text and "off_tick_grid" in text and str(tmp_path / "q.csv") in text
    assert (rep.rows_in, rep.rows_accepted, rep.rows_quarantined) == (5, 3, 2)


# --- independent oracle for the stateless checks ---------------------------------------------
def oracle(ev, table, lo, hi, unit_ns):
    """Plain-Python, row-at-a-time restatement of the rules (exact rational grid arithmetic)."""
    known_bits = 0x3F | 0x100
    out = set()
    for i, r in enumerate(ev):
        kind = int(r["kind"])
        if kind & ~known_bits or not kind & 0xFF:
            out.add((i, "unknown_kind", "kind"))
        inst = table[int(r["instrument"])] if int(r["instrument"]) in table else None
        if inst is None:
            out.add((i, "unknown_instrument", "instrument"))
        for name in ("ts_exch", "ts_local"):
            v = int(r[name])
            if not lo <= v <= hi:
                units = [u for u, ns in TIME_UNITS.items() if ns != unit_ns and lo <= v * ns / unit_ns <= hi]
                out.add((i, "unit_mixup" if units else "implausible_time", name))
        need = {"price": kind & 0x16, "size": kind & 0x06, "bid_px": kind & 1, "ask_px": kind & 1,
                "bid_sz": kind & 1, "ask_sz": kind & 1}
        for name, req in need.items():
            v = float(r[name])
            if name in ("bid_px", "bid_sz", "ask_px", "ask_sz"):
                side = name[:3]
                px, sz = float(r[side + "_px"]), float(r[side + "_sz"])
                if math.isnan(px) and (math.isnan(sz) or sz == 0):  # an empty book side
                    req = 0
            if math.isinf(v) or (req and math.isnan(v)):
                out.add((i, "non_finite", name))
        for name in ("price", "bid_px", "ask_px"):
            v = float(r[name])
            if math.isfinite(v) and v <= 0:
                out.add((i, "non_positive_price", name))
            if inst is not None and inst.tick_size > 0 and math.isfinite(v):
                step = Fraction(inst.tick_size) / (2 if name == "price" and kind & 0x12 else 1)
                q = Fraction(v) / step
                if abs(q - round(q)) > Fraction(GRID_TOL) + Fraction(1e-12):
                    out.add((i, "off_tick_grid", name))
        for name in ("size", "bid_sz", "ask_sz"):
            v = float(r[name])
            if math.isfinite(v) and v < 0:
                out.add((i, "negative_size", name))
            if inst is not None and inst.lot_size > 0 and math.isfinite(v) and not (name == "size" and kind & 0x10):
                q = Fraction(v) / Fraction(inst.lot_size)
                if abs(q - round(q)) > Fraction(GRID_TOL) + Fraction(1e-12):
                    out.add((i, "off_lot_grid", name))
        if kind & 2 and float(r["size"]) == 0:
            out.add((i, "non_positive_size", "size"))
        for side in ("bid", "ask"):
            if kind & 1 and not kind & 0x10 and math.isfinite(float(r[side + "_px"])) and float(r[side + "_sz"]) == 0:
                out.add((i, "non_positive_size", side + "_sz"))
        if float(r["bid_px"]) > float(r["ask_px"]):
            out.add((i, "crossed_quote", "bid_px"))
        if int(r["ts_local"]) < int(r["ts_exch"]):
            out.add((i, "local_before_exchange", "ts_local"))
    return out


_PX = st.one_of(st.integers(1, 800).map(lambda k: k * 0.25), st.integers(1, 800).map(lambda k: k * 0.25 + 0.1),
                st.integers(1, 800).map(lambda k: k * 0.25 + 0.125),  # a midpoint: fine for trades only
                st.sampled_from([0.0, -0.25, math.nan, math.inf, -math.inf]))
_SZ = st.one_of(st.integers(0, 50).map(float), st.sampled_from([0.5, -1.0, math.nan, math.inf]))
_TS = st.one_of(st.integers(T0, T0 + 10**10), st.sampled_from([0, T0 // 10**6, T0 // 10**9, T0 // 10**3,
                                                                NOW + 10**15, -5, 2**63 - 1]))
_ROW = st.fixed_dictionaries({
    "ts_exch": _TS, "ts_local": _TS, "instrument": st.sampled_from([0, 1, 7, -1]),
    "kind": st.sampled_from([1, 2, 4, 16, 17, 32, 0, 0x40, 0x101, 3, 0x200]),
    "price": _PX, "size": _SZ, "bid_px": _PX, "bid_sz": _SZ, "ask_px": _PX, "ask_sz": _SZ,
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ROW, min_size=0, max_size=12), st.sampled_from(list(TIME_UNITS)))
def test_stateless_checks_match_oracle(rows, unit):
    ev = empty_events(len(rows))
    for i, r in enumerate(rows):
        for k, v in r.items():
            ev[k][i] = v
    lo, hi = plausible_window(NOW)
    dense = TABLE.dense_arrays()
    hits, locked = stateless_checks(ev, lo_ns=lo, hi_ns=hi, unit_ns=TIME_UNITS[unit], known_ids=TABLE.ids,
                                    tick=dense["tick_size"], lot=dense["lot_size"])
    got = {(int(h["idx"]), CODES[h["code"]], EVENT_FIELDS[h["field"]]) for h in hits}
    assert got == oracle(ev, TABLE, lo, hi, TIME_UNITS[unit])
    assert len(got) == len(hits)  # no finding reported twice
    want_locked = [np.isfinite(r["bid_px"]) and r["bid_px"] == r["ask_px"] for r in ev]
    assert locked.tolist() == want_locked


# --- the same checks through real files: CSV reader -> loader ---------------------------------
from tickguard.data.loader import LoadResult, iter_load, load, validate_file  # noqa: E402

HEADER = list(EVENT_FIELDS)


def base_row(i: int) -> dict[str, object]:
    """Data row i (1-based) of a clean quote file, epoch-ns timestamps."""
    ts = T0 + i * 1_000_000
    return {"ts_exch": ts, "ts_local": ts + 10_000, "instrument": 0, "kind": "quote", "side": 0, "level": 0,
            "price": "", "size": "", "bid_px": 100.0, "bid_sz": i, "ask_px": 100.25, "ask_sz": 5}


def write_csv(path, rows, header=HEADER, end="\n"):
    lines = [",".join(header)] + [",".join(str(r.get(h, "")) for h in header) for r in rows]
    path.write_text("\n".join(lines) + end)
    return path


def broken_file(tmp_path, change: dict, n: int = 5, row: int = 3):
    rows = [base_row(i) for i in range(1, n + 1)]
    rows[row - 1].update(change(rows) if callable(change) else change)
    return write_csv(tmp_path / "feed.csv", rows)


_TS3 = T0 + 3 * 1_000_000
FILE_CASES = {
    "non_finite": ({"bid_sz": ""}, "bid_sz", math.nan),
    "non_positive_price": ({"bid_px": "0"}, "bid_px", 0.0),
    "negative_size": ({"ask_sz": "-5"}, "ask_sz", -5.0),
    "non_positive_size": ({"kind": "trade", "price": 100.25, "size": 0, "bid_px": "", "bid_sz": "",
                           "ask_px": "", "ask_sz": ""}, "size", 0.0),
    "crossed_quote": ({"bid_px": 100.5}, "bid_px", 100.5),
    "out_of_order": ({"ts_exch": T0 + 1_000_000 - 5, "ts_local": T0 + 1_000_000}, "ts_local", T0 + 1_000_000),
    "duplicate_row": (lambda rows: dict(rows[1]), None, 2),
    "local_before_exchange": ({"ts_local": _TS3 - 1}, "ts_local", _TS3 - 1),
    "implausible_time": ({"ts_exch": 0, "ts_local": 0}, "ts_exch", 0),
    "off_tick_grid": ({"ask_px": 100.3}, "ask_px", 100.3),
    "off_lot_grid": ({"bid_sz": 1.5}, "bid_sz", 1.5),
    "unknown_instrument": ({"instrument": 7}, "instrument", 7),
    "unknown_kind": ({"kind": 0}, "kind", 0),
}


@pytest.mark.parametrize("code", sorted(FILE_CASES))
def test_broken_file_strict_names_code_row_field_value_and_fix(tmp_path, code):
    change, field, value = FILE_CASES[code]
    path = broken_file(tmp_path, change)
    with pytest.raises(DataError) as info:
        load(path, time_unit="ns", instruments=TABLE, now_ns=NOW)
    f = info.value.findings[0]
    assert (f.code, f.row, f.field) == (code, 3, field)
    assert f.value == value or (math.isnan(value) and math.isnan(f.value))
    assert f.file == str(path) and f.fix in str(info.value)
    # Quarantine mode: the same finding, the other four rows load.
    res = load(path, time_unit="ns", instruments=TABLE, now_ns=NOW, mode="quarantine")
    g = res.report.findings[0]
    assert (g.code, g.row, g.field, g.message) == (f.code, f.row, f.field, f.message) and len(res.events) == 4
    assert (res.report.rows_in, res.report.rows_accepted, res.report.rows_quarantined) == (5, 4, 1)


def test_clean_file_loads_with_sidecar_instruments(tmp_path):
    path = write_csv(tmp_path / "feed.csv", [base_row(i) for i in range(1, 6)])
    (tmp_path / "feed.csv.instruments.json").write_text(TABLE.to_json())
    res = load(path, time_unit="ns", now_ns=NOW)
    assert isinstance(res, LoadResult) and res.report.ok and res.instruments == TABLE
    assert res.events["bid_sz"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert res.events["ts_exch"][0] == T0 + 1_000_000
    (tmp_path / "feed.csv.instruments.json").write_text(InstrumentTable.single("ES", tick_size=0.5).to_json())
    with pytest.raises(DataError, match="off_tick_grid"):  # the sidecar's tick is used: 100.25 is off 0.5
        load(path, time_unit="ns", now_ns=NOW)


def test_file_in_milliseconds_read_as_nanoseconds(tmp_path):
    rows = [base_row(i) for i in range(1, 4)]
    for r in rows:
        r["ts_exch"], r["ts_local"] = r["ts_exch"] // 10**6, r["ts_local"] // 10**6
    path = write_csv(tmp_path / "ms.csv", rows)
    with pytest.raises(DataError) as info:
        load(path, time_unit="ns", now_ns=NOW)
    f = info.value.findings[0]
    assert (f.code, f.row, f.field) == ("unit_mixup", 1, "ts_exch")
    assert "looks like milliseconds read as nanoseconds" in f.message and f.fix == "pass time_unit='ms'"
    assert load(path, time_unit="ms", now_ns=NOW).report.ok


# --- parse-level problems from the reader, through the loader ----------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(DataError) as info:
        load(tmp_path / "nope.csv", time_unit="ns")
    assert info.value.findings[0].code == "missing_file"


def test_empty_file(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError) as info:
        validate_file(tmp_path / "empty.csv", time_unit="ns")
    assert info.value.findings[0].code == "empty_file"


def test_misnamed_column_says_did_you_mean(tmp_path):
    rows = [base_row(1)]
    rows[0]["bidpx"] = rows[0].pop("bid_px")
    path = write_csv(tmp_path / "feed.csv", rows, header=[h.replace("bid_px", "bidpx") for h in HEADER])
    with pytest.raises(DataError) as info:
        load(path, time_unit="ns")
    assert info.value.findings[0].field == "bidpx" and "Did you mean 'bid_px'?" in str(info.value)
    # Mapped columns get the same help.
    with pytest.raises(DataError) as info:
        load(path, time_unit="ns", columns={**{h: h for h in HEADER if h != "bid_px"}, "bid_px": "bid_px"})
    assert info.value.findings[0].code == "missing_column" and "Did you mean 'bidpx'?" in str(info.value)


PARSE_CASES = {
    "unparseable_number": ({"bid_px": "1O0.0"}, "1O0.0"),
    "unparseable_timestamp": ({"ts_local": "17000x"}, "17000x"),
    "unknown_kind": ({"kind": "qoute"}, "qoute"),
}


@pytest.mark.parametrize("code", sorted(PARSE_CASES))
def test_parse_rejects_are_findings(tmp_path, code):
    change, value = PARSE_CASES[code]
    path = broken_file(tmp_path, change)
    with pytest.raises(DataError) as info:
        load(path, time_unit="ns", now_ns=NOW)
    f = info.value.findings[0]
    assert (f.code, f.row, f.value) == (code, 3, value)
    rep = validate_file(path, time_unit="ns", now_ns=NOW)
    assert rep.counts_by_code == {code: 1} and rep.rows_quarantined == 1 and rep.rows_in == 5


def test_unknown_symbol_is_a_reader_reject(tmp_path):
    rows = [{**base_row(i), "symbol": "ES"} for i in range(1, 4)]
    for r in rows:
        del r["instrument"]
    rows[1]["symbol"] = "NQ"
    header = [h if h != "instrument" else "symbol" for h in HEADER]
    path = write_csv(tmp_path / "feed.csv", rows, header=header)
    rep = validate_file(path, time_unit="ns", now_ns=NOW, instruments=TABLE)
    assert rep.counts_by_code == {"unknown_instrument": 1}
    assert (rep.findings[0].row, rep.findings[0].value) == (2, "NQ")


def test_truncated_last_line(tmp_path):
    path = write_csv(tmp_path / "feed.csv", [base_row(i) for i in range(1, 4)], end="")
    path.write_text(path.read_text()[:-4])  # cut the last line mid-field, no newline
    with pytest.raises(DataError) as info:
        load(path, time_unit="ns", now_ns=NOW)
    f = info.value.findings[0]
    assert (f.code, f.row) == ("truncated_line", 3) and f.fix in str(info.value)
    res = load(path, time_unit="ns", now_ns=NOW, mode="quarantine")
    assert len(res.events) == 2 and res.report.rows_quarantined == 1


def test_iter_load_streams_and_reports(tmp_path):
    path = broken_file(tmp_path, {"bid_px": 100.5}, n=7)
    stream = iter_load(path, time_unit="ns", now_ns=NOW, mode="quarantine", chunk_rows=3)
    assert stream.report is None
    sizes = [len(c) for c in stream]
    assert sizes == [2, 3, 1] and stream.report.rows_in == 7 and stream.report.rows_quarantined == 1
    with pytest.raises(RuntimeError):
        iter(stream)
