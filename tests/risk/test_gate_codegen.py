"""The pre-trade gate and activity monitor generated per rulebook shape (risk/gate_codegen.py)
against the generic ones.

Oracle: the generic ``pretrade_nb`` (its controls pinned down by hand in test_pretrade.py). The
same requests go through two copies of the same arrays, one gate each, on random rulebooks of
every pre-trade metric, scoped to all instruments or one, with kill-switch rules among them:
the same codes, observed values and thresholds, and the same state after every request.
Then one backtest of the canonical workload with the default rulebook, either gate: the same
records and result hash. The activity monitor: the same activity streams through two copies of
the state, on random books of activity triggers (scoped or not, actions of every severity, resets
between trips): the same returns, ``rstate`` and ``ks`` after every call.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tickguard.engine.layout import M_ASK, M_BID, M_MID, M_NF, M_TS_QUOTE
from tickguard.engine.records import (
    ACTION_CANCEL, ACTION_MODIFY, ACTION_SUBMIT, LOCAL_ORDER_DTYPE, OT_LIMIT, OT_MARKET, REQUEST_DTYPE,
    ST_FILLED, ST_IN_FLIGHT, ST_OPEN,
)
from tickguard.risk import RiskGate
from tickguard.risk import layout as L
from tickguard.risk.gate_codegen import gate_module, gate_source, rulebook_shape
from tickguard.risk.killswitch import new_risk_state
from tickguard.risk.pretrade import pretrade_nb
from tickguard.risk.rulebook import load_rulebook
from tickguard.risk.slots import int_view

S = 1_000_000_000
N_INST = 2


def _rule(k: int, metric: str, scope: object, **kw: object) -> str:
    lines = ["[[rule]]", f'id = "r{k}"', f'metric = "{metric}"',
             f'scope = {scope!r}' if isinstance(scope, int) else f'scope = "{scope}"']
    for key, v in kw.items():
        lines.append(f"{key} = {v}" if not isinstance(v, str) or v.startswith("{") else f'{key} = "{v}"')
    return "\n".join(lines) + "\n"


def _random_book(rng: np.random.Generator) -> str:
    """Every pre-trade metric may appear, some twice, scoped to all or to one instrument,
    thresholds near the requests below; kill-switch rules between them shift the rows."""
    pick = {
        "max_order_qty": lambda: dict(threshold=int(rng.integers(3, 16))),
        "max_order_notional": lambda: dict(threshold=float(rng.choice([300.0, 800.0, 1500.0]))),
        "price_collar_pct": lambda: dict(threshold=float(rng.choice([0.005, 0.02, 0.05]))),
        "price_collar_sigma": lambda: dict(threshold=float(rng.choice([1.0, 3.0])), window="1s",
                                           params="{ lambda = 0.9, floor = 0.001, cap = 0.05 }"),
        "max_position": lambda: dict(threshold=int(rng.integers(4, 20))),
        "max_position_notional": lambda: dict(threshold=float(rng.choice([800.0, 1500.0, 2500.0]))),
        "max_gross_exposure": lambda: dict(threshold=float(rng.choice([800.0, 1500.0, 3000.0]))),
        "max_net_exposure": lambda: dict(threshold=float(rng.choice([400.0, 1000.0, 2500.0]))),
        "message_rate": lambda: dict(threshold=int(rng.integers(1, 3)), window="5s"),
        "repeated_execution": lambda: dict(threshold=int(rng.integers(1, 4)), window="2s",
                                           params="{ capacity = 8 }"),
        "duplicate_order": lambda: dict(threshold=1, window=str(rng.choice(["200ms", "1s"]))),
        "restricted": lambda: {},
        "stale_data": lambda: dict(threshold=str(rng.choice(["1s", "3s", "10s"]))),
        "fill_rate": lambda: dict(threshold=5, window="1s"),  # a kill rule: the gate skips it
    }
    portfolio_wide = ("max_gross_exposure", "max_net_exposure")
    text = []
    for k in range(int(rng.integers(2, 9))):
        metric = list(pick)[int(rng.integers(0, len(pick)))]
        scope = "all" if metric in portfolio_wide else ["all", 0, 1][int(rng.integers(0, 3))]
        if metric == "restricted":
            scope = int(rng.integers(0, N_INST))
        action = "halt" if metric == "fill_rate" else "deny"
        text.append(_rule(k, metric, scope, action=action, **pick[metric]()))
    return "".join(text)


class _Desk:
    """The arrays the loop hands the gate, built by hand, and one gate."""

    def __init__(self, text: str, gate) -> None:  # noqa: ANN001
        self.rb = load_rulebook(text)
        self.gate = gate
        self.rs, self.ks = new_risk_state(self.rb, N_INST)
        self.mkt = np.full((N_INST, M_NF), np.nan)
        self.pos = np.zeros(N_INST)
        self.mult = np.array([1.0, 10.0])
        self.orders = np.zeros(24, dtype=LOCAL_ORDER_DTYPE)
        self.n_orders = 0

    def send(self, now: int, req: np.ndarray) -> int:
        return self.gate(req, now, self.mkt, self.pos, self.orders, np.arange(self.n_orders), self.mult,
                         self.rb.rules, self.rs, self.ks)


def _both_on_a_random_stream(seed: int) -> tuple[int, int, set[int]]:
    rng = np.random.default_rng(seed)
    text = _random_book(rng)
    generated = gate_module(load_rulebook(text).rules).pretrade_nb
    ours, oracle = _Desk(text, generated), _Desk(text, pretrade_nb)
    rb = ours.rb
    denied = passed = 0
    seen: set[int] = set()  # the metrics (or kill-switch codes) of the denials
    for step in range(80):
        now = int(step * S // 5)
        for d in (ours, oracle):  # the k-sigma collars' estimates, as their monitor would leave them
            for r in np.flatnonzero(rb.rules[:, L.R_METRIC] == L.MT_PRICE_COLLAR_SIGMA):
                rows = int_view(d.rs)[L.RS_HEADER + r] + L.SIG_ROWS
                d.rs[rows + L.SIG_VAR : rows + N_INST * L.SIG_NF : L.SIG_NF] = (step % 7) * 1e-5
                d.rs[rows + L.SIG_N : rows + N_INST * L.SIG_NF : L.SIG_NF] = step % 3
        for inst in range(N_INST):
            if rng.random() < 0.7:
                mid = 100.0 + rng.normal()
                bid, ask = (mid - 0.05, mid + 0.05) if rng.random() < 0.9 else (math.nan, math.nan)
                ts = now if rng.random() < 0.8 else (math.nan if rng.random() < 0.3 else now - 5 * S)
                for d in (ours, oracle):
                    d.mkt[inst, [M_BID, M_ASK, M_MID, M_TS_QUOTE]] = bid, ask, 0.5 * (bid + ask), ts
            p = float(rng.integers(-8, 9))
            ours.pos[inst] = oracle.pos[inst] = p
        if rng.random() < 0.3 and ours.n_orders < len(ours.orders):
            row = (ours.n_orders, int(rng.integers(0, N_INST)), int(rng.choice([-1, 1])),
                   float(rng.integers(1, 6)), int(rng.choice([ST_OPEN, ST_IN_FLIGHT, ST_FILLED])))
            for d in (ours, oracle):
                o = d.orders[d.n_orders]
                o["id"], o["instrument"], o["side"], o["qty"], o["status"] = row
                o["order_type"], o["price"] = OT_LIMIT, 100.0
                d.n_orders += 1
        state = rng.choice([L.KS_ACTIVE, L.KS_REDUCING, L.KS_HALTED], p=[0.85, 0.1, 0.05])
        ours.ks[L.KS_STATE] = oracle.ks[L.KS_STATE] = state
        u = rng.random()
        action = ACTION_CANCEL if u < 0.05 else (ACTION_MODIFY if u < 0.25 and ours.n_orders else ACTION_SUBMIT)
        price = math.nan if rng.random() < 0.4 else float(100.0 + rng.normal() * 2.0)
        q = np.zeros(1, dtype=REQUEST_DTYPE)
        # repeats: a small set of sizes and prices, so that the signature rules see twins
        twin = rng.random() < 0.6
        q[0] = (action, 0 if twin else int(rng.integers(0, N_INST)), OT_MARKET if math.isnan(price) else OT_LIMIT,
                1 if twin else int(rng.choice([-1, 1])),
                int(rng.integers(0, max(ours.n_orders, 1))) if action == ACTION_MODIFY else -1,
                (math.nan if math.isnan(price) else 100.5) if twin else price,
                2.0 if twin else float(rng.integers(1, 14)), 0)
        code = ours.send(now, q[0])
        assert code == oracle.send(now, q[0]), (seed, step, text)
        np.testing.assert_array_equal(ours.ks, oracle.ks, err_msg=f"seed {seed} step {step}")
        # the whole state but the open-order sums (scratch the generic gate's fast path may skip)
        scratch = L.RS_HEADER + len(rb.rules)
        keep = np.ones(len(ours.rs), dtype=bool)
        keep[scratch : scratch + 2 * N_INST] = False
        np.testing.assert_array_equal(ours.rs[keep], oracle.rs[keep], err_msg=f"seed {seed} step {step}\n{text}")
        denied += code != 0
        passed += code == 0
        if code:
            seen.add(int(rb.rules[code - 1, L.R_METRIC]) if code > 0 else code)
    return denied, passed, seen


def test_the_generated_gate_answers_as_the_generic_one_on_random_rulebooks() -> None:
    runs = [_both_on_a_random_stream(seed) for seed in range(16)]
    outcomes = np.array([(d, p) for d, p, _ in runs])
    # both outcomes in most streams, many of each overall, and a denial by every pre-trade metric
    # and by both kill-switch states
    assert outcomes.sum(axis=0).min() > 200 and ((outcomes > 0).all(axis=1)).mean() > 0.6
    seen = set().union(*(s for _, _, s in runs))
    assert set(range(1, L.MT_STALE_DATA + 1)) | {L.PSEUDO_HALTED, L.PSEUDO_REDUCING} <= seen, seen


def test_the_shape_is_the_metrics_and_scopes_and_keys_the_module() -> None:
    a = load_rulebook(_rule(0, "max_order_qty", "all", threshold=5, action="deny")
                      + _rule(1, "message_rate", 1, threshold=3, window="1s", action="deny"))
    b = load_rulebook(_rule(0, "max_order_qty", "all", threshold=50, action="deny")
                      + _rule(1, "message_rate", 0, threshold=9, window="2s", action="deny"))
    assert rulebook_shape(a.rules) == ((L.MT_MAX_ORDER_QTY, False), (L.MT_MESSAGE_RATE, True))
    assert gate_module(a.rules) is gate_module(b.rules)  # other numbers, the same code
    c = load_rulebook(_rule(0, "max_order_qty", 0, threshold=5, action="deny"))
    assert gate_module(c.rules) is not gate_module(a.rules)
    assert "rules[0, R_SCOPE] == inst" in gate_source(rulebook_shape(c.rules))


@pytest.fixture(scope="module")
def canonical_pair():
    from tickguard.benchmarks.engine import _engine_once, canonical_table, full_rulebook_gate, quote_workload

    table = canonical_table()
    ev = quote_workload(60_000)
    generic = full_rulebook_gate(table)
    # the default rulebook as shipped: its throttles deny some of the strategy's orders
    strict = RiskGate.load(instruments=table)
    out = {}
    for name, gate in (("relaxed", generic), ("strict", strict)):
        special = RiskGate(gate.rulebook, gate.source, specialize=True)
        assert special.module != gate.module
        out[name] = (_engine_once(ev, table, gate), _engine_once(ev, table, special))
    return out


def test_a_backtest_through_either_gate_gives_the_same_records(canonical_pair) -> None:
    for name, (generic, special) in canonical_pair.items():
        for field in ("orders", "order_events", "fills", "equity", "risk_events"):
            a, b = getattr(generic, field), getattr(special, field)
            assert a.tobytes() == b.tobytes(), f"{name}: {field} differ"
        assert generic.result_hash == special.result_hash
    assert len(canonical_pair["strict"][0].risk_events) > 0  # the strict book denied something


def _random_kill_book(rng: np.random.Generator) -> str:
    """Activity triggers (each may appear twice, scoped to all or one instrument, thresholds that
    trip on the streams below), with other rules between them to shift the rows."""
    pick = {
        "order_to_trade": lambda: dict(threshold=float(rng.choice([1.5, 3.0, 6.0])), window="50ms",
                                       params=f"{{ min_orders = {int(rng.integers(0, 8))}, capacity = 16 }}"),
        "reject_rate": lambda: dict(threshold=float(rng.choice([0.3, 0.6])), window="50ms",
                                    params=f"{{ min_orders = {int(rng.integers(1, 6))} }}"),
        "message_rate_kill": lambda: dict(threshold=int(rng.integers(3, 9)), window="20ms"),
        "fill_rate": lambda: dict(threshold=int(rng.integers(1, 5)), window="20ms"),
        "drawdown": lambda: dict(threshold=0.05),
        "max_order_qty": lambda: dict(threshold=10),
    }
    text = []
    for k in range(int(rng.integers(2, 8))):
        metric = list(pick)[int(rng.integers(0, len(pick)))]
        scope = ["all", 0, 1][int(rng.integers(0, 3))] if metric != "drawdown" else "all"
        action = "deny" if metric == "max_order_qty" else str(rng.choice(["reduce", "halt", "halt_flatten"]))
        text.append(_rule(k, metric, scope, action=action, **pick[metric]()))
    return "".join(text)


@pytest.mark.parametrize("seed", range(5))  # a compile per shape (~10 s): few books, long streams
def test_the_generated_activity_monitor_matches_the_generic_one(seed: int) -> None:
    from tickguard.risk.killswitch import monitor_activity_nb, reset_nb

    from tickguard.risk.rulebook import RulebookError

    rng = np.random.default_rng(100 + seed)
    while True:  # a book the loader accepts (random actions may form a contradictory pair)
        text = _random_kill_book(rng)
        try:
            rb = load_rulebook(text)
            break
        except RulebookError:
            continue
    generated = gate_module(rb.rules).monitor_activity_nb
    (rs_a, ks_a), (rs_b, ks_b) = new_risk_state(rb, N_INST), new_risk_state(rb, N_INST)
    now, trips = 0, 0
    for _ in range(3000):
        now += int(rng.integers(0, 1_000_000))  # 0-1 ms apart, ties included
        what, inst = int(rng.integers(0, L.AC_NCODES + 2)), int(rng.integers(0, N_INST))  # codes 0 and 6: none
        a = monitor_activity_nb(now, what, inst, rb.rules, rs_a, ks_a)
        b = generated(now, what, inst, rb.rules, rs_b, ks_b)
        assert a == b and rs_a.tobytes() == rs_b.tobytes() and ks_a.tobytes() == ks_b.tobytes(), text
        if a:
            trips += 1
            if rng.random() < 0.5:  # re-arm both, so later trips are compared too
                reset_nb(now, rb.rules, rs_a, ks_a), reset_nb(now, rb.rules, rs_b, ks_b)
    has_trigger = any(m in ("order_to_trade", "reject_rate", "message_rate_kill", "fill_rate") for m in rb.metrics)
    assert trips > 0 or not has_trigger, f"no trip to compare: {text}"
