"""The cold-compile profile: nested compiles charged to the right function, LLVM to its library."""

from __future__ import annotations

import pytest

from tickguard.benchmarks._measure import child_peak_rss
from tickguard.benchmarks.compile_profile import CompileProfile, display_name, main


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_nested_compiles_are_charged_to_the_function_that_did_the_work():
    # Worked by hand: A compiles from t=0 to 10 and, while typing, compiles B (1..4) and C (5..6);
    # later B compiles again (another signature) from 20 to 22. A's own work: 10 - 3 - 1 = 6.
    clock = _Clock()
    p = CompileProfile(clock)
    for t, what in ((0, "A"), (1, "B"), (4, None), (5, "C"), (6, None), (10, None), (20, "B"), (22, None)):
        clock.now = float(t)
        if what is None:
            p.end()
        else:
            p.start(f"mod.{what}", what)
    assert p.inclusive == {"mod.A": 10.0, "mod.B": 5.0, "mod.C": 1.0}
    assert p.exclusive == {"mod.A": 6.0, "mod.B": 5.0, "mod.C": 1.0}
    assert p.compiles == {"mod.A": 1, "mod.B": 2, "mod.C": 1}
    # LLVM per library: A's and B's to them; "impl" is the qualname of two functions: not guessed
    p.start("x.impl", "impl")
    p.end()
    p.start("y.impl", "impl")
    p.end()
    p.add_llvm("A", "module_passes", 1.5)
    p.add_llvm("A", "machine_code", 0.5)
    p.add_llvm("B", "function_passes", 1.0)
    p.add_llvm("impl", "machine_code", 0.25)
    rows = {r["function"]: r for r in p.rows()}
    assert rows["mod.A"]["llvm_s"] == 2.0 and rows["mod.A"]["frontend_s"] == 4.0
    assert rows["mod.B"]["llvm_s"] == 1.0 and rows["mod.C"]["llvm_s"] == 0.0
    assert rows["[library] impl"]["llvm_s"] == 0.25
    assert rows["[library] impl"]["frontend_s"] is None  # no compile of its own to split
    assert [r["function"] for r in p.rows()][:3] == ["mod.A", "mod.B", "mod.C"]
    tot = p.totals()
    assert tot["exclusive_s"] == 12.0  # = the two top-level compiles' wall time, 10 + 2
    assert tot["llvm_s"] == 3.25 and tot["llvm_steps_s"]["module_passes"] == 1.5
    assert tot["compile_events"] == 6 and tot["functions"] == 5


_REAL = """
from numba import njit
from tickguard.benchmarks.compile_profile import CompileProfile
profile = CompileProfile()
profile.install()

@njit
def callee(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i]
    return s

@njit
def caller(x):
    return callee(x) + 1.0

import numpy as np
caller(np.ones(3))
result = {"rows": profile.rows(), "totals": profile.totals()}
"""


def test_a_real_compile_charges_the_callee_inside_its_caller_and_llvm_to_each():
    out = child_peak_rss(_REAL, timeout=300).result
    rows = {r["function"]: r for r in out["rows"]}
    caller, callee = rows["__main__.caller"], rows["__main__.callee"]
    assert caller["compiles"] == callee["compiles"] == 1
    # numba compiled the callee while typing the caller: inside its time, not in its own work
    assert caller["inclusive_s"] >= callee["inclusive_s"] + caller["exclusive_s"] - 1e-6
    assert caller["exclusive_s"] < caller["inclusive_s"]
    # each library's LLVM work ran inside its own function's compile, not the other's
    for r in (caller, callee):
        assert 0.0 < r["llvm_s"] <= r["exclusive_s"]
    assert out["totals"]["llvm_s"] <= out["totals"]["exclusive_s"]


def test_generated_modules_are_named_by_their_role():
    assert display_name("_tickguard_loop_0123abcd", "run_chunk_nb") == "[loop].run_chunk_nb"
    assert display_name("_tickguard_kernels_99", "_idle_rows") == "[kernels]._idle_rows"
    assert display_name("tickguard.engine.book", "apply_depth_nb") == "tickguard.engine.book.apply_depth_nb"


def test_top_must_be_positive(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--top", "0"])
    assert exc.value.code == 2
    assert "--top must be >= 1, got 0" in capsys.readouterr().err


def _canned(llvm_available: bool) -> dict:
    row = {"function": "m.f", "compiles": 1, "exclusive_s": 2.0, "inclusive_s": 3.0}
    totals = {"functions": 1, "compile_events": 1, "exclusive_s": 2.0}
    if llvm_available:
        row.update(llvm_s=0.5, frontend_s=1.5)
        totals.update(llvm_s=0.5, frontend_s=1.5)
    else:
        totals["llvm_s"] = "unavailable"
    return {"rulebook": False, "new_strategy": True, "new_shape": False, "depth": False, "compile_s": 2.5,
            "imports_s": 0.5, "process_s": 4.0, "rows": [row], "totals": totals}


@pytest.mark.parametrize("llvm_available", [True, False])
def test_the_report_states_the_shares_or_says_llvm_is_unavailable(monkeypatch, capsys, llvm_available):
    import tickguard.benchmarks.compile_profile as cp

    monkeypatch.setattr(cp, "profile_cold_compile",
                        lambda rulebook, new_strategy, depth, new_shape: _canned(llvm_available))
    assert main([]) == 0
    text = capsys.readouterr().out
    assert "a new strategy's compile 2.50 s" in text and "2.00 s in 1 compiles of 1 functions" in text
    if llvm_available:
        assert "0.50 s LLVM (25%), 1.50 s numba's frontend" in text
        assert "LLVM s" in text.splitlines()[0]
    else:
        assert "LLVM: unavailable" in text and "LLVM s" not in text.splitlines()[0]


def test_a_new_shape_and_a_new_strategy_are_not_profiled_together(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--new-strategy", "--new-shape"])
    assert exc.value.code == 2
    assert "--new-strategy and --new-shape profile different second compiles" in capsys.readouterr().err


def test_a_new_shape_profiles_the_specialised_gate_after_the_generic_one_filled_the_cache(monkeypatch):
    # the first child runs the generic gate unprofiled, the second the specialised one profiled,
    # in the same cache folder
    import tickguard.benchmarks.compile_profile as cp

    calls = []

    class _Child:
        result = {"compile_s": 1.0}

    def fake_child(body, setup, env, args):
        calls.append((args, env))
        return _Child()

    monkeypatch.setattr(cp, "child_peak_rss", fake_child)
    out = cp.profile_cold_compile(new_shape=True)
    assert [args for args, _ in calls] == [["1", "0", "ema", "quotes"], ["2", "1", "ema", "quotes"]]
    assert calls[0][1] == calls[1][1]
    assert out["rulebook"] and out["new_shape"] and not out["new_strategy"]
