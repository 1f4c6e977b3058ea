"""Reverse stress tests: bisection against boundaries worked out by hand, and the closed-form
worst case of a linear book against scipy.optimize.

The hand-built book: quotes 99.99 / 100.01 (mid 100.00, tick 0.01) once a second, no latency, no
fees, equity marked at mid. A market buy of 100 at the second quote fills at the ask, 100.01, so
before any stress the PnL is 100 x (100.00 - 100.01) = -1. A PriceGap of ``pct`` at 50 % of the
session moves the book by D = rint(100.00 x pct / 0.01) ticks x 0.01 (whole ticks) and the final
PnL is -1 + 100 D. Thresholds sit half a tick between two outcomes so float noise cannot flip them:

* loss > 450  <=>  D <= -4.50  <=>  rint(10000 pct) <= -450  <=>  pct <= -0.04495
  (rint(-449.5) = -450: numpy rounds half to even);
* drawdown > 0.00035 of the 1e6 peak (the initial cash, never exceeded): loss > 350
  <=>  pct <= -0.03495 (rint(-349.5) = -350, even).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from tickguard.data.schema import KIND_LAST_IN_BATCH, KIND_QUOTE, Instrument, InstrumentTable, empty_events
from tickguard.engine.records import OT_MARKET
from tickguard.engine.scripted import scripted, submit
from tickguard.risk.inloop import RiskGate
from tickguard.risk.stress import PriceGap, Scenario, SpreadWiden
from tickguard.risk.stress.reverse import (
    DrawdownBeyond, KillSwitchFires, LossBeyond, linear_worst_case, reverse_stress,
)

INST = InstrumentTable([Instrument(0, "X", tick_size=0.01, lot_size=1)])
T0 = 1_704_205_800_000_000_000  # 2024-01-02 14:30 UTC: inside the data layer's plausible window
N = 60


def book():
    ev = empty_events(N)
    ev["ts_exch"] = ev["ts_local"] = T0 + np.arange(N, dtype=np.int64) * 1_000_000_000
    ev["kind"] = KIND_QUOTE | KIND_LAST_IN_BATCH
    ev["bid_px"], ev["ask_px"], ev["bid_sz"], ev["ask_sz"] = 99.99, 100.01, 1000.0, 1000.0
    return ev


BUY = scripted([submit(1, 1, 100, order_type=OT_MARKET)])
GAP = PriceGap(at="50%", pct=-0.01)


def test_loss_boundary_lands_within_tolerance_of_the_hand_worked_gap():
    tol = 1e-5
    res = reverse_stress(book(), GAP, BUY, LossBeyond(450.0), instruments=INST, tol=tol)
    assert res.found
    assert -0.04495 - tol <= res.magnitude <= -0.04495 + 1e-12  # on the breaking side, within tol
    lower = res.probes.loc[res.probes["scale"] == res.lower, "magnitude"].iloc[0]
    assert -0.04495 < lower
    # the run at the boundary: D = -4.50 exactly, so PnL = -1 + 100 x -4.50 = -451
    assert res.result.equity["equity"][-1] - 1e6 == pytest.approx(-451.0, abs=1e-6)
    # bracketing doubled 1, 2, 4, 8 (pct -0.08 is the first break) after the unstressed probe
    assert list(res.probes["scale"][:5]) == [0.0, 1.0, 2.0, 4.0, 8.0]
    assert list(res.probes["broke"][:5]) == [False, False, False, False, True]


def test_drawdown_and_kill_switch_boundaries_agree_with_the_hand_worked_gap():
    tol = 1e-5
    res = reverse_stress(book(), GAP, BUY, DrawdownBeyond(0.00035), instruments=INST, tol=tol)
    assert res.found and -0.03495 - tol <= res.magnitude <= -0.03495 + 1e-12
    # the kill switch's own drawdown rule (peak = the first sample, 1e6) sees the same boundary
    gate = RiskGate.load('[[rule]]\nid = "dd"\nmetric = "drawdown"\nthreshold = 0.00035\naction = "halt"\n', INST)
    ks = reverse_stress(book(), GAP, BUY, KillSwitchFires("HALTED"), instruments=INST, risk=gate, tol=tol)
    assert ks.found and -0.03495 - tol <= ks.magnitude <= -0.03495 + 1e-12
    assert ks.result.risk_events_df()["rule_id"].iloc[0] == "dd"


def test_no_break_in_the_valid_range_and_already_broken_are_reported():
    # a 1 % loss cannot reach 1e6: the gap family stops being valid (pct <= -100 %) first
    res = reverse_stress(book(), GAP, BUY, LossBeyond(2e6), instruments=INST)
    assert not res.found and res.scale is None and "not a valid member" in res.message
    assert res.lower == 64.0  # pct -0.64 held; -1.28 is no price move
    res = reverse_stress(book(), GAP, BUY, LossBeyond(0.5), instruments=INST)  # -1 already
    assert res.found and res.scale == 0.0 and len(res.probes) == 1


def test_scenario_family_reports_every_magnitude():
    fam = Scenario((GAP, SpreadWiden(start="50%", end="100%", k=2.0)), name="gap+wide")
    res = reverse_stress(book(), fam, BUY, LossBeyond(450.0), instruments=INST, tol=1e-4)
    gap, widen = res.magnitude
    assert widen == pytest.approx(res.scale * np.log(2.0))  # scaled(s): k**s, magnitude s ln k
    # widening around the mid leaves the mid (the mark) alone, so the gap alone decides
    assert -0.04495 - 1e-4 <= gap <= -0.04495 + 1e-12


@pytest.mark.parametrize("kwargs, message", [
    (dict(tol=0.0), "tol: got 0"), (dict(start=-1.0), r"scaled\(s\): got -1.0"),
    (dict(max_doublings=-1), "max_doublings: got -1"),
])
def test_bad_arguments_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        reverse_stress(book(), GAP, BUY, LossBeyond(1.0), instruments=INST, **kwargs)


def test_zero_family_and_bad_condition_are_refused():
    with pytest.raises(ValueError, match="all 0"):
        reverse_stress(book(), PriceGap(at="50%", pct=0.0), BUY, LossBeyond(1.0), instruments=INST)
    with pytest.raises(TypeError, match="breaks: got"):
        reverse_stress(book(), GAP, BUY, 5, instruments=INST)
    with pytest.raises(ValueError, match="LossBeyond.amount: got -1"):
        LossBeyond(-1)
    with pytest.raises(ValueError, match="'REDUCING' or 'HALTED'"):
        KillSwitchFires("ACTIVE")


def _oracle(w, cov, k):
    """Maximise the loss -w.x on x' inv(cov) x <= k**2 numerically (SLSQP from a fixed start).
    The objective uses w / |w| (the optimiser's tolerances are absolute); the loss scales back."""
    inv = np.linalg.inv(cov)
    u = w / np.linalg.norm(w)
    cons = {"type": "ineq", "fun": lambda x: k**2 - x @ inv @ x, "jac": lambda x: -2 * inv @ x}
    x0 = -0.1 * k * np.sqrt(np.diag(cov)) * np.sign(w)
    sol = minimize(lambda x: u @ x, x0, jac=lambda x: u, constraints=[cons], method="SLSQP",
                   options={"ftol": 1e-12, "maxiter": 500})
    assert sol.success, sol.message
    return -sol.fun * np.linalg.norm(w), sol.x


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linear_worst_case_matches_scipy_optimize(seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((4, 4))
    cov = a @ a.T / 4 + 0.05 * np.eye(4)  # positive definite
    w = rng.standard_normal(4) * 1e3
    k = 3.0
    loss, shock = linear_worst_case(w, cov, k)
    ref_loss, ref_shock = _oracle(w, cov, k)
    # SLSQP stops at ftol 1e-14 relative; 1e-6 relative leaves room for its last step, not for a
    # wrong formula (a missing sqrt or k changes the loss by orders of magnitude)
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    np.testing.assert_allclose(shock, ref_shock, rtol=1e-4, atol=1e-6 * np.abs(ref_shock).max())
    assert -(w @ shock) == pytest.approx(loss, rel=1e-12)
    assert shock @ np.linalg.solve(cov, shock) == pytest.approx(k**2, rel=1e-10)  # on the ellipsoid


def test_linear_worst_case_one_factor_and_flat_book():
    # one factor: the worst k-sigma move against a long of w is a loss of k sigma w
    loss, shock = linear_worst_case([2.0], [[0.25]], 3.0)
    assert loss == pytest.approx(3 * 0.5 * 2.0) and shock[0] == pytest.approx(-1.5)
    loss, shock = linear_worst_case([0.0, 0.0], np.eye(2), 3.0)
    assert loss == 0.0 and not shock.any()


@pytest.mark.parametrize("w, cov, k, message", [
    ([1.0, 2.0], np.eye(3), 1.0, r"cov: got shape \(3, 3\)"),
    ([1.0, 2.0], [[1.0, 0.5], [0.0, 1.0]], 1.0, "not symmetric"),
    ([1.0, 2.0], [[1.0, 2.0], [2.0, 1.0]], 1.0, "negative eigenvalue"),
    ([1.0, 2.0], np.eye(2), -1.0, "k: got -1.0"),
    ([[1.0]], np.eye(1), 1.0, r"w: got shape \(1, 1\)"),
])
def test_linear_worst_case_refuses_bad_input(w, cov, k, message):
    with pytest.raises(ValueError, match=message):
        linear_worst_case(w, cov, k)
