"""Historical scenario library: every shipped TOML loads, keeps real and synthetic streams valid, and
reproduces the move its sources cite; user files get clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from test_stress_transforms import (  # shared helpers (validator + numpy asserts, L2 replay oracle, data)
    S, T0, TICK, TABLE1, assert_valid, book_top_mismatches, ctx_for, lobster, quotes, synth_l2,
)

from tickguard.data.schema import KIND_CONTROL, KIND_QUOTE, KIND_TRADE
from tickguard.engine.config import Latency, LatencyConfig
from tickguard.risk.stress import (
    FlashCrash, PriceGap, Scenario, TradingHalt, VolScale, apply, list_scenarios, load_scenario,
    scenario_latency,
)

# Cited day moves, written here independently of the TOML files (sources in the files too):
CITED = {
    # S&P 500 closed at 224.84, -20.47 %, on 19 Oct 1987 (TradersCommunity, 16 Mar 2020)
    "black_monday_1987": -0.2047,
    # S&P 500 fell 8.79 % to 1,106.42 on 29 Sep 2008 (ThinkAdvisor, 29 Sep 2008)
    "lehman_2008": -0.0879,
    # Dow -998.62 points or 9.2 % at the low of 6 May 2010 (CNBC, 'Anatomy of the Flash Crash')
    "flash_crash_2010": -0.092,
    # EUR/CHF 1.2011 -> 0.8597 on 15 Jan 2015 (Currency Matters, 16 Jan 2015)
    "chf_depeg_2015": 0.8597 / 1.2011 - 1,
    # S&P 500 closed at 2,386.13, -11.98 %, on 16 Mar 2020 (TradersCommunity, 16 Mar 2020)
    "covid_2020": -0.1198,
}
PRICE_LEGS = (PriceGap, FlashCrash)


def flat_hour() -> np.ndarray:
    """A constant 100.00 / 100.01 quote every 100 ms for an hour: the mid moves only by the stress."""
    n = 36_001
    ev = quotes([(0, 100.00, 500, 100.01, 500)] * n)
    ev["ts_exch"] = ev["ts_local"] = T0 + np.arange(n, dtype=np.int64) * (S // 10)
    return ev


def mids(ev: np.ndarray) -> np.ndarray:
    q = ev[((ev["kind"] & KIND_QUOTE) != 0) & np.isfinite(ev["bid_px"]) & np.isfinite(ev["ask_px"])]
    return 0.5 * (q["bid_px"] + q["ask_px"])


def price_path(scenario: Scenario) -> Scenario:
    """The transforms that move prices. Feed transforms (stale quotes, outages) may hide part of the
    move from the quotes, by design, so the cited move is checked on the price path alone."""
    return Scenario(tuple(t for t in scenario.transforms if isinstance(t, (*PRICE_LEGS, VolScale))))


def test_shipped_names():
    assert list_scenarios() == sorted(CITED)


@pytest.mark.parametrize("name", sorted(CITED))
def test_scenario_file_is_documented(name):
    sc = load_scenario(name)
    assert sc.name == name and len(sc.description) > 20
    assert sc.sources and all("http" in s for s in sc.sources)
    assert any(isinstance(t, PRICE_LEGS) for t in sc.transforms)


@pytest.mark.parametrize("which", ["synthetic", "lobster"])
@pytest.mark.parametrize("name", sorted(CITED))
def test_scenario_keeps_stream_valid(name, which):
    ev, table = synth_l2() if which == "synthetic" else lobster()
    before = ev.tobytes()
    out = apply(ev, load_scenario(name), seed=3, instruments=table)
    assert ev.tobytes() == before
    assert_valid(out, table, duplicates="flag" if which == "synthetic" else "allow")
    checked, bad = book_top_mismatches(out)
    assert checked > 100 and bad == 0


@pytest.mark.parametrize("name", sorted(CITED))
def test_cited_move_on_a_flat_market(name):
    ev = flat_hour()
    sc = load_scenario(name)
    legs = [t for t in sc.transforms if isinstance(t, PRICE_LEGS)]
    m = mids(apply(ev, price_path(sc), seed=0, instruments=TABLE1))
    m0 = 100.005
    # each leg moves the book by whole ticks (<= half a tick off), plus at most half a tick for the
    # 100 ms sampling near a bottom; the cited percentages are rounded to 0.01 % (5e-5).
    tol = (len(legs) + 1) * TICK / 2 / m0 + 5e-5
    assert abs(m.min() / m0 - 1 - CITED[name]) <= tol


def test_recoveries_on_a_flat_market():
    ev = flat_hour()
    end = {n: mids(apply(ev, price_path(load_scenario(n)), seed=0, instruments=TABLE1))[-1] / 100.005 - 1
           for n in ("flash_crash_2010", "chf_depeg_2015")}
    assert end["flash_crash_2010"] == 0.0  # back on the original path
    # EUR/CHF rebounded to about 1.01 (Currency Matters): 1.01 / 1.2011 - 1
    assert abs(end["chf_depeg_2015"] - (1.01 / 1.2011 - 1)) <= TICK / 100 + 1e-4


@pytest.mark.parametrize("name", sorted(CITED))
def test_each_leg_moves_the_real_sample_by_its_pct(name):
    ev, table = lobster()
    ctx = ctx_for(ev, table)
    sc = load_scenario(name)
    cur, legs = ev, []
    for t in price_path(sc).transforms:
        nxt = apply(cur, t, seed=0, instruments=table)
        if isinstance(t, PRICE_LEGS):
            start = ctx.at(t.at if isinstance(t, PriceGap) else t.start)
            q0 = cur[((cur["kind"] & KIND_QUOTE) != 0)]
            q1 = nxt[((nxt["kind"] & KIND_QUOTE) != 0)]
            assert len(q0) == len(q1)  # re-sent book rows are depth rows: quotes stay aligned
            two = np.isfinite(q0["bid_px"]) & np.isfinite(q0["ask_px"])
            mid = 0.5 * (q0["bid_px"] + q0["ask_px"])
            before = mid[two & (q0["ts_local"] < start)]
            m0 = before[-1] if len(before) else mid[two][0]  # documented: the first mid if none before
            move = (q1["bid_px"] - q0["bid_px"])[np.isfinite(q0["bid_px"])]
            # half a tick of rounding plus one tick for the rows' spacing near the bottom
            assert abs(move.min() / m0 - t.pct) <= 1.5 * TICK / m0
            legs.append(t.pct)
        cur = nxt
    # legs compound: each is measured from the mid just before it
    assert abs(np.prod([1 + p for p in legs]) - 1 - CITED[name]) <= 5e-5


def test_covid_calibration_written_out():
    sc = load_scenario("covid_2020")
    vol = [t for t in sc.transforms if isinstance(t, VolScale)]
    # VIX record close 82.69 (16 Mar 2020) over the 2004-2019 average close 18.2 (Metaculus 4833)
    assert len(vol) == 1 and abs(vol[0].k - 82.69 / 18.2) < 5e-4
    halt = [t for t in sc.transforms if isinstance(t, TradingHalt)]
    # Level-1 market-wide circuit breaker: a 15-minute halt, 15 / 390 of the session
    assert len(halt) == 1 and abs(halt[0].duration.value - 15 / 390) < 1e-4
    ev, table = synth_l2()
    out = apply(ev, sc, seed=0, instruments=table)
    ctx = ctx_for(ev, table)
    a = ctx.at(halt[0].start)
    b = a + ctx.span(halt[0].duration)
    assert ((out["kind"] & KIND_CONTROL) != 0).sum() == 2 * 2  # two instruments, halt and resume
    in_halt = (out["ts_local"] >= a) & (out["ts_local"] < b)
    assert in_halt.any() and not (((out["kind"] & KIND_TRADE) != 0) & in_halt).any()


def test_scaled_library_scenario_for_reverse_stress():
    ev = flat_hour()
    sc = load_scenario("black_monday_1987")
    half = mids(apply(ev, price_path(sc.scaled(0.5)), seed=0, instruments=TABLE1)).min() / 100.005 - 1
    assert abs(half - 0.5 * CITED["black_monday_1987"]) <= TICK / 100 + 5e-5
    small, table = synth_l2()
    assert apply(small, sc.scaled(0.0), seed=0, instruments=table).tobytes() == small.tobytes()


def test_black_monday_latency_spike():
    ev, _ = synth_l2()
    cfg = scenario_latency(LatencyConfig(submit=Latency(100_000, 100_000)), ev, load_scenario("black_monday_1987"),
                           seed=0)
    t, v = cfg.trace
    mid = ctx_for(ev).at(load_scenario("black_monday_1987").transforms[-1].start)
    assert (v[(t >= mid) & (t < ev["ts_local"][-1])] == 2_000_000).all() and (v[t < mid] == 100_000).all()


# --- user files -----------------------------------------------------------------------------------
GOOD = """
name = "mine"
description = "a small test scenario"
sources = ["made up for a test"]

[[transforms]]
transform = "flash_crash"
start = "+10min"
pct = -0.05
fall = "2min"
recover = "3min"
"""


def test_user_file_loads_and_applies(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(GOOD)
    sc = load_scenario(path)
    assert sc.name == "mine" and sc.transforms == (FlashCrash("+10min", -0.05, "2min", "3min"),)
    assert load_scenario(str(path)) == sc
    m = mids(apply(flat_hour(), sc, seed=0, instruments=TABLE1))
    assert abs(m.min() / 100.005 - 1 + 0.05) <= TICK / 100


@pytest.mark.parametrize(
    "edit, match",
    [
        (('transform = "flash_crash"', 'transform = "flash_crsh"'), "Did you mean 'flash_crash'"),
        (("pct = -0.05", "pcts = -0.05"), "unknown parameter 'pcts'.*Did you mean 'pct'"),
        (("sources =", "sourcse ="), "unknown key 'sourcse'.*Did you mean 'sources'"),
        (('fall = "2min"', ""), r"missing parameter\(s\) \['fall'\]"),
        (("pct = -0.05", "pct = -2.0"), r"transforms\[0\] \(flash_crash\): flash_crash.pct"),
        (('start = "+10min"', "start = 0.5"), "'40%'"),
        (('name = "mine"', 'name = "mine'), "not valid TOML"),
    ],
)
def test_user_file_errors(tmp_path, edit, match):
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace(*edit))
    with pytest.raises(ValueError, match=match):
        load_scenario(path)


def test_unknown_names():
    with pytest.raises(ValueError, match="Did you mean 'covid_2020'"):
        load_scenario("covid2020")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_scenario("no/such/file.toml")
