"""The gate-scaling benchmark: its rulebook is valid and its orders pass, with and without the
fast table (a denial would time another path; the benchmark refuses that)."""

from __future__ import annotations

import json

import pytest

from tickguard.benchmarks import gate_scaling
from tickguard.risk.rulebook import load_rulebook


def test_rulebook_has_four_limits_per_instrument_and_one_gross_cap() -> None:
    rb = load_rulebook(gate_scaling.per_instrument_rulebook(3))
    assert list(rb.ids[:4]) == ["max_order_qty-0", "max_position-0", "max_position_notional-0",
                                "stale_data-0"]
    assert len(rb.ids) == 13 and rb.ids[-1] == "gross"


def test_every_order_passes_both_ways_and_the_cli_writes_json(tmp_path, capsys) -> None:  # noqa: ANN001
    row = gate_scaling.time_gate(3, orders=300, rounds=1)
    assert row["instruments"] == 3 and row["rules"] == 13
    assert row["fast_table_ns"] > 0 and row["rule_by_rule_ns"] > 0
    out = tmp_path / "g.json"
    assert gate_scaling.main(["--instruments", "2", "--orders", "200", "--json", str(out)]) == 0
    assert json.loads(out.read_text())[0]["rules"] == 9
    assert "rule by rule" in capsys.readouterr().out


def test_a_denied_order_is_refused_not_timed(monkeypatch) -> None:  # noqa: ANN001
    # the rulebook's size limit below the benchmark's one-lot orders: the timing must refuse
    monkeypatch.setattr(gate_scaling, "per_instrument_rulebook",
                        lambda n: '[[rule]]\nid = "q"\nmetric = "max_order_qty"\nscope = "all"\n'
                                  'threshold = 0.5\naction = "deny"\n')
    with pytest.raises(RuntimeError, match="orders denied"):
        gate_scaling.time_gate(2, orders=50, rounds=1)


def test_bad_arguments_are_refused(capsys) -> None:  # noqa: ANN001
    with pytest.raises(SystemExit):
        gate_scaling.main(["--instruments", "0"])
    assert "--instruments and --orders must be >= 1" in capsys.readouterr().err
