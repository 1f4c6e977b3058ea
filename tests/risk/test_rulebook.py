"""Rulebook: TOML -> rule rows, every refusal with its message, names and explanations for reports."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from tickguard.data.schema import Instrument, InstrumentTable
from tickguard.risk import layout as L
from tickguard.risk import rulebook as rbmod
from tickguard.risk.killswitch import new_risk_state
from tickguard.risk.rulebook import METRICS, RulebookError, load_rulebook, parse_duration

DEFAULT = Path(rbmod.__file__).parent / "rulebooks" / "default.toml"
TABLE = InstrumentTable([Instrument(0, "ESU4", multiplier=50.0), Instrument(3, "AAPL")])


def rule(**fields: object) -> str:
    """One [[rule]] table; strings are quoted, other values written as TOML literals."""
    lines = ["[[rule]]"]
    for k, v in fields.items():
        raw = not isinstance(v, str) or v.startswith("{")  # inline tables go in as written
        lines.append(f"{k} = {v}" if raw else f'{k} = "{v}"')
    return "\n".join(lines) + "\n"


def test_default_rulebook_compiles_every_metric_and_reports() -> None:
    rb = load_rulebook(DEFAULT)
    assert len(rb) == 24
    assert set(rb.metrics) == set(METRICS) - {"restricted"}  # restricted needs an instrument
    d = rb.to_dict()
    json.dumps(d)  # plain Python only
    assert d["name"] == "default"
    row = d["rules"][rb.index("loss-5min-halt")]
    assert row == {"index": 13, "id": "loss-5min-halt", "metric": "loss_over_window", "scope": "all",
                   "threshold": 10_000.0, "unit": "currency", "action": "halt_flatten",
                   "window_ns": 300_000_000_000, "params": {"capacity": 65536.0}, "description": ""}
    # the same text compiles the same; a Path and a str path agree
    assert np.array_equal(load_rulebook(str(DEFAULT)).rules, rb.rules)
    assert np.array_equal(load_rulebook(DEFAULT.read_text()).rules, rb.rules)


def test_compiled_row_layout() -> None:
    rb = load_rulebook(
        rule(id="c", scope="ESU4", metric="price_collar_sigma", threshold=3, action="deny",
             params="{ floor = 0.001, lambda = 0.9 }")
        + rule(id="m", scope=3, metric="message_rate", threshold=100, window="250ms", action="deny")
        + rule(id="s", metric="stale_data", threshold="1.5ms", action="deny"),
        TABLE,
    )
    expected = np.array([
        [L.MT_PRICE_COLLAR_SIGMA, 0, 3.0, L.ACT_DENY, 1e9, 0.9, 0.001, math.inf],  # window: 1 s by default
        [L.MT_MESSAGE_RATE, 3, 100.0, L.ACT_DENY, 250_000_000, 100.0, 0, 0],  # burst = threshold
        [L.MT_STALE_DATA, -1, 1_500_000.0, L.ACT_DENY, 0, 0, 0, 0],
    ])
    assert np.array_equal(rb.rules, expected)
    assert rb.scopes == ("ESU4", "3", "all")
    assert rb.params[0] == {"lambda": 0.9, "floor": 0.001, "cap": math.inf}


@pytest.mark.parametrize("text,ns", [
    ("5s", 5_000_000_000), ("1min", 60_000_000_000), ("250us", 250_000), ("1.5ms", 1_500_000),
    ("2h", 7_200_000_000_000), (" 10 ns ", 10),
])
def test_parse_duration(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize("bad", ["5", "5m", "-1s", "0s", "0.5ns", "five s", 5, "1e3ms"])
def test_parse_duration_refuses(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)  # type: ignore[arg-type]


QTY = dict(id="q", metric="max_order_qty", threshold=10, action="deny")


@pytest.mark.parametrize("text,message", [
    (rule(id="x", metric="drawdwn", threshold=0.1, action="halt"),
     "rule 'x': field 'metric': unknown metric 'drawdwn'; did you mean 'drawdown'?"),
    (rule(**QTY, treshold=3),
     "rule 'q': field 'treshold': unknown key; did you mean 'threshold'?"),
    (rule(**{**QTY, "threshold": -1}), "rule 'q': field 'threshold': must be finite and > 0"),
    (rule(**{**QTY, "threshold": math.inf}),
     "rule 'q': field 'threshold': must be finite and > 0 (units), got inf"),
    (rule(**{**QTY, "threshold": math.nan}), "rule 'q': field 'threshold': must be finite"),
    (rule(**{**QTY, "threshold": "10"}), "rule 'q': field 'threshold': must be a number"),
    (rule(id="m", metric="message_rate", threshold=5, action="deny", window="5 sec"),
     "rule 'm': field 'window': duration must be"),
    (rule(id="m", metric="message_rate", threshold=5, action="deny"),
     "rule 'm': field 'window': message_rate needs a window"),
    (rule(**QTY, window="1s"), "rule 'q': field 'window': max_order_qty takes no window"),
    (rule(**QTY, scope="MSFT"), "rule 'q': field 'scope': unknown instrument symbol 'MSFT'"),
    (rule(**QTY, scope="AAPl"), "did you mean 'AAPL'?"),
    (rule(**QTY, scope=7), "rule 'q': field 'scope': unknown instrument id 7; known ids: [0, 3]"),
    (rule(id="g", metric="max_gross_exposure", threshold=1, action="deny", scope="AAPL"),
     "rule 'g': field 'scope': max_gross_exposure is portfolio-wide"),
    (rule(id="r", metric="restricted", action="deny"),
     "rule 'r': field 'scope': restricted needs an instrument scope"),
    (rule(**{**QTY, "action": "halt"}), "rule 'q': field 'action': max_order_qty takes action deny"),
    (rule(id="d", metric="drawdown", threshold=0.1, action="deny"),
     "field 'action': drawdown takes action reduce / halt / halt_flatten, got 'deny'"),
    (rule(id="d", metric="drawdown", threshold=0.1, action="stop"), "got 'stop'"),
    (rule(id="e", metric="external_kill", action="reduce"),
     "field 'action': external_kill takes action halt / halt_flatten"),
    (rule(id="d", metric="drawdown", threshold=5, action="halt"),
     "rule 'd': field 'threshold': must be finite and in (0, 1]"),
    (rule(id="f", metric="fill_rate", threshold=0.5, window="1s", action="halt"),
     "rule 'f': field 'threshold': must be finite and >= 1"),
    (rule(id="d", metric="drawdown", action="halt"), "field 'threshold': drawdown needs a threshold"),
    (rule(**QTY) + rule(**QTY), "rule 'q': field 'id': duplicate id"),
    (rule(metric="max_order_qty", threshold=1, action="deny"), "rule #0: field 'id'"),
    (rule(id="v", metric="ewma_var_breach", threshold=2, action="halt", params="{ lamda = 0.9 }"),
     "rule 'v': field 'params': unknown parameter 'lamda' for ewma_var_breach; did you mean 'lambda'?"),
    (rule(id="v", metric="ewma_var_breach", threshold=2, action="halt", params="{ lambda = 1.0 }"),
     "field 'params': lambda must be in (0, 1), got 1.0"),
    (rule(id="v", metric="ewma_var_breach", threshold=2, action="halt", params="{ level = 0.3 }"),
     "field 'params': level must be in (0.5, 1)"),
    (rule(id="o", metric="order_to_trade", threshold=2, window="1s", action="halt",
          params="{ capacity = 0 }"), "field 'params': capacity must be a whole number in [1, 1e8]"),
    (rule(id="m", metric="message_rate", threshold=5, window="1s", action="deny",
          params="{ burst = 0.5 }"), "field 'params': burst must be finite, >= 1"),
    (rule(id="c", metric="price_collar_sigma", threshold=3, action="deny",
          params="{ floor = 0.05, cap = 0.01 }"),
     "rule 'c': field 'params': contradictory collar: floor 0.05 is above cap 0.01 (min/max inverted)"),
    (rule(id="dr", metric="drawdown", threshold=0.05, action="reduce")
     + rule(id="dh", metric="drawdown", threshold=0.03, action="halt"),
     "rules 'dr' and 'dh': field 'threshold': contradictory pair: reduce at 0.05 can never act "
     "before halt at 0.03"),
    (rule(id="h", metric="loss_over_window", threshold=100, window="1min", action="halt")
     + rule(id="hf", metric="loss_over_window", threshold=100, window="1min", action="halt_flatten"),
     "rules 'h' and 'hf': field 'threshold': contradictory pair: halt at 100"),
    (rule(id="e1", metric="external_kill", action="halt")
     + rule(id="e2", metric="external_kill", action="halt_flatten"),
     "rules ['e1', 'e2']: field 'metric': only one external_kill rule is allowed"),
    # a memory of `capacity` identical orders counts at most capacity + 1 with the new one: a
    # threshold there or above could never deny (tests/risk/test_pretrade.py: just below, it does)
    (rule(id="rep", metric="repeated_execution", threshold=5, window="1s", action="deny",
          params="{ capacity = 4 }"),
     "rule 'rep': field 'threshold': 5 can never be exceeded: repeated_execution remembers at most "
     "params.capacity = 4 orders, so it counts at most 5 with the order checked and would never "
     "deny; raise params.capacity to at least 5 or lower the threshold below 5"),
    (rule(id="dup", metric="duplicate_order", threshold=1500, window="1s", action="deny"),
     "rule 'dup': field 'threshold': 1500 can never be exceeded: duplicate_order remembers at most "
     "params.capacity = 1024 orders"),
    ("[[rules]]\nid = 'x'\n", "unknown top-level key 'rules'; did you mean 'rule'?"),
    ("[[rule]\n", "not valid TOML"),
    ("rule = 3\n", "'rule' must be an array of tables"),
])
def test_refusals_name_rule_and_field(text: str, message: str) -> None:
    with pytest.raises(RulebookError) as err:
        load_rulebook(text, TABLE)
    assert message in str(err.value)


def test_symbol_scope_needs_a_table_and_missing_file() -> None:
    with pytest.raises(RulebookError, match="names an instrument but no InstrumentTable was given"):
        load_rulebook(rule(**QTY, scope="AAPL"))
    with pytest.raises(RulebookError, match="no rulebook file"):
        load_rulebook("missing.toml")
    with pytest.raises(TypeError, match="path_or_text must be a str or Path, got int"):
        load_rulebook(3)  # type: ignore[arg-type]


def test_non_contradictory_ladders_compile() -> None:
    text = (
        rule(id="r", metric="drawdown", threshold=0.03, action="reduce")
        + rule(id="h", metric="drawdown", threshold=0.05, action="halt")
        + rule(id="f", metric="drawdown", threshold=0.08, action="halt_flatten")
        # a milder action with a higher threshold is fine on a different window or scope
        + rule(id="w1", metric="fill_rate", threshold=50, window="1s", action="halt")
        + rule(id="w2", metric="fill_rate", threshold=100, window="10s", action="reduce")
        + rule(id="s1", metric="fill_rate", threshold=10, window="1s", action="halt", scope="AAPL")
        + rule(id="s2", metric="fill_rate", threshold=20, window="1s", action="reduce", scope="ESU4")
        # two deny rules on one metric: the tighter binds; redundant, not contradictory
        + rule(id="q1", metric="max_order_qty", threshold=10, action="deny")
        + rule(id="q2", metric="max_order_qty", threshold=5, action="deny")
    )
    rb = load_rulebook(text, TABLE)
    assert rb.ids == ("r", "h", "f", "w1", "w2", "s1", "s2", "q1", "q2")
    assert rb.rules[5, L.R_SCOPE] == 3 and rb.rules[6, L.R_SCOPE] == 0


def test_explain_sentences() -> None:
    rb = load_rulebook(
        rule(**QTY) + rule(id="dd", metric="drawdown", threshold=0.1, action="reduce")
        + rule(id="st", metric="stale_data", threshold="2s", action="deny", scope="AAPL")
        + rule(id="pc", metric="price_collar_sigma", threshold=3, action="deny"), TABLE)
    assert rb.explain(0, 12, 10) == ("Rule 'q' (max_order_qty, scope all): order quantity 12 "
                                     "exceeds the limit 10; action deny.")
    assert rb.explain(1, 0.125, 0.1) == ("Rule 'dd' (drawdown, scope all): drawdown 12.5000% from "
                                         "peak equity exceeds 10.0000%; action reduce.")
    assert rb.explain(2, math.inf, 2e9) == ("Rule 'st' (stale_data, scope AAPL): quote age "
                                            "infinite (no quote yet) exceeds 2 s; action deny.")
    assert "quote age 2.5 s exceeds 2 s" in rb.explain(2, 2.5e9, 2e9)
    assert "is 1.2000% (log distance) from mid, beyond the collar 1.0000%" in rb.explain(3, 0.012, 0.01)
    assert rb.explain(L.PSEUDO_REDUCING, -10, 100) == (
        "Kill switch REDUCING: the order would take the position from 100 to -10 (open orders as "
        "filled), not strictly toward 0.")
    assert rb.explain(L.PSEUDO_RESET, 2, 0).endswith("reset to ACTIVE (from state 2).")
    with pytest.raises(ValueError, match="rule_index 4 out of range for 4 rules"):
        rb.explain(4, 0, 0)
    with pytest.raises(ValueError, match="neither a row nor a PSEUDO"):
        rb.explain(-9, 0, 0)
    with pytest.raises(KeyError, match="did you mean 'dd'"):
        rb.index("ddd")


def test_new_risk_state_checks_scope_against_instrument_count() -> None:
    rb = load_rulebook(rule(**QTY, scope=3), TABLE)
    with pytest.raises(ValueError, match="scoped to instrument 3 but there are only 2 instruments"):
        new_risk_state(rb, 2)
    with pytest.raises(ValueError, match="n_instruments must be an int >= 1, got 0"):
        new_risk_state(rb, 0)
    with pytest.raises(ValueError, match=r"rules must be float64\[n_rules, 8\]"):
        new_risk_state(np.zeros((2, 3)), 1)


def test_a_rulebook_edited_past_its_memory_is_refused_too() -> None:
    # the check sits in Rulebook itself: a rulebook made by editing a loaded one's arrays (as the
    # benchmarks relax theirs) cannot slip a never-denying threshold past the loader
    rb = load_rulebook(rule(id="rep", metric="repeated_execution", threshold=20, window="10s",
                            action="deny"), TABLE)
    rules = rb.rules.copy()
    rules[0, L.R_THRESHOLD] = 1024.0  # capacity 1024: 1025 counted at most, so this still denies
    assert dataclasses.replace(rb, rules=rules).rules[0, L.R_THRESHOLD] == 1024.0
    rules[0, L.R_THRESHOLD] = 1025.0
    with pytest.raises(RulebookError, match="rule 'rep': field 'threshold': 1025 can never be exceeded"):
        dataclasses.replace(rb, rules=rules)
    rules[0, L.R_THRESHOLD] = math.inf  # the loader refuses it as not finite; an edit gets told so
    with pytest.raises(RulebookError, match="would never deny; give a finite threshold below 1025"):
        dataclasses.replace(rb, rules=rules)
