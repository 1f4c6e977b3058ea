"""The rule-family ablation benchmark: its families split the metrics, its ablations send the
engine's orders (a denial would time other work: the benchmark refuses it)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tickguard.benchmarks import rule_families
from tickguard.risk import layout as L
from tickguard.risk.rulebook import METRICS


def test_every_metric_is_in_exactly_one_family() -> None:
    for name, spec in METRICS.items():
        homes = [fam for fam, codes in rule_families.FAMILIES.items() if spec.code in codes]
        assert len(homes) == 1, (name, homes)
        assert rule_families.family_of(name) == homes[0]
    assert rule_families.family_of("repeated_execution") == "pre-trade, with state"
    assert rule_families.family_of("fill_rate") == "kill, on order activity"
    with pytest.raises(ValueError, match="unknown metric 'max_qty'"):
        rule_families.family_of("max_qty")


def test_a_metric_in_no_family_is_named(monkeypatch) -> None:  # noqa: ANN001
    # a metric added to the rulebook without a family: the benchmark says which, not StopIteration
    families = {k: v for k, v in rule_families.FAMILIES.items() if k != "kill, on market events"}
    monkeypatch.setattr(rule_families, "FAMILIES", families)
    with pytest.raises(ValueError, match="metric 'stale_feed' .* is in no family"):
        rule_families.family_of("stale_feed")


def test_a_small_run_covers_every_family_and_the_cli_writes_json(tmp_path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "f.json"
    assert rule_families.main(["--events", "20000", "--repeat", "1", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    fams = figures["families"]
    assert set(fams) == set(rule_families.FAMILIES)  # the default rulebook has rules of each
    rules = [r for f in fams.values() for r in f["rules"]]
    assert len(rules) == len(set(rules)) == 24  # a partition of the default rulebook's rows
    assert fams["kill, on order activity"]["rules"] == ["order-to-trade", "reject-storm",
                                                         "runaway-messages", "runaway-fills"]
    ns = figures["ns_per_order"]
    assert len(ns) == 3 + 2 * 5 and all(v > 0 for v in ns.values())
    assert figures["orders"] > 50  # the canonical strategy trades in 20 000 events
    assert "shared (rulebook - noop - sum of marginals)" in capsys.readouterr().out


def test_an_ablation_that_denies_is_refused_not_timed(monkeypatch) -> None:  # noqa: ANN001
    real = rule_families.full_rulebook_gate

    def strict(table):  # noqa: ANN001, ANN202
        gate = real(table)
        rules = gate.rulebook.rules.copy()
        rules[gate.rulebook.index("fat-finger-qty"), L.R_THRESHOLD] = 0.5  # below the one-lot orders
        return dataclasses.replace(gate, rulebook=dataclasses.replace(gate.rulebook, rules=rules))

    monkeypatch.setattr(rule_families, "full_rulebook_gate", strict)
    with pytest.raises(RuntimeError, match="differ from the engine's"):
        rule_families.run_families(events=20_000, repeat=1)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="repeat >= 1"):
        rule_families.run_families(events=20_000, repeat=0)
