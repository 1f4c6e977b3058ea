"""Kill switch: latching, every trigger broken by a hand-built sequence (exact rule, observed value,
threshold and time), the Knight Capital runaway, deque twins of the sliding windows, and a
hypothesis invariant (monotone state, nothing passes in HALTED)."""

from __future__ import annotations

import math
from collections import deque
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from tickguard.data.schema import KIND_CONTROL, KIND_QUOTE, KIND_TRADE
from tickguard.engine.layout import M_ASK, M_BID, M_MID, M_NF, M_TS_QUOTE
from tickguard.engine.records import (
    ACTION_MODIFY, ACTION_SUBMIT, LOCAL_ORDER_DTYPE, OT_LIMIT, REQUEST_DTYPE, ST_OPEN,
)
from tickguard.risk import layout as L
from tickguard.risk.killswitch import (
    RING_CUT_MIN, escalate_nb, monitor_activity_nb, monitor_event_nb, monitor_sample_nb, new_risk_state,
    reset_nb,
)
from tickguard.risk.pretrade import pretrade_nb
from tickguard.risk.rulebook import load_rulebook
from tickguard.risk.slots import int_view

S = 1_000_000_000
MS = 1_000_000
Q, T, C = int(KIND_QUOTE), int(KIND_TRADE), int(KIND_CONTROL)
SUB, FILL, REJ, CXL, MOD = L.AC_SUBMIT, L.AC_FILL, L.AC_REJECT, L.AC_CANCEL, L.AC_MODIFY


def rule(**fields: object) -> str:
    lines = ["[[rule]]"]
    for k, v in fields.items():
        raw = not isinstance(v, str) or v.startswith("{")
        lines.append(f"{k} = {v}" if raw else f'{k} = "{v}"')
    return "\n".join(lines) + "\n"


def kill(id: str, metric: str, threshold: object = None, action: str = "halt", **kw: object) -> str:  # noqa: A002
    if threshold is not None:
        kw["threshold"] = threshold
    return rule(id=id, metric=metric, action=action, **kw)


class Switch:
    def __init__(self, text: str, n: int = 2) -> None:
        self.rb = load_rulebook(text)
        self.rs, self.ks = new_risk_state(self.rb, n)
        self.ints = int_view(self.rs)  # its integer slots (risk/slots.py)
        self.mkt = np.full((n, M_NF), np.nan)

    def event(self, now: int, kind: int = Q, inst: int = 0, side: int = 0, level: int = 0,
              bid: float = 99.5, ask: float = 100.5) -> int:
        if kind & Q:
            self.mkt[inst, [M_BID, M_ASK, M_MID, M_TS_QUOTE]] = bid, ask, 0.5 * (bid + ask), now
        tr = monitor_event_nb(now, kind, inst, side, level, self.mkt, self.rb.rules, self.rs, self.ks)
        self.ks[L.KS_PREV_TS] = now  # as the loop does after every local event
        return tr

    def sample(self, now: int, equity: float, pnl: float) -> int:
        return monitor_sample_nb(now, equity, pnl, self.rb.rules, self.rs, self.ks)

    def act(self, now: int, what: int, inst: int = 0) -> int:
        return monitor_activity_nb(now, what, inst, self.rb.rules, self.rs, self.ks)

    @property
    def why(self) -> tuple[float, float, float, float, float]:
        k = self.ks
        return (k[L.KS_STATE], k[L.KS_RULE], k[L.KS_TS], k[L.KS_OBSERVED], k[L.KS_THRESHOLD])

    def ring(self, r: int) -> tuple[float, float, float, float]:
        off = self.ints[L.RS_HEADER + r]
        return (float(self.ints[off + L.RB_COUNT]),
                *(self.rs[off + k] for k in (L.RB_NUM, L.RB_DEN, L.RB_OVERFLOW)))

    def ratio_rows(self, r: int, cutoff: float) -> tuple[int, int]:
        """A ratio trigger's ring read row by row: the (class 0, class 1) entries at or after
        ``cutoff``. The ring may also hold older ones (its expiry is lazy); it must miss none."""
        off = self.ints[L.RS_HEADER + r]
        head, n, cap = (int(self.ints[off + k]) for k in (L.RB_HEAD, L.RB_COUNT, L.RB_CAP))
        rows = [off + L.RB_NF + 2 * ((head + k) % cap) for k in range(n)]
        ts = np.array([self.rs[i] for i in rows])
        cls = np.array([self.rs[i + 1] for i in rows])
        assert np.all(np.diff(ts) >= 0), "ring rows out of time order"
        assert (self.rs[off + L.RB_NUM], self.rs[off + L.RB_DEN]) == (np.sum(cls == 0), np.sum(cls == 1))
        inside = ts >= cutoff
        return int(np.sum(cls[inside] == 0)), int(np.sum(cls[inside] == 1))

    def times_held(self, r: int, cutoff: float) -> int:
        """A count trigger's ring (its last ``cap`` times, no counts): how many are >= cutoff."""
        off = self.ints[L.RS_HEADER + r]
        n = int(self.ints[off + L.RB_COUNT])
        return int(np.count_nonzero(self.rs[off + L.RB_NF : off + L.RB_NF + n] >= cutoff))


# ---------------------------------------------------------------- the state machine
def test_escalation_is_latched_upward_and_only_reset_goes_back() -> None:
    sw = Switch("")
    ks = sw.ks
    assert escalate_nb(1, 0, L.ACT_REDUCE, 5.0, 4.0, ks) == L.KS_REDUCING
    assert escalate_nb(2, 1, L.ACT_REDUCE, 9.0, 4.0, ks) == 0 and ks[L.KS_RULE] == 0
    assert escalate_nb(3, 2, L.ACT_HALT, 7.0, 6.0, ks) == L.KS_HALTED
    assert escalate_nb(4, 0, L.ACT_REDUCE, 9.0, 4.0, ks) == 0
    assert escalate_nb(5, 3, L.ACT_HALT, 9.0, 4.0, ks) == 0
    assert sw.why == (2, 2, 3, 7.0, 6.0) and ks[L.KS_FLATTEN] == 0
    assert escalate_nb(6, 4, L.ACT_HALT_FLATTEN, 8.0, 1.0, ks) == L.KS_HALTED  # flatten is harsher
    assert ks[L.KS_FLATTEN] == 1 and sw.why == (2, 4, 6, 8.0, 1.0)
    assert escalate_nb(7, 5, L.ACT_HALT_FLATTEN, 8.0, 1.0, ks) == 0
    assert reset_nb(8, sw.rb.rules, sw.rs, ks) == L.TR_RESET
    assert sw.why == (0, L.PSEUDO_RESET, 8, 2.0, 0.0) and ks[L.KS_FLATTEN] == 0
    assert reset_nb(9, sw.rb.rules, sw.rs, ks) == 0  # already ACTIVE
    assert escalate_nb(10, 6, L.ACT_HALT_FLATTEN, 1.0, 0.5, ks) == L.KS_HALTED  # straight to HALTED
    assert ks[L.KS_N_TRANSITIONS] == 4 and ks[L.KS_N_RESETS] == 1


# ---------------------------------------------------------------- per equity sample
def test_loss_over_window_ladder_on_a_closed_window() -> None:
    sw = Switch(kill("r", "loss_over_window", 100, "reduce", window="5s")
                + kill("h", "loss_over_window", 200, window="5s"))
    pnl = [0, 20, -30, -60, -75, -90, -85, -190, -235, -280]
    out = [sw.sample(t * S, 1e6 + p, p) for t, p in enumerate(pnl)]
    # t = 5: the sample at t = 0 is exactly 5 s old and still the reference: loss 90, no trip
    # t = 6: reference t = 1 (pnl 20): loss 105 > 100 -> REDUCING
    # t = 9: reference t = 4 (pnl -75): loss 205 > 200 -> HALTED
    assert out == [0] * 6 + [L.KS_REDUCING, 0, 0, L.KS_HALTED]
    assert sw.why == (L.KS_HALTED, 1, 9 * S, 205.0, 200.0)


def test_drawdown_from_peak_and_reset_rearms_the_peak() -> None:
    sw = Switch(kill("dd", "drawdown", 0.1))
    out = [sw.sample(t, e, 0.0) for t, e in enumerate([100.0, 120.0, 110.0, 108.1, 107.9])]
    assert out == [0, 0, 0, 0, L.KS_HALTED]
    assert sw.why == (2, 0, 4, pytest.approx((120 - 107.9) / 120, rel=1e-15), 0.1)
    assert reset_nb(5, sw.rb.rules, sw.rs, sw.ks) == L.TR_RESET
    assert sw.sample(6, 107.9, 0.0) == 0  # new peak 107.9
    assert sw.sample(7, 97.2, 0.0) == 0  # 9.92%
    assert sw.sample(8, 97.0, 0.0) == L.KS_HALTED and sw.why[3] == pytest.approx(10.9 / 107.9)
    assert sw.sample(9, math.nan, math.nan) == 0  # NaN samples are skipped


def test_ewma_var_breach_against_pandas_and_scipy() -> None:
    lam, level, k, warm = 0.9, 0.99, 1.5, 20
    x = np.random.default_rng(5).normal(0.0, 10.0, 300)
    x[5] = -500.0  # inside the warm-up: no trip however large
    x[200] = -90.0
    pnl = np.concatenate([[0.0], np.cumsum(x)])
    # oracle: variance forecast for increment i is the EWMA of x[:i]**2 (RiskMetrics recursion)
    var_prev = pd.Series(x**2).ewm(alpha=1 - lam, adjust=False).mean().shift(1).to_numpy()
    limit = k * norm.ppf(level) * np.sqrt(var_prev)
    breach = np.flatnonzero((np.arange(300) >= warm) & (-x > limit))
    assert breach.size and breach[0] > warm  # the case is not trivial
    first = breach[0]
    sw = Switch(kill("var", "ewma_var_breach", k, params=f"{{ lambda = {lam}, level = {level}, "
                                                     f"min_samples = {warm} }}"))
    out = [sw.sample(t, 1e6 + p, p) for t, p in enumerate(pnl)]
    trips = [t for t, o in enumerate(out) if o]
    assert trips == [first + 1]  # sample t carries increment t - 1
    assert sw.why[3] == pytest.approx(-x[first], rel=1e-12)
    assert sw.why[4] == pytest.approx(limit[first], rel=1e-12)


# ---------------------------------------------------------------- per order activity
def test_order_to_trade_counts_all_order_messages() -> None:
    sw = Switch(kill("otr", "order_to_trade", 3, window="1s"))
    seq = [(0, SUB), (1, FILL), (2, SUB), (3, MOD), (4, REJ)]
    assert [sw.act(t * MS, w) for t, w in seq] == [0] * 5  # 3 messages per 1 fill: not above 3
    assert sw.act(5 * MS, CXL) == L.KS_HALTED  # a cancel is a message: 4 / 1
    assert sw.why == (2, 0, 5 * MS, 4.0, 3.0)
    sw = Switch(kill("otr", "order_to_trade", 3, window="10ms", params="{ min_orders = 5 }"))
    assert [sw.act(t * MS, SUB) for t in range(4)] == [0] * 4  # 4 / max(0, 1) but under min_orders
    assert sw.act(4 * MS, SUB) == L.KS_HALTED and sw.why[3] == 5.0
    # fills leaving the window raise the ratio
    sw = Switch(kill("otr", "order_to_trade", 1.5, window="10ms"))
    assert [sw.act(0, FILL), sw.act(1, FILL), sw.act(2, SUB), sw.act(3, SUB), sw.act(4, SUB)] == [0] * 5
    # 3 messages / 2 fills = 1.5 is not above 1.5; once the first fill leaves: 4 / 1
    assert sw.act(10 * MS + 1, SUB) == L.KS_HALTED and sw.why == (2, 0, 10 * MS + 1, 4.0, 1.5)


def test_reject_rate_message_rate_kill_and_fill_rate() -> None:
    sw = Switch(kill("rej", "reject_rate", 0.5, window="1s", params="{ min_orders = 4 }"))
    seq = [(0, SUB), (1, REJ), (1, SUB), (2, REJ), (2, SUB), (2, FILL), (3, SUB)]
    assert [sw.act(t * MS, w) for t, w in seq] == [0] * 7  # 2 / 4 = 0.5 is not above 0.5
    assert sw.act(4 * MS, REJ) == L.KS_HALTED and sw.why == (2, 0, 4 * MS, 0.75, 0.5)

    sw = Switch(kill("msg", "message_rate_kill", 3, "reduce", window="10ms"))
    assert [sw.act(t, w) for t, w in [(0, SUB), (5 * MS, CXL), (6 * MS, FILL), (10 * MS, MOD),
                                     (10 * MS + 1, SUB)]] == [0] * 5  # closed window: 3 in it
    assert sw.act(12 * MS, SUB) == L.KS_REDUCING and sw.why == (1, 0, 12 * MS, 4.0, 3.0)

    sw = Switch(kill("fills", "fill_rate", 2, window="1s", scope=1))
    assert [sw.act(0, FILL, 1), sw.act(1, FILL, 0), sw.act(S // 2, FILL, 1)] == [0, 0, 0]
    assert sw.act(S, FILL, 1) == L.KS_HALTED and sw.why == (2, 0, S, 3.0, 2.0)  # t = 0 still counts
    assert reset_nb(S, sw.rb.rules, sw.rs, sw.ks) == L.TR_RESET
    assert sw.act(S + 1, FILL, 1) == 0 and sw.ring(0)[0] == 1.0  # reset emptied the window
    assert sw.act(S + 2, FILL, 1) == 0  # 2 since the reset; S, before it, no longer counts
    assert sw.act(2 * S + 2, FILL, 1) == 0  # window [S + 2, 2S + 2]: S + 2 and 2S + 2
    assert sw.act(2 * S + 3, FILL, 1) == 0  # [S + 3, 2S + 3]: 2S + 2 and 2S + 3
    assert sw.act(2 * S + 4, FILL, 1) == L.KS_HALTED and sw.why == (2, 0, 2 * S + 4, 3.0, 2.0)


def test_ratio_ring_overflow_is_counted() -> None:
    sw = Switch(kill("otr", "order_to_trade", 100, window="1s", params="{ capacity = 4 }"))
    for t in range(6):
        sw.act(t, SUB)
    assert sw.ring(0) == (4.0, 4.0, 0.0, 2.0)


def test_ratio_ring_expires_lazily_but_never_counts_stale_rows_as_lost() -> None:
    # 100 messages per fill cannot trip while the ring holds fewer: nothing is expired yet
    sw = Switch(kill("otr", "order_to_trade", 100, window="10ms", params="{ capacity = 8 }"))
    for t in range(4):
        assert sw.act(t * MS, SUB) == 0
    assert sw.act(10 * MS + 1, FILL) == 0  # window [1 ns, 10ms + 1]: t = 0 is stale, still held
    assert sw.ring(0) == (5.0, 4.0, 1.0, 0.0)
    assert sw.ratio_rows(0, 1) == (3, 1)
    assert [sw.act(50 * MS + k, SUB) for k in range(3)] == [0, 0, 0]  # now full: 8 rows
    # full: cut to [40ms + 3, 50ms + 3] first (five rows stale), so nothing in the window is lost
    assert sw.act(50 * MS + 3, SUB) == 0
    assert sw.ring(0) == (4.0, 4.0, 0.0, 0.0)
    # a ratio that could trip over the whole ring is cut to the window before it is judged: three
    # messages and a fill held, 3 / 1 > 2, but in [10ms, 20ms] two messages and no fill, 2 / 1
    sw = Switch(kill("otr", "order_to_trade", 2, window="10ms"))
    assert [sw.act(0, FILL), sw.act(1, SUB), sw.act(10 * MS + 1, SUB)] == [0, 0, 0]  # 2 / 1
    assert sw.act(20 * MS, SUB) == 0 and sw.ring(0) == (2.0, 2.0, 0.0, 0.0)
    assert sw.act(20 * MS, SUB) == L.KS_HALTED and sw.why == (2, 0, 20 * MS, 3.0, 2.0)


# ---------------------------------------------------------------- per market event
def test_crossed_data_duration_checked_on_every_event() -> None:
    sw = Switch(kill("x", "crossed_data", "1ms"))
    assert sw.event(0) == 0
    assert sw.event(1 * MS, bid=100.1, ask=100.0) == 0  # crossed since 1 ms
    assert sw.event(1 * MS + MS // 2, inst=1) == 0
    assert sw.event(2 * MS, kind=T, inst=1) == 0  # crossed exactly 1 ms: not longer
    assert sw.event(2 * MS + 1, kind=T, inst=1) == L.KS_HALTED  # a trade on another instrument
    assert sw.why == (2, 0, 2 * MS + 1, MS + 1, MS)
    sw = Switch(kill("x", "crossed_data", "1ms", scope=0))
    sw.event(0, bid=100.0, ask=100.0)  # locked counts as crossed
    sw.event(MS // 2)  # uncrossed: the clock restarts
    sw.event(7 * MS // 10, bid=100.0, ask=99.0)
    assert sw.event(16 * MS // 10, inst=1, bid=101.0, ask=100.0) == 0  # instrument 1 out of scope
    assert sw.event(18 * MS // 10, kind=T) == L.KS_HALTED and sw.why[3] == 11 * MS // 10


def test_stale_feed_trips_at_the_event_that_ends_the_gap() -> None:
    sw = Switch(kill("feed", "stale_feed", "1s", "reduce"))
    assert [sw.event(t) for t in (0, S // 2, 3 * S // 2)] == [0, 0, 0]  # a gap of exactly 1 s
    assert sw.event(5 * S // 2 + 1, kind=T) == L.KS_REDUCING
    assert sw.why == (1, 0, 5 * S // 2 + 1, S + 1, S)
    assert sw.event(10 * S, kind=C, side=1, level=1) == L.TR_RESET
    # a CONTROL reset that ends a gap trips nothing (the switch was ACTIVE: nothing to report)
    sw = Switch(kill("feed", "stale_feed", "1s"))
    assert sw.event(0) == 0 and sw.event(5 * S, kind=C, side=1, level=1) == 0
    assert sw.ks[L.KS_N_TRANSITIONS] == 0 and sw.event(5 * S + 1) == 0  # a new gap starts


def test_external_kill_control_events() -> None:
    sw = Switch("")
    assert sw.event(1, kind=Q) == 0  # no rules: nothing to do
    assert sw.event(2, kind=C, side=-1, level=0) == 0  # exchange halt: not ours
    assert sw.event(3, kind=C, side=-1, level=1) == L.KS_HALTED
    assert sw.why == (2, L.PSEUDO_EXTERNAL, 3, 1.0, 0.0) and sw.ks[L.KS_FLATTEN] == 0
    assert sw.event(4, kind=C, side=-1, level=1) == 0
    assert sw.event(5, kind=C, side=1, level=1) == L.TR_RESET and sw.ks[L.KS_STATE] == 0
    sw = Switch(kill("q", "drawdown", 0.5) + kill("ext", "external_kill", action="halt_flatten"))
    assert sw.event(6, kind=C | Q, side=-1, level=1) == L.KS_HALTED
    assert sw.why == (2, 1, 6, 1.0, 0.0) and sw.ks[L.KS_FLATTEN] == 1


# ---------------------------------------------------------------- Knight Capital, 1 Aug 2012
def test_knight_capital_runaway_is_throttled_then_halted() -> None:
    """A runaway resends the same unfilled order every 100 us (SEC Release 34-70694: a dormant
    code path sent child orders with no check against executions). The token bucket caps the
    flow; the order-to-trade trigger halts it after 21 orders with no fill."""
    window = 2**30  # ns; rate 32 / 2**30 per ns is exact in binary, so the oracle below is exact
    text = (rule(id="throttle", metric="message_rate", threshold=32, window=f"{window}ns",
                 action="deny", params="{ burst = 5 }")
            + kill("otr", "order_to_trade", 20, window="1s")
            + kill("runaway", "message_rate_kill", 25, "halt_flatten", window="1s"))
    sw = Switch(text, n=1)
    sw.event(0, bid=99.5, ask=100.5)
    q = np.zeros(1, dtype=REQUEST_DTYPE)
    q[0] = (ACTION_SUBMIT, 0, OT_LIMIT, 1, -1, 99.0, 100.0, 0)
    orders = np.zeros(1, dtype=LOCAL_ORDER_DTYPE)
    codes = []
    for t in range(0, S, 100_000):
        code = pretrade_nb(q[0], t, sw.mkt, np.zeros(1), orders, np.arange(0), np.ones(1), sw.rb.rules,
                           sw.rs, sw.ks)
        codes.append((t, code))
        if code == 0:
            sw.act(t, SUB)
    # oracle: the same bucket in exact rational arithmetic, and the ratio 21 / max(0, 1) > 20
    tokens, last, passed, halt_at = Fraction(5), None, [], None
    for t in range(0, S, 100_000):
        avail = tokens if last is None else min(Fraction(5), tokens + (t - last) * Fraction(32, window))
        if avail >= 1:
            tokens, last = avail - 1, t
            passed.append(t)
            if len(passed) == 21:
                halt_at = t
                break
    assert [t for t, c in codes if c == 0] == passed and len(passed) == 21  # the budget
    assert sw.why == (L.KS_HALTED, 1, halt_at, 21.0, 20.0)
    assert halt_at == 536_900_000  # 16 more tokens: 16 x 2**25 ns after t = 0, on the 100 us grid
    throttled = [t for t, c in codes if c == 1]
    assert len(throttled) == halt_at // 100_000 + 1 - 21  # every other attempt before the halt
    assert all(c == L.PSEUDO_HALTED for t, c in codes if t > halt_at)


# ---------------------------------------------------------------- twins on random streams
class Twin:
    """Independent sliding window: a deque of (time, class) over [now - window, now]."""

    CLASSES = {  # metric: (numerator activities, denominator activities)
        "order_to_trade": ({SUB, MOD, CXL}, {FILL}), "reject_rate": ({REJ}, {SUB}),
        "message_rate_kill": ({SUB, MOD, CXL}, set()), "fill_rate": ({FILL}, set()),
    }

    def __init__(self, metric: str, window: int) -> None:
        self.num, self.den = self.CLASSES[metric]
        self.window = window
        self.q: deque[tuple[int, int]] = deque()

    def push(self, t: int, what: int) -> tuple[int, int] | None:
        if what not in self.num | self.den:
            return None
        while self.q and self.q[0][0] < t - self.window:
            self.q.popleft()
        self.q.append((t, 0 if what in self.num else 1))
        n = sum(1 for _, c in self.q if c == 0)
        return n, len(self.q) - n


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("metric,thr,params", [
    ("order_to_trade", 4.0, "{ min_orders = 6 }"), ("reject_rate", 0.4, "{ min_orders = 5 }"),
    ("message_rate_kill", 9.0, "{}"), ("fill_rate", 5.0, "{}"),
    # lazy expiry: min_orders beyond any ring of 24 rows, so nothing could trip and nothing is
    # cut to the window until the ring is full of rows, most of them stale
    ("order_to_trade", 4.0, "{ min_orders = 1000, capacity = 24 }"),
    ("reject_rate", 0.4, "{ min_orders = 1000, capacity = 24 }"),
    # the default capacity (65536 rows) and ~10 rows in a window: cut at each power of two from
    # RING_CUT_MIN and moved to the front, the rows written stay among the buffer's first 64
    ("order_to_trade", 4.0, "{ min_orders = 1000 }"),
    ("reject_rate", 0.4, "{ min_orders = 1000 }"),
])
def test_activity_windows_match_a_deque_twin(seed: int, metric: str, thr: float, params: str) -> None:
    rng = np.random.default_rng(seed)
    n, window = 3000, 50 * MS
    times = np.cumsum(rng.integers(0, 4 * MS, n))  # ties included
    whats = rng.integers(1, 6, n)
    insts = rng.integers(0, 2, n)
    sw = Switch(kill("m", metric, thr, "reduce", window="50ms", scope=1, params=params))
    twin = Twin(metric, window)
    lazy = "min_orders = 1000" in params  # nothing can trip: only the counts are compared
    min_orders = 1000 if lazy else {"order_to_trade": 6, "reject_rate": 5}.get(metric, 0)
    trip = None
    cap = int(thr) + 1
    peak = 0.0  # most rows a ratio ring held
    end = 0  # past the last row a ratio ring wrote (its rows sit from RB_HEAD, in order)
    off = sw.ints[L.RS_HEADER]
    for t, w, i in zip(times.tolist(), whats.tolist(), insts.tolist()):
        out = sw.act(t, w, i)
        counts = twin.push(t, w) if i == 1 else None
        if counts is None:
            continue
        num, den = counts
        if metric in ("order_to_trade", "reject_rate"):  # every entry of the window, and counted
            assert sw.ratio_rows(0, t - window) == (num, den)
            peak = max(peak, sw.ring(0)[0])
            end = max(end, int(sw.ints[off + L.RB_HEAD] + sw.ints[off + L.RB_COUNT]))
        else:  # the ring's times in the window: the count, up to the capacity
            assert sw.times_held(0, t - window) == min(num, cap)
        if trip is None:
            if metric == "order_to_trade":
                hit, obs = num >= min_orders and num / max(den, 1) > thr, num / max(den, 1)
            elif metric == "reject_rate":
                hit, obs = den >= min_orders and num / max(den, 1) > thr, num / max(den, 1)
            else:
                hit, obs = num > thr, num
            if hit:
                trip = (t, obs)
                assert out == L.KS_REDUCING
            else:
                assert out == 0
    if lazy and "capacity" in params:  # what these cases check is the counts: the ring filled, none lost
        assert trip is None and peak == 24.0 and sw.ring(0)[3] == 0.0
    elif lazy:
        assert trip is None and sw.ring(0)[3] == 0.0
        assert RING_CUT_MIN // 2 < end <= RING_CUT_MIN  # cut and moved at 64, never past it
    else:
        assert trip is not None, "the stream never tripped: the comparison would be weak"
        assert (sw.ks[L.KS_TS], sw.ks[L.KS_OBSERVED]) == trip


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_loss_window_matches_a_deque_twin(seed: int) -> None:
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.integers(1, 300 * MS, 2000)).tolist()
    pnl = np.cumsum(rng.normal(0, 10, 2000)).tolist()
    q: deque[tuple[int, float]] = deque()
    losses = []
    most = 0  # the most samples in one window
    for t, p in zip(times, pnl):
        q.append((t, p))
        while q[0][0] < t - 5 * S:
            q.popleft()
        losses.append(q[0][1] - p)
        most = max(most, len(q))
    thr = 0.8 * max(losses)
    first = next(k for k, x in enumerate(losses) if x > thr)
    sw = Switch(kill("loss", "loss_over_window", thr, window="5s"))
    off = sw.ints[L.RS_HEADER]
    out, end = [], 0
    for t, p in zip(times, pnl):
        out.append(sw.sample(t, 0.0, p))
        end = max(end, int(sw.ints[off + L.RB_HEAD] + sw.ints[off + L.RB_COUNT]))
    assert [k for k, o in enumerate(out) if o] == [first]
    assert sw.why[2:] == (times[first], pytest.approx(losses[first], rel=1e-12), thr)
    # the rows run in order from the head (the default 65536 of them), cut and moved to the front
    # at the first power of two from RING_CUT_MIN that holds twice the window: never past it
    assert end <= max(RING_CUT_MIN, 1 << (2 * most - 1).bit_length()) and sw.ring(0)[3] == 0.0


def test_loss_ring_overflow_is_counted_and_the_oldest_kept_is_the_reference() -> None:
    sw = Switch(kill("loss", "loss_over_window", 100, window="1s", params="{ capacity = 4 }"))
    out = [sw.sample(t, 0.0, -10.0 * t) for t in range(7)]  # 7 samples within one window
    assert out == [0] * 7
    assert sw.ring(0)[0] == 4.0 and sw.ring(0)[3] == 3.0  # 4 held (t = 3..6), 3 dropped in the window
    # full again: t = 3 is dropped too and the oldest held, t = 4 (pnl -40), is the reference
    assert sw.sample(7, 0.0, -141.0) == L.KS_HALTED and sw.why == (2, 0, 7, 101.0, 100.0)
    assert sw.ring(0)[3] == 4.0


# ---------------------------------------------------------------- invariant
BOOK = (
    rule(id="qty", metric="max_order_qty", threshold=8, action="deny")
    + rule(id="mr", metric="message_rate", threshold=50, window="1s", action="deny")
    + kill("loss-r", "loss_over_window", 30, "reduce", window="1s")
    + kill("loss-h", "loss_over_window", 60, window="1s")
    + kill("dd", "drawdown", 0.2, "halt_flatten")
    + kill("msg", "message_rate_kill", 20, "reduce", window="1s")
    + kill("rej", "reject_rate", 0.5, window="1s", params="{ min_orders = 3 }")
    + kill("x", "crossed_data", "1ms")
    + kill("feed", "stale_feed", "150ms", "reduce")
)
# external kills are rare so that sequences spend time in REDUCING too
KINDS = ["event", "sample", "act", "submit", "modify"] * 4 + ["kill"]
OPS = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 200 * MS), st.integers(0, 1),
                         st.sampled_from([-1, 1]), st.floats(-40, 40), st.integers(1, 6)),
               max_size=80)


@settings(max_examples=100, deadline=None)
@given(st.booleans(), OPS)
def test_state_is_monotone_and_halted_passes_nothing(start_reducing: bool, ops: list) -> None:
    sw = Switch(BOOK)
    if start_reducing:  # so that sequences spend time in REDUCING
        escalate_nb(0, 0, L.ACT_REDUCE, 0.0, 0.0, sw.ks)
    pos = np.array([5.0, -3.0])
    orders = np.zeros(4, dtype=LOCAL_ORDER_DTYPE)
    orders[0] = (0, 0, -1, OT_LIMIT, ST_OPEN, 0, 0, 101.0, 4.0, 1.0, 0)  # sells 3 more of inst 0
    q = np.zeros(1, dtype=REQUEST_DTYPE)
    t, pnl = 0, 0.0
    for op, dt, inst, side, x, n in ops:
        t += dt
        state = sw.ks[L.KS_STATE]
        tr = 0
        if op == "event":
            tr = sw.event(t, Q, inst, bid=100.0 + 0.01 * x, ask=100.1)  # x > 10 crosses
        elif op == "kill":
            tr = sw.event(t, C, 0, side=-1, level=1)
        elif op == "sample":
            pnl += x
            tr = sw.sample(t, 1000.0 + pnl, pnl)
        elif op == "act":
            tr = sw.act(t, n % 5 + 1, inst)
        else:
            action = ACTION_SUBMIT if op == "submit" else ACTION_MODIFY
            q[0] = (action, inst, OT_LIMIT, side, 0, 100.0, float(n), 0)
            code = pretrade_nb(q[0], t, sw.mkt, pos, orders, np.arange(1), np.ones(2), sw.rb.rules,
                               sw.rs, sw.ks)
            if state == L.KS_HALTED:
                assert code == L.PSEUDO_HALTED
            elif state == L.KS_REDUCING and action == ACTION_SUBMIT:
                p = pos[inst]
                same = 3.0 if inst == 0 and side < 0 else 0.0
                reduces = side * p < 0 and same + n <= abs(p)  # toward 0, never past it
                assert code == L.PSEUDO_REDUCING if not reduces else code in (0, 2)  # 2: throttle
        assert tr in (0, L.KS_REDUCING, L.KS_HALTED)
        assert sw.ks[L.KS_STATE] >= state  # never down without a reset
        assert tr == 0 or sw.ks[L.KS_STATE] == tr


def test_each_hook_visits_exactly_the_rules_that_concern_it():
    """The lists new_risk_state writes, against the default rulebook read by hand: which rules
    the gate checks, which a passed order charges, and which count each activity and as what
    (order_to_trade counts messages over fills, as MiFID II RTS 9; reject_rate rejects over
    submits; message_rate_kill messages; fill_rate fills)."""
    from tickguard.risk.inloop import DEFAULT_RULEBOOK

    rb = load_rulebook(DEFAULT_RULEBOOK)
    rs, _ = new_risk_state(rb, 1)
    ints = int_view(rs)  # the lists, tables and offsets are integer slots

    def ids(list_slot: int, count_slot: int) -> list[str]:
        first = ints[list_slot]
        return [rb.ids[ints[first + e]] for e in range(ints[count_slot])]

    assert ids(L.RS_CHARGE_LIST, L.RS_N_CHARGE) == ["throttle", "repeat-throttle", "no-duplicates"]
    assert ids(L.RS_PRE_LIST, L.RS_N_PRE) == [  # the file's deny rules, in its order
        "fat-finger-qty", "fat-finger-notional", "collar-5pct", "collar-sigma", "position-cap",
        "position-notional-cap", "gross-cap", "net-cap", "throttle", "repeat-throttle",
        "no-duplicates", "stale-quote"]
    # the gate reads them per metric (RS_PRE_TABLE): the same rules, each under its own metric
    table = ints[L.RS_PRE_TABLE]
    per_metric = {m: [rb.ids[ints[ints[table + 2 * (m - 1)] + e]]
                      for e in range(ints[table + 2 * (m - 1) + 1])]
                  for m in range(1, L.MT_STALE_DATA + 1)}
    assert sorted(sum(per_metric.values(), [])) == sorted(ids(L.RS_PRE_LIST, L.RS_N_PRE))
    for m, listed in per_metric.items():
        assert all(int(rb.rules[rb.index(i), L.R_METRIC]) == m for i in listed), (m, listed)
    assert per_metric[L.MT_REPEATED_EXECUTION] == ["repeat-throttle"]
    num, den = 0, 1
    expected = {
        SUB: [("order-to-trade", num), ("reject-storm", den), ("runaway-messages", num)],
        FILL: [("order-to-trade", den), ("runaway-fills", num)],
        REJ: [("reject-storm", num)],
        CXL: [("order-to-trade", num), ("runaway-messages", num)],
        MOD: [("order-to-trade", num), ("runaway-messages", num)],
    }
    kinds = {L.MT_ORDER_TO_TRADE: L.AE_RATIO_NUM, L.MT_REJECT_RATE: L.AE_RATIO_DEN,
             L.MT_MESSAGE_RATE_KILL: L.AE_COUNT, L.MT_FILL_RATE: L.AE_COUNT}
    for what, pairs in expected.items():
        entry = ints[L.RS_ACT_TABLE] + 2 * (what - 1)
        first, count = ints[entry], ints[entry + 1]
        rows = rs[first : first + L.AE_NF * count].reshape(count, L.AE_NF)
        rules_of = int_view(rows)[:, L.AE_RULE]  # AE_RULE and AE_OFF: integer slots
        got = [(rb.ids[r], int(row[L.AE_CLS])) for r, row in zip(rules_of, rows)]
        assert got == pairs, what
        for r, off, row in zip(rules_of, int_view(rows)[:, L.AE_OFF], rows):  # what the monitor reads
            rule = rb.rules[r]  # of its rule, from the rulebook
            assert off == ints[L.RS_HEADER + r] >= 0
            assert row[L.AE_KIND] == kinds[int(rule[L.R_METRIC])]
            assert (row[L.AE_SCOPE], row[L.AE_THRESHOLD], row[L.AE_WINDOW], row[L.AE_MIN]) == (
                rule[L.R_SCOPE], rule[L.R_THRESHOLD], rule[L.R_WINDOW], rule[L.R_P0])
    # an activity code outside AC_* counts nowhere (and reads no list)
    assert monitor_activity_nb(0, 0, 0, rb.rules, rs, np.zeros(L.KS_NF)) == 0
    assert monitor_activity_nb(0, L.AC_NCODES + 1, 0, rb.rules, rs, np.zeros(L.KS_NF)) == 0
