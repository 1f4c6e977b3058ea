"""benchmarks/instructions.py: reading callgrind's totals, and what it does without valgrind.

Running a workload under valgrind takes 20 s or more, so it is left to the benchmark itself; the
gate's workload is checked here on its own terms (it must time orders that pass).
"""

from __future__ import annotations

import numpy as np
import pytest

from tickguard.benchmarks import instructions
from tickguard.benchmarks.engine import full_rulebook_gate, gate_ns_per_order
from tickguard.data.schema import InstrumentTable
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


def test_without_valgrind_it_says_so_and_stops(monkeypatch, capsys):
    monkeypatch.setattr(instructions.shutil, "which", lambda tool: None)
    assert instructions.main(["--only", "bare"]) == 2
    err = capsys.readouterr().err
    assert "valgrind and callgrind_control not found" in err


def test_the_gate_is_timed_on_orders_that_pass():
    # The tight loop refreshes its quote's time: with the time left at 0 the stale-quote rule
    # denied every order after the first 5 s of simulated time, and the figure timed denials.
    gate = full_rulebook_gate(InstrumentTable.single("SYN", tick_size=0.005, lot_size=1))
    assert np.isfinite(gate_ns_per_order(gate, n=2_000))  # raises if any order is denied
    strict = full_rulebook_gate(InstrumentTable.single("SYN", tick_size=0.005, lot_size=1))
    strict.rules[strict.rulebook.index("fat-finger-qty"), R_THRESHOLD] = 0.5  # every 1-lot order denied
    with pytest.raises(RuntimeError, match="denied 2000 of 2000 orders"):
        gate_ns_per_order(strict, n=2_000)
