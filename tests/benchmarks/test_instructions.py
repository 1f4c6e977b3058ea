"""benchmarks/instructions.py: reading callgrind's totals, and what it does without valgrind.

Running a workload under valgrind takes 20 s or more, so it is left to the benchmark itself; the
gate's workload is checked here on its own terms (it must time orders that pass).
"""

from __future__ import annotations

import numpy as np
import pytest

from tickguard.benchmarks import instructions
from tickguard.benchmarks.engine import canonical_table, full_rulebook_gate, gate_ns_per_order
from tickguard.risk.layout import R_THRESHOLD


def test_the_total_is_read_from_the_totals_line(tmp_path):
    # the shape of a callgrind output file (header, cost lines, then the totals)
    f = tmp_path / "callgrind.out"
    f.write_text("# callgrind format\nversion: 1\nevents: Ir\nsummary: 0\n\nfn=(1) x\n0x10 3 7\n"
                 "totals: 298923855\n")
    assert instructions.parse_callgrind_total(str(f)) == 298_923_855
    g = tmp_path / "other.txt"
    g.write_text("not a profile\n")
    with pytest.raises(ValueError, match="other.txt: no 'totals:' line"):
        instructions.parse_callgrind_total(str(g))


def test_instructions_are_charged_to_the_jitted_function_at_or_below_their_address(tmp_path):
    # a hand-made file in the shape --dump-instr=yes --compress-pos=no --compress-strings=no
    # writes: JIT code has no name (fn=0x...), the line after calls= is an inclusive call cost
    f = tmp_path / "callgrind.out"
    f.write_text("events: Ir\n"
                 "fn=0x0000000000001000\n0x1000 5\n0x1004 7\ncalls=3 0x2000\n0x1008 900\n0x100c 1\n"
                 "fn=0x0000000000002000\n0x2000 4\n0x2010 6\n"
                 "fn=PyEval\n0x900000 11\n"
                 "totals: 34\n")
    symbols = {"_ZN3pkg4loop7step_nbB2v1": 0x1000, "_ZN3pkg4gate9pretradeB3v5": 0x2000}
    costs = instructions.function_costs(str(f), symbols, max_size=0x100)
    # 5 + 7 + 1 (not the 900 of the call: the callee's lines hold it), 4 + 6, and the rest by name
    assert costs == {"_ZN3pkg4loop7step_nbB2v1": 13, "_ZN3pkg4gate9pretradeB3v5": 10, "PyEval": 11}
    assert sum(costs.values()) == 34  # the totals line
    assert instructions.demangle_numba("_ZN3pkg4loop7step_nbB2v1") == "pkg.loop.step_nb"
    assert instructions.demangle_numba("_ZN36_tickguard_loop_5d414fac9d6963ceaf3c12run_chunk_nbB3v46") \
        == "_tickguard_loop_5d414fac9d6963ceaf3c.run_chunk_nb"
    assert instructions.demangle_numba("PyEval") == "PyEval"
    # a file recorded without --dump-instr keys costs by source line: refused, not read as empty
    g = tmp_path / "by_line.out"
    g.write_text("events: Ir\nfn=PyEval\n16 5\ntotals: 5\n")
    with pytest.raises(ValueError, match="by_line.out: cost lines carry no instruction addresses"):
        instructions.function_costs(str(g), symbols)


def test_cache_misses_are_read_by_event_name_and_charged_like_instructions(tmp_path):
    # --cache-sim=yes adds events after Ir; callgrind leaves a line's trailing zeros out
    f = tmp_path / "callgrind.out"
    f.write_text("events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw\n"
                 "fn=0x0000000000001000\n0x1000 5 2 0 1 1\n0x1004 7\ncalls=3 0x2000\n0x1008 900 9 9 9 9\n"
                 "fn=0x0000000000002000\n0x2000 4 1 1 0 0 1\n0x2010 6 3 0 2 3\n"
                 "totals: 22 6 1 3 4 1 0 0 0\n")
    totals = instructions.parse_callgrind_totals(str(f))
    assert totals == {"Ir": 22, "Dr": 6, "Dw": 1, "I1mr": 3, "D1mr": 4, "D1mw": 1, "ILmr": 0, "DLmr": 0,
                      "DLmw": 0}
    assert instructions.parse_callgrind_total(str(f)) == 22
    symbols = {"loop": 0x1000, "gate": 0x2000}
    # by hand: I1mr 1 (0x1000) and 2 (0x2010); D1mr 1 and 3; D1mw 0 and 1; the call line skipped
    assert instructions.function_costs(str(f), symbols, event="I1mr") == {"loop": 1, "gate": 2}
    assert instructions.function_costs(str(f), symbols, event="D1mr") == {"loop": 1, "gate": 3}
    assert instructions.function_costs(str(f), symbols, event="D1mw") == {"gate": 1}
    assert instructions.function_costs(str(f), symbols) == {"loop": 12, "gate": 10}
    g = tmp_path / "plain.out"
    g.write_text("events: Ir\nfn=0x0000000000001000\n0x1000 5\ntotals: 5\n")
    with pytest.raises(ValueError, match=r"plain.out: no event 'I1mr' recorded \(events: Ir\); "
                                         r"cache misses need --cache-sim=yes"):
        instructions.function_costs(str(g), symbols, event="I1mr")


def test_the_symbol_map_holds_a_function_compiled_here():
    from numba import njit

    @njit
    def twice_plus_one(x):
        return 2 * x + 1

    assert twice_plus_one(20) == 41
    found = {instructions.demangle_numba(n): a for n, a in instructions.jitted_symbols().items()}
    name = next(k for k in found if k.endswith("twice_plus_one") and not k.startswith("cpython"))
    assert found[name] > 0


def test_without_valgrind_it_says_so_and_stops(monkeypatch, capsys):
    monkeypatch.setattr(instructions.shutil, "which", lambda tool: None)
    assert instructions.main(["--only", "bare"]) == 2
    err = capsys.readouterr().err
    assert "valgrind and callgrind_control not found" in err


def test_the_gate_is_timed_on_orders_that_pass():
    # The tight loop refreshes its quote's time: with the time left at 0 the stale-quote rule
    # denied every order after the first 5 s of simulated time, and the figure timed denials.
    gate = full_rulebook_gate(canonical_table())
    assert np.isfinite(gate_ns_per_order(gate, n=2_000))  # raises if any order is denied
    strict = full_rulebook_gate(canonical_table())
    strict.rules[strict.rulebook.index("fat-finger-qty"), R_THRESHOLD] = 0.5  # every 1-lot order denied
    with pytest.raises(RuntimeError, match="denied 2000 of 2000 orders"):
        gate_ns_per_order(strict, n=2_000)


def test_the_kernel_figure_is_the_jitted_functions_but_the_reader_threads():
    # names as callgrind and jitted_symbols give them: mangled for jitted code, plain otherwise
    loop = "_ZN36_tickguard_loop_5d414fac9d6963ceaf3c12run_chunk_nbB3v46"
    gate = "_ZN9tickguard4risk8pretrade11pretrade_nbB3v12"
    marks = "_ZN9tickguard6engine4gate14marked_rows_nbB3v7"
    scan = "_ZN9tickguard6engine8backtest13_scan_rows_nbB3v9"
    symbols = {loop: 0x1000, gate: 0x2000, marks: 0x3000, scan: 0x4000}
    costs = {loop: 700, gate: 200, marks: 50, scan: 40, "XXH3_update_avx2": 30, "PyEval": 9}
    assert instructions.kernel_cost(costs, symbols) == 900  # 700 + 200: not the reader's, nor libc's


def test_an_ablation_leaves_out_the_named_rules_and_keeps_the_names_aligned():
    from tickguard.benchmarks.engine import without_rules

    gate = full_rulebook_gate(canonical_table())
    rb = gate.rulebook
    out = without_rules(gate, ["repeat-throttle", "runaway-fills"]).rulebook
    assert len(out) == len(rb) - 2 and "repeat-throttle" not in out.ids and "runaway-fills" not in out.ids
    for rule_id in out.ids:  # every row, its metric and its numbers follow its id
        k, j = rb.index(rule_id), out.index(rule_id)
        assert out.metrics[j] == rb.metrics[k] and out.actions[j] == rb.actions[k]
        assert np.array_equal(out.rules[j], rb.rules[k])
    with pytest.raises(ValueError, match="no rule 'nope' in the rulebook; its rule ids are fat-finger-qty"):
        without_rules(gate, ["nope"])


def test_without_applies_to_the_rulebook_workload_alone(capsys):
    with pytest.raises(SystemExit):
        instructions.main(["--only", "engine", "--without", "throttle"])
    assert "--without and --specialize apply to the rulebook workload alone" in capsys.readouterr().err
