"""Pre-trade gate kernel: each control broken by a hand-built request sequence, with the exact
rule code, observed value and threshold; kill-switch enforcement (HALTED, REDUCING) on top."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from tickguard.data.schema import KIND_QUOTE
from tickguard.engine.layout import M_ASK, M_BID, M_MID, M_NF, M_TS_QUOTE
from tickguard.engine.records import (
    ACTION_CANCEL, ACTION_MODIFY, ACTION_SUBMIT, LOCAL_ORDER_DTYPE, OT_IOC, OT_LIMIT, OT_MARKET,
    REQUEST_DTYPE, ST_CANCELLED, ST_FILLED, ST_IN_FLIGHT, ST_OPEN,
)
from tickguard.risk import layout as L
from tickguard.risk.killswitch import escalate_nb, monitor_event_nb, new_risk_state
from tickguard.risk.pretrade import gate_rule_index, pretrade_nb
from tickguard.risk.rulebook import load_rulebook
from tickguard.risk.slots import int_view

S = 1_000_000_000  # ns per second


def rule(**fields: object) -> str:
    lines = ["[[rule]]"]
    for k, v in fields.items():
        raw = not isinstance(v, str) or v.startswith("{")
        lines.append(f"{k} = {v}" if raw else f'{k} = "{v}"')
    return "\n".join(lines) + "\n"


def deny(id: str, metric: str, threshold: object, **kw: object) -> str:  # noqa: A002
    return rule(id=id, metric=metric, threshold=threshold, action="deny", **kw)


@dataclass
class Desk:
    """The arrays the loop hands the gate, built by hand."""

    text: str
    n: int = 2
    mult: np.ndarray = field(default_factory=lambda: np.ones(2))

    def __post_init__(self) -> None:
        self.rb = load_rulebook(self.text)
        self.rs, self.ks = new_risk_state(self.rb, self.n)
        self.mkt = np.full((self.n, M_NF), np.nan)
        self.pos = np.zeros(self.n)
        self.orders = np.zeros(16, dtype=LOCAL_ORDER_DTYPE)
        self.n_orders = 0
        for i in range(self.n):
            self.quote(i, 99.5, 100.5, ts=0)

    def quote(self, inst: int, bid: float, ask: float, ts: int) -> None:
        self.mkt[inst, [M_BID, M_ASK, M_MID, M_TS_QUOTE]] = bid, ask, 0.5 * (bid + ask), ts

    def order(self, inst: int, side: int, qty: float, filled: float = 0.0, status: int = ST_OPEN,
              price: float = 100.0) -> int:
        o = self.orders[self.n_orders]
        o["id"], o["instrument"], o["side"], o["order_type"] = self.n_orders, inst, side, OT_LIMIT
        o["status"], o["qty"], o["filled"], o["price"] = status, qty, filled, price
        self.n_orders += 1
        return self.n_orders - 1

    def send(self, now: int, action: int = ACTION_SUBMIT, inst: int = 0, side: int = 1,
             qty: float = 1.0, price: float = 100.0, otype: int = OT_LIMIT, oid: int = -1) -> int:
        q = np.zeros(1, dtype=REQUEST_DTYPE)
        q[0] = (action, inst, otype, side, oid, price, qty, 0)
        # every row as "working": the gate must still skip the done ones by their status
        return pretrade_nb(q[0], now, self.mkt, self.pos, self.orders, np.arange(self.n_orders),
                           self.mult, self.rb.rules, self.rs, self.ks)

    @property
    def last(self) -> tuple[float, float]:
        return self.ks[L.KS_LAST_OBSERVED], self.ks[L.KS_LAST_THRESHOLD]


def test_order_size_and_notional() -> None:
    d = Desk(deny("pad", "max_position", 1e9) + deny("qty", "max_order_qty", 10)
             + deny("ntl", "max_order_notional", 9_999.0, scope=1), mult=np.array([1.0, 50.0]))
    assert d.send(0, qty=10) == 0  # at the limit: passes
    assert d.send(0, qty=10.5) == 2 and d.last == (10.5, 10.0)
    assert d.send(0, inst=1, qty=2, price=99.99) == 0  # 2 x 99.99 x 50 = 9999
    assert d.send(0, inst=1, qty=2, price=100.0) == 3 and d.last == (10_000.0, 9_999.0)
    # a market buy is valued at the ask it would take, a market sell at the bid
    assert d.send(0, inst=1, qty=2, price=math.nan, otype=OT_MARKET) == 3
    assert d.last == (2 * 100.5 * 50, 9_999.0)
    assert d.send(0, inst=1, side=-1, qty=2, price=math.nan, otype=OT_MARKET) == 0  # 9950
    assert gate_rule_index(3) == 2 and gate_rule_index(L.PSEUDO_HALTED) == -1


def test_price_collar_pct_and_fail_closed() -> None:
    d = Desk(deny("col", "price_collar_pct", 0.05))  # mid 100
    assert d.send(0, price=104.9) == 0 and d.send(0, side=-1, price=95.1) == 0
    assert d.send(0, price=105.1) == 1
    assert d.last[0] == pytest.approx(0.051, rel=1e-12) and d.last[1] == 0.05
    assert d.send(0, side=-1, price=94.0) == 1 and d.last[0] == pytest.approx(0.06, rel=1e-12)
    assert d.send(0, price=math.nan, otype=OT_MARKET) == 0  # market orders are not collared
    d.mkt[0, M_MID] = math.nan  # no mid: a limit price cannot be checked -> refused
    assert d.send(0, price=100.0) == 1 and d.last == (math.inf, 0.05)


def test_price_collar_sigma_follows_ewma_of_mid_returns_sampled_every_window() -> None:
    lam, k, floor, cap = 0.8, 3.0, 0.0005, 0.004
    d = Desk(deny("sig", "price_collar_sigma", k, window="1s",
                  params=f"{{ lambda = {lam}, floor = {floor}, cap = {cap} }}"), n=1)
    # before any return sigma is 0: the floor is the collar
    assert d.send(0, price=100.0 * math.exp(0.0004)) == 0
    assert d.send(0, price=100.0 * math.exp(-0.0006)) == 1
    assert d.last == (pytest.approx(0.0006, rel=1e-9), floor)
    S = 1_000_000_000
    quotes = [(0.2, 100.0), (0.5, 100.02), (1.0, 100.02), (1.7, 99.98), (2.3, 100.05), (3.9, 100.05),
              (4.1, 100.01), (6.5, 100.03)]  # (seconds, mid)
    for sec, m in quotes:
        t = round(sec * S)
        d.quote(0, m - 0.01, m + 0.01, ts=t)
        monitor_event_nb(t, int(KIND_QUOTE), 0, 0, 0, d.mkt, d.rb.rules, d.rs, d.ks)
    # worked by hand: the first event, then the first event at or after each whole second
    # (1.0 itself counts; 3.0 is first reached at 3.9, 4.0 at 4.1, 5.0 and 6.0 only at 6.5)
    sampled = pd.Series({0.2: 100.0, 1.0: 100.02, 2.3: 100.05, 3.9: 100.05, 4.1: 100.01, 6.5: 100.03})
    elapsed = pd.Series(sampled.index, index=sampled.index).diff()  # seconds between samples
    per_window = (np.log(sampled).diff() ** 2 / elapsed).dropna()  # squares scaled to one second
    sigma = math.sqrt(per_window.ewm(alpha=1 - lam, adjust=False).mean().iloc[-1])  # oracle: pandas
    width = min(max(k * sigma, floor), cap)
    assert floor < width < cap  # this case exercises k sigma itself
    mid = quotes[-1][1]
    assert d.send(7 * S, price=mid * math.exp(0.99 * width)) == 0
    assert d.send(7 * S, price=mid * math.exp(-1.01 * width)) == 1
    assert d.last[0] == pytest.approx(1.01 * width, rel=1e-9)
    assert d.last[1] == pytest.approx(width, rel=1e-9)
    assert d.ks[L.KS_WAKE_AT] == 7 * S  # the loop will wake the monitor for the next sample
    d.quote(0, 110.0, 110.2, ts=7 * S)  # a 10% jump, sampled at 7 s: k sigma now far above the cap
    monitor_event_nb(7 * S, int(KIND_QUOTE), 0, 0, 0, d.mkt, d.rb.rules, d.rs, d.ks)
    assert d.send(7 * S, price=110.1 * math.exp(0.0041)) == 1 and d.last[1] == cap


def test_price_collar_sigma_window_defaults_to_one_second() -> None:
    d = Desk(deny("sig", "price_collar_sigma", 3.0), n=1)
    assert d.rb.rules[0, L.R_WINDOW] == 1e9


def test_max_position_counts_open_orders_on_the_same_side() -> None:
    d = Desk(deny("pos", "max_position", 100))
    d.pos[0] = 50.0
    d.order(0, +1, 40.0, filled=10.0)  # 30 remaining, counted for buys
    d.order(0, +1, 25.0, status=ST_FILLED)  # done: ignored
    d.order(0, +1, 25.0, status=ST_CANCELLED)
    d.order(1, +1, 500.0)  # another instrument
    d.order(0, -1, 500.0)  # a sell does not offset a buy (it may never fill)
    assert d.send(0, qty=20) == 0  # 50 + 30 + 20 = 100
    assert d.send(0, qty=21) == 1 and d.last == (101.0, 100.0)
    # sells count only for sells: |50 - 500 - 349| = 799, up from 450
    assert d.send(0, side=-1, qty=349) == 1 and d.last == (799.0, 100.0)


def test_max_position_denies_growth_and_allows_reduction() -> None:
    d = Desk(deny("pos", "max_position", 100))
    d.pos[0] = 150.0  # over the limit (e.g. the limit was lowered)
    assert d.send(0, side=-1, qty=10) == 0  # shrinks |150| to 140: never denied
    assert d.send(0, qty=1) == 1 and d.last == (151.0, 100.0)
    d.pos[0] = 0.0
    d.order(0, -1, 60.0)
    assert d.send(0, side=-1, qty=40) == 0  # |0 - 60 - 40| = 100
    assert d.send(0, side=-1, qty=41) == 1 and d.last == (101.0, 100.0)
    # a modify replaces the order's remaining size: 60 -> 101 sells
    assert d.send(0, action=ACTION_MODIFY, oid=0, qty=100) == 0
    assert d.send(0, action=ACTION_MODIFY, oid=0, qty=101) == 1 and d.last == (101.0, 100.0)
    assert d.send(0, action=ACTION_CANCEL, oid=0) == 0


def test_position_notional_gross_and_net_exposure() -> None:
    mult = np.array([1.0, 50.0])
    text = (deny("pn", "max_position_notional", 20_000.0, scope=1)
            + deny("gross", "max_gross_exposure", 60_000.0) + deny("net", "max_net_exposure", 15_000.0))
    d = Desk(text, mult=mult)
    d.quote(1, 199.5, 200.5, ts=0)  # value per unit: instrument 0: 100 x 1; instrument 1: 200 x 50
    d.pos[:] = [100.0, -1.0]
    d.order(1, -1, 1.0)  # instrument 1 may go to -2
    d.order(0, +1, 50.0)  # instrument 0 may go to 150
    # instrument 1: |-1 - 1 - 1| x 10_000 = 30_000 (was 20_000)
    assert d.send(0, inst=1, side=-1, qty=1) == 1 and d.last == (30_000.0, 20_000.0)
    # net, all buys filled: (100 + 50 + q) x 100 - 1 x 10_000; all sells filled: 10_000 - 20_000
    assert d.send(0, inst=0, qty=100) == 0  # 25_000 - 10_000 = 15_000: at the limit
    assert d.send(0, inst=0, qty=101) == 3 and d.last == (15_100.0, 15_000.0)
    d2 = Desk(deny("gross", "max_gross_exposure", 40_000.0), mult=mult)
    d2.quote(1, 199.5, 200.5, ts=0)
    d2.pos[:] = [100.0, -1.0]
    d2.order(1, -1, 1.0)
    d2.order(0, +1, 50.0)
    # gross: max(|150 + q|, |100|) x 100 + max(|-1|, |-2|) x 10_000
    assert d2.send(0, inst=0, qty=50) == 0  # 20_000 + 20_000 = 40_000
    assert d2.send(0, inst=0, qty=51) == 1 and d2.last == (40_100.0, 40_000.0)
    d2.mkt[1, M_MID] = math.nan  # a held instrument without a mid: exposure unknown -> refused
    assert d2.send(0, inst=0, qty=1) == 1 and d2.last == (math.inf, 40_000.0)


def test_message_rate_token_bucket_per_action_type() -> None:
    d = Desk(deny("mr", "message_rate", 2, window="1s"))  # 2 per second, burst 2
    assert [d.send(0) for _ in range(3)] == [0, 0, 1]
    assert d.last == (0.0, 1.0)  # an empty bucket
    assert d.send(S // 4) == 1 and d.last == (0.5, 1.0)  # refilled half a message
    assert [d.send(S // 2 - 1), d.send(S // 2)] == [1, 0]  # one message after 0.5 s
    for t in range(S // 2, S, S // 10):  # denials do not refill nor charge
        assert d.send(t) == 1
    assert d.send(S) == 0  # exactly one more token by t = 1 s
    # modifies draw on their own bucket; cancels are never throttled
    oid = d.order(0, +1, 1.0)
    assert [d.send(S, ACTION_MODIFY, oid=oid, qty=2) for _ in range(3)] == [0, 0, 1]
    assert all(d.send(S, ACTION_CANCEL, oid=oid) == 0 for _ in range(100))
    # after a long quiet spell the bucket holds at most the burst
    assert [d.send(100 * S) for _ in range(3)] == [0, 0, 1]


def test_repeated_execution_and_duplicates_on_a_closed_window() -> None:
    text = (deny("rep", "repeated_execution", 2, window="1s", scope=0)
            + deny("dup", "duplicate_order", 1, window="100ms", scope=1))
    d = Desk(text)
    assert d.send(0) == 0 and d.send(S // 10) == 0
    assert d.send(S // 5) == 1 and d.last == (3.0, 2.0)  # a third within 1 s
    assert d.send(S // 5, price=100.01) == 0 and d.send(S // 5, side=-1) == 0  # other signatures
    assert d.send(S // 5, qty=2) == 0
    assert d.send(S) == 1  # the order at t = 0 is exactly 1 s old: still inside [now - 1 s, now]
    assert d.send(S + 1) == 0  # ... and gone 1 ns later
    # duplicates: identical incl. order type; market orders (NaN price) are identical too
    assert d.send(0, inst=1, price=math.nan, otype=OT_MARKET) == 0
    assert d.send(S // 20, inst=1, price=math.nan, otype=OT_MARKET) == 2 and d.last == (2.0, 1.0)
    assert d.send(S // 20, inst=1, price=math.nan, otype=OT_IOC) == 0
    assert d.send(S // 10, inst=1, price=math.nan, otype=OT_MARKET) == 2  # t = 0 still inside
    assert d.send(S // 10 + 1, inst=1, price=math.nan, otype=OT_MARKET) == 0


@pytest.mark.parametrize("threshold", [4, 4.5])
def test_a_repeat_threshold_at_the_memorys_edge_still_denies(threshold: float) -> None:
    # capacity 4: the memory holds 4 identical orders, so the 5th counts 5 > 4 (or 4.5) and is
    # denied; a threshold of 5 or more could never be exceeded, and the rulebook refuses it
    # (tests/risk/test_rulebook.py)
    d = Desk(deny("rep", "repeated_execution", threshold, window="1s", params="{ capacity = 4 }"))
    assert [d.send(k) for k in range(4)] == [0, 0, 0, 0]
    assert d.send(4) == 1 and d.last == (5.0, threshold)


def test_restricted_and_stale_data() -> None:
    d = Desk(rule(id="ban", metric="restricted", scope=1, action="deny")
             + deny("stale", "stale_data", "2s"))
    assert d.send(0, inst=1) == 1 and d.last == (1.0, 0.0)
    assert d.send(0, inst=1, action=ACTION_CANCEL, oid=0) == 0
    assert d.send(2 * S) == 0  # quoted at t = 0: exactly 2 s old passes
    assert d.send(2 * S + 1) == 2 and d.last == (2 * S + 1, 2 * S)
    d.mkt[0, M_TS_QUOTE] = math.nan  # never quoted
    assert d.send(0) == 2 and d.last == (math.inf, 2 * S)


def test_first_denying_rule_in_book_order_and_throttle_charged_only_on_pass() -> None:
    d = Desk(deny("mr", "message_rate", 1, window="1s") + deny("qty", "max_order_qty", 5))
    assert d.send(0, qty=6) == 2  # the bucket had a token but the order was denied later ...
    assert d.send(0, qty=5) == 0  # ... so the token is still there
    assert d.send(0, qty=6) == 1  # now the throttle (listed first) answers first


def test_a_later_denial_undoes_the_throttle_and_memories_the_order_passed() -> None:
    # hand-worked: 10 messages per second, burst 2; at most 2 identical orders per second; no
    # identical second within 100 ms. The gate charges each rule as it passes, so a duplicate
    # denied by the last rule must leave the bucket and the repeat memory as they were.
    d = Desk(deny("mr", "message_rate", 10, window="1s", params="{ burst = 2 }")
             + deny("rep", "repeated_execution", 2, window="1s")
             + deny("dup", "duplicate_order", 1, window="100ms"))
    assert d.send(0) == 0  # A: a token left, A remembered by both
    assert d.send(0) == 3 and d.last == (2.0, 1.0)  # A again: a duplicate (throttle, repeat passed)
    assert d.send(0, price=100.5) == 0  # B takes the token the duplicate did not
    assert d.send(0, price=101.0) == 1  # and the bucket is empty
    # at 200 ms the bucket is full again and the duplicate window has passed: A counts 2 within
    # the second (the one at 0 and this one; the denied one not), which repeat-throttle allows
    assert d.send(S // 5) == 0
    assert d.send(S // 5 + 1) == 2 and d.last == (3.0, 2.0)  # a third A within the second


def test_halted_refuses_every_submit_and_modify_but_no_cancel() -> None:
    d = Desk(deny("qty", "max_order_qty", 1e9))
    oid = d.order(0, +1, 5.0)
    assert escalate_nb(7, 3, L.ACT_HALT, 123.0, 100.0, d.ks) == L.KS_HALTED
    assert d.send(8) == L.PSEUDO_HALTED and d.last == (123.0, 100.0)
    assert d.send(8, side=-1) == L.PSEUDO_HALTED
    assert d.send(8, ACTION_MODIFY, oid=oid, qty=1) == L.PSEUDO_HALTED
    assert d.send(8, ACTION_CANCEL, oid=oid) == 0


def test_reducing_accepts_only_pure_reductions_counting_open_orders() -> None:
    d = Desk(deny("qty", "max_order_qty", 1e9))
    escalate_nb(0, 0, L.ACT_REDUCE, 1.0, 1.0, d.ks)
    assert d.ks[L.KS_STATE] == L.KS_REDUCING
    d.pos[0] = 100.0
    oid = d.order(0, -1, 40.0, filled=10.0)  # 30 to sell still working
    d.order(0, +1, 1000.0)  # buys do not help a sell go through
    assert d.send(0, side=-1, qty=70) == 0  # 100 - 30 - 70 = 0: flat, allowed
    assert d.send(0, side=-1, qty=71) == L.PSEUDO_REDUCING and d.last == (-1.0, 100.0)  # flip
    assert d.send(0, side=+1, qty=1) == L.PSEUDO_REDUCING and d.last == (1101.0, 100.0)
    # modifies: shrinking an order always passes; growing must stay a pure reduction
    assert d.send(0, ACTION_MODIFY, oid=1, qty=500) == 0
    assert d.send(0, ACTION_MODIFY, oid=oid, qty=110) == 0  # 100 - 100 = 0
    assert d.send(0, ACTION_MODIFY, oid=oid, qty=111) == L.PSEUDO_REDUCING
    d.pos[1] = 0.0  # from flat, both sides are refused
    assert d.send(0, inst=1, side=1) == L.PSEUDO_REDUCING and d.last == (1.0, 0.0)
    assert d.send(0, inst=1, side=-1) == L.PSEUDO_REDUCING and d.last == (-1.0, 0.0)
    d.pos[1] = -50.0
    assert d.send(0, inst=1, side=1, qty=50) == 0 and d.send(0, inst=1, side=1, qty=51) < 0
    d.orders[oid]["status"] = ST_IN_FLIGHT  # in flight counts as working too
    assert d.send(0, side=-1, qty=71) == L.PSEUDO_REDUCING


def test_the_first_denying_rule_in_rulebook_order_is_reported_whatever_the_metrics() -> None:
    # the gate checks metric by metric (RS_PRE_TABLE), not rule by rule: with several rules
    # refusing one order, the reported one must still be the first of them in the rulebook.
    # The order: 50 lots (over `qty`), at 110 (over the collar), 10 s after the last quote
    # (stale), a fourth rule of each metric allowing it; written in both orders
    refusing = [deny("stale", "stale_data", "1s"), deny("qty", "max_order_qty", 10),
                deny("col", "price_collar_pct", 0.05)]
    allowing = [deny("stale-ok", "stale_data", "60s"), deny("qty-ok", "max_order_qty", 100),
                deny("col-ok", "price_collar_pct", 0.5)]
    for book in (allowing + refusing, refusing[::-1] + allowing, [allowing[1], refusing[0], refusing[2]]):
        d = Desk("".join(book))
        first = next(k for k, text in enumerate(book) if text in refusing)
        assert d.send(10 * S, qty=50, price=110.0) == first + 1, book
        observed = {0: 10.0 * S, 1: 50.0, 2: pytest.approx(0.1, rel=1e-12)}[refusing.index(book[first])]
        assert d.last[0] == observed
    d = Desk("".join(allowing + refusing))
    assert d.send(10 * S, qty=5, price=101.0) == 4  # only stale refuses now
    d.quote(0, 99.5, 100.5, ts=10 * S)
    assert d.send(10 * S, qty=5, price=101.0) == 0


# ------------------------------------------------ the fast table against the rule-by-rule pass
def _random_book(rng: np.random.Generator) -> str:
    """Stateless rules of every metric, scoped to all or one instrument, thresholds near the
    orders below (so that some deny and some do not), with stateful rules among them."""
    pick = {
        "max_order_qty": lambda: int(rng.integers(3, 16)),
        "max_order_notional": lambda: float(rng.choice([300.0, 800.0, 1500.0])),
        "price_collar_pct": lambda: float(rng.choice([0.005, 0.02, 0.05])),
        "max_position": lambda: int(rng.integers(4, 20)),
        "max_position_notional": lambda: float(rng.choice([800.0, 1500.0, 2500.0])),
        "max_gross_exposure": lambda: float(rng.choice([800.0, 1500.0, 3000.0])),
        "max_net_exposure": lambda: float(rng.choice([400.0, 1000.0, 2500.0])),
        "stale_data": lambda: str(rng.choice(["1s", "3s", "10s"])),
    }
    text = []
    for k in range(int(rng.integers(1, 7))):
        scope = ["all", 0, 1][int(rng.integers(0, 3))]
        kind = rng.integers(0, len(pick) + 3)
        if kind < len(pick):
            metric = list(pick)[kind]
            portfolio_wide = metric in ("max_gross_exposure", "max_net_exposure")
            text.append(deny(f"r{k}", metric, pick[metric](), scope="all" if portfolio_wide else scope))
        elif kind == len(pick):
            text.append(rule(id=f"r{k}", metric="restricted", scope=int(rng.integers(0, 2)), action="deny"))
        elif kind == len(pick) + 1:
            text.append(deny(f"r{k}", "message_rate", 5, window="1s", scope=scope))
        else:
            text.append(deny(f"r{k}", "duplicate_order", 1, window="200ms", scope=scope))
    return "".join(text)


def _fast_and_slow_on_a_random_stream(seed: int) -> tuple[int, int]:
    # the same requests through two desks, one whose gate has no fast table (every order takes
    # the rule-by-rule pass, which the tests above check by hand): same answers, same observed
    # values and thresholds, the same state after (throttles charged, orders remembered)
    rng = np.random.default_rng(seed)
    text = _random_book(rng)
    fast, slow = Desk(text), Desk(text)
    int_view(slow.rs)[L.RS_FAST] = -1  # an integer slot (risk/slots.py)
    denied = passed = 0
    for step in range(60):
        now = int(step * S // 4)
        for inst in range(2):
            if rng.random() < 0.7:
                mid = 100.0 + rng.normal()
                bid, ask = (mid - 0.05, mid + 0.05) if rng.random() < 0.9 else (math.nan, math.nan)
                ts = now if rng.random() < 0.8 else (math.nan if rng.random() < 0.3 else now - 5 * S)
                for d in (fast, slow):
                    d.quote(inst, bid, ask, ts=0)
                    d.mkt[inst, M_TS_QUOTE] = ts
            p = float(rng.integers(-8, 9))
            fast.pos[inst] = slow.pos[inst] = p
        if rng.random() < 0.3 and fast.n_orders < len(fast.orders):
            args = dict(inst=int(rng.integers(0, 2)), side=int(rng.choice([-1, 1])),
                        qty=float(rng.integers(1, 6)),
                        status=int(rng.choice([ST_OPEN, ST_IN_FLIGHT, ST_FILLED])))
            fast.order(**args)
            slow.order(**args)
        # the kill switch's state set by hand, a tenth of the requests in REDUCING
        fast.ks[L.KS_STATE] = slow.ks[L.KS_STATE] = L.KS_REDUCING if rng.random() < 0.1 else L.KS_ACTIVE
        modify = rng.random() < 0.2 and fast.n_orders > 0
        req = dict(inst=int(rng.integers(0, 2)), side=int(rng.choice([-1, 1])),
                   qty=float(rng.integers(1, 14)),
                   price=math.nan if rng.random() < 0.4 else float(100.0 + rng.normal() * 2.0),
                   action=ACTION_MODIFY if modify else ACTION_SUBMIT,
                   oid=int(rng.integers(0, fast.n_orders)) if modify else -1)
        req["otype"] = OT_MARKET if math.isnan(req["price"]) else OT_LIMIT
        code = fast.send(now, **req)
        assert code == slow.send(now, **req), (seed, step, text)
        if code != 0:
            denied += 1
            np.testing.assert_array_equal(fast.last, slow.last)
        else:
            passed += 1
        # the state, but the fast table's offset and the open-order sums (scratch: the fast
        # path sums them for fewer orders)
        scratch = L.RS_HEADER + len(fast.rb.rules)
        keep = np.ones(len(fast.rs), dtype=bool)
        keep[[L.RS_FAST, *range(scratch, scratch + 2 * fast.n)]] = False
        np.testing.assert_array_equal(fast.rs[keep], slow.rs[keep])
    return denied, passed


def test_fast_table_gives_what_the_rule_by_rule_pass_gives() -> None:
    outcomes = np.array([_fast_and_slow_on_a_random_stream(seed) for seed in range(60)])
    # both outcomes exercised, in most streams
    assert outcomes.sum(axis=0).min() > 900 and ((outcomes > 0).all(axis=1)).mean() > 0.7


def test_fast_table_holds_each_metrics_tightest_threshold_per_instrument() -> None:
    d = Desk(deny("a", "max_order_qty", 10) + deny("b", "max_order_qty", 4, scope=1)
             + deny("c", "max_position", 7, scope=0)
             + rule(id="x", metric="restricted", scope=1, action="deny")
             + deny("s", "stale_data", "2s", scope=1) + deny("t", "stale_data", "3s"))
    ft = int_view(d.rs)[L.RS_FAST]
    table = d.rs[ft : ft + 2 * L.FT_NF].reshape(2, L.FT_NF)
    inf = math.inf
    np.testing.assert_array_equal(table[0], [10, inf, inf, 7, inf, inf, inf, 3 * S, 0])
    np.testing.assert_array_equal(table[1], [4, inf, inf, inf, inf, inf, inf, 2 * S, 1])
