"""Kill switch: a latched ACTIVE -> REDUCING -> HALTED state machine and the kernels that trip it.

States only escalate (ACTIVE -> REDUCING -> HALTED, or straight to HALTED); nothing but
:func:`reset_nb` (an API call, or a CONTROL reset event) brings the switch back to ACTIVE. A
``halt_flatten`` trigger also sets ``ks[KS_FLATTEN]``; when it fires while already HALTED without
flatten, that is an escalation too (the kernel returns KS_HALTED again).

Each monitor kernel returns 0 (nothing changed) or the state after the transition (KS_REDUCING,
KS_HALTED), or TR_RESET after a reset; ``ks[KS_RULE]`` (0-based rule index or a PSEUDO_* code),
``ks[KS_TS]``, ``ks[KS_OBSERVED]`` and ``ks[KS_THRESHOLD]`` then hold what the loop writes into its
risk record. When several triggers fire in one call the harshest wins (one record per call).

Windows are closed, ``[now - window, now]``: an entry stamped exactly ``window`` ns ago still
counts. Sliding windows are exact ring buffers of timestamps (see :mod:`.layout`):

- count triggers (message_rate_kill, fill_rate) hold the times of their last ``cap =
  floor(threshold) + 1`` activities, exactly enough to decide ``count > threshold``: the count in
  the window exceeds the threshold iff ``cap`` activities were seen and the oldest of those last
  ``cap`` is inside the window. No expiry, no counts: an append and one comparison
  (:func:`_count_trigger_nb`); the observed value of a trip is ``cap``, the count at its first
  crossing.
- ratio triggers (order_to_trade, reject_rate) and loss_over_window hold ``capacity`` entries
  (param, default 65536); if more than that fall inside one window the oldest are dropped and
  ``RB_OVERFLOW`` counts them (counts then cover a shorter window). A ratio trigger's ring is cut
  to its window only when the counts over all it holds could trip (:func:`_ratio_trigger_nb`):
  until then it may also hold older entries, and RB_NUM/RB_DEN count those too. The rows of both
  kinds do not wrap around: they sit in order from RB_HEAD, are cut to the window when the next
  row would go at the end of the buffer or at a power of two (at least RING_CUT_MIN), and are
  moved to the front when at most half that is left. So the rows written cycle through about
  twice the window's entries, not the whole capacity: at the default 65536 rows of 16 bytes, a
  1 MB buffer whose lines came from memory every few appends (the canonical workload's relaxed
  default rulebook ran ~0.8 ms of ~101 faster per 10^7 events with its two ratio rings 4096 rows
  long, the same code in one process: benchmarks/PERFORMANCE.md, 5 December, evening).

Triggers are evaluated when the rule sees something it counts; the loop has no clock of its own, so
a stale feed or a lasting crossed book is detected at the next event, stamped with its time.
The per-event rules publish wake-up conditions in ``ks`` (KS_WAKE_*: a timer, a feed gap, a
crossed quote, or every event while a crossed book is timed), and the loop calls
monitor_event_nb only for events that meet one: on a quiet, sane feed it costs nothing per event.
A reset re-arms the trigger windows (loss, drawdown peak, activity rings); the feed facts (last
event time, crossed-since times) and the EWMA estimates are kept.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit
from numba import types as _t
from scipy.stats import norm

from tickguard.data.schema import KIND_CONTROL, KIND_QUOTE
from tickguard.engine.internal import code_offset, internal_njit, not_inlined
from tickguard.engine.layout import M_ASK, M_BID, M_MID
from tickguard.engine.nbtypes import F64_1D, F64_2D

from .layout import (
    AE_CLS, AE_COUNT, AE_KIND, AE_MIN, AE_NF, AE_OFF, AE_RATIO_NUM, AE_RATIO_DEN, AE_RULE, AE_SCOPE,
    AE_THRESHOLD, AE_WINDOW,
    AC_NCODES, ACT_HALT, ACT_HALT_FLATTEN, ACT_REDUCE, AC_CANCEL, AC_FILL, AC_MODIFY, AC_REJECT, AC_SUBMIT,
    CR_N_CROSSED, EV_N, EV_NF, EV_PREV_PNL, EV_VAR, EV_Z, FT_METRICS, FT_NF, FT_RESTRICTED, KS_ACTIVE,
    KS_FLATTEN, KS_HALTED, KS_NF,
    KS_N_RESETS, KS_N_TRANSITIONS, KS_OBSERVED, KS_PREV_TS, KS_REDUCING, KS_RULE, KS_STATE,
    KS_THRESHOLD, KS_TS, KS_WAKE_ALL, KS_WAKE_AT, KS_WAKE_CROSSED, KS_WAKE_GAP, MT_CROSSED_DATA,
    MT_DRAWDOWN, MT_DUPLICATE_ORDER, MT_EWMA_VAR_BREACH, MT_EXTERNAL_KILL, MT_FILL_RATE, MT_FIRST_KILL,
    MT_LOSS_OVER_WINDOW, MT_MESSAGE_RATE, MT_MESSAGE_RATE_KILL, MT_ORDER_TO_TRADE,
    MT_PRICE_COLLAR_SIGMA, MT_REJECT_RATE, MT_REPEATED_EXECUTION, MT_RESTRICTED, MT_STALE_DATA,
    MT_STALE_FEED,
    PSEUDO_EXTERNAL, PSEUDO_RESET, RB_CAP, RB_COUNT, RB_DEN, RB_HEAD, RB_NF, RB_NUM, RB_OVERFLOW,
    RS_EVENT_LIST, RS_ACT_TABLE, RS_CHARGE_LIST, RS_EVERY_EVENT, RS_FAST, RS_EXTERNAL, RS_HEADER,
    RS_N_ACTIVITY,
    RS_N_CHARGE, RS_N_EVENT, RS_N_INST, RS_N_PRE, RS_N_RULES, RS_N_SAMPLE, RS_PRE_LIST, RS_PRE_TABLE,
    R_ACTION, R_METRIC, R_P0, R_P1, R_P2, R_SCOPE, R_THRESHOLD, R_WINDOW, SIG_N,
    SIG_NEXT, SIG_NF, SIG_PREV_MID, SIG_PREV_TS, SIG_ROWS, SIG_VAR, TB_NF, TB_TOKENS_MODIFY,
    TB_TOKENS_SUBMIT, TR_RESET,
)
from .signatures import signature_block
from .slots import SLOT_MASK, int_nb, int_view, ring_header, ring_slot_nb, set_int_nb, slot_nb

__all__ = ["RING_CUT_MIN", "RiskState", "escalate_nb", "monitor_activity_nb", "monitor_event_nb",
           "monitor_sample_nb", "new_risk_state", "reset_nb", "ring_overflows", "ring_slide_nb"]

_CONTROL = int(KIND_CONTROL)
_QUOTE = int(KIND_QUOTE)


class RiskState(NamedTuple):
    """``rstate`` (flat float64, layout in :mod:`.layout`) and ``ks`` (float64[KS_NF])."""

    rstate: np.ndarray
    ks: np.ndarray


def _ring(metric: int, row: np.ndarray) -> tuple[int, int]:
    """(row width, capacity) of a rule's ring buffer; (0, 0) for rules without one."""
    if metric == MT_LOSS_OVER_WINDOW:
        return 2, int(row[R_P0])
    if metric in (MT_ORDER_TO_TRADE, MT_REJECT_RATE):
        return 2, int(row[R_P1])
    if metric in (MT_MESSAGE_RATE_KILL, MT_FILL_RATE):
        # times only, exactly enough to decide count > thr (_count_trigger_nb)
        return 1, int(math.floor(row[R_THRESHOLD])) + 1
    return 0, 0


def ring_overflows(rules: np.ndarray, rstate: np.ndarray) -> np.ndarray:
    """Per rule, the entries its ring dropped while still inside its window (``RB_OVERFLOW``):
    the ring was full, so the rule judged a shorter window than its rulebook row says. Zero for
    rules without a ring, and for the count triggers, whose rings hold exactly what they judge."""
    out = np.zeros(len(rules))
    for r, row in enumerate(np.asarray(rules, dtype=np.float64)):
        m = int(row[R_METRIC])
        if m in (MT_REPEATED_EXECUTION, MT_DUPLICATE_ORDER) or _ring(m, row)[0]:
            out[r] = rstate[int_view(rstate)[RS_HEADER + r] + RB_OVERFLOW]
    return out


def _block(metric: int, row: np.ndarray, n_inst: int) -> np.ndarray:
    """A rule's initial state block (NaN: never seen)."""
    if metric in (MT_REPEATED_EXECUTION, MT_DUPLICATE_ORDER):
        return signature_block(int(row[R_P0]))
    width, cap = _ring(metric, row)
    if width:
        return np.concatenate([ring_header(cap), np.zeros(width * cap)])
    if metric == MT_MESSAGE_RATE:
        b = np.full(TB_NF, np.nan)  # last refill times NaN: untouched
        b[[TB_TOKENS_SUBMIT, TB_TOKENS_MODIFY]] = row[R_P0]  # a full bucket holds the burst
        return b
    if metric == MT_PRICE_COLLAR_SIGMA:
        b = np.zeros((n_inst, SIG_NF))
        b[:, SIG_PREV_MID] = np.nan
        return np.concatenate([[-np.inf], b.ravel()])  # SIG_NEXT: sample at the first event
    if metric == MT_CROSSED_DATA:
        return np.concatenate([[0.0], np.full(n_inst, np.nan)])
    if metric == MT_DRAWDOWN:
        return np.full(1, np.nan)  # peak equity
    if metric == MT_EWMA_VAR_BREACH:
        b = np.zeros(EV_NF)
        b[EV_Z] = norm.ppf(row[R_P1])
        b[EV_PREV_PNL] = np.nan
        return b
    return np.zeros(0)


def _activity_class(m: int, what: int) -> int:
    """0: numerator, 1: denominator, -1: the rule does not count this activity (AC_*)."""
    message = what in (AC_SUBMIT, AC_MODIFY, AC_CANCEL)
    if m == MT_ORDER_TO_TRADE:
        return 0 if message else (1 if what == AC_FILL else -1)
    if m == MT_REJECT_RATE:
        return 0 if what == AC_REJECT else (1 if what == AC_SUBMIT else -1)
    if m == MT_MESSAGE_RATE_KILL:
        return 0 if message else -1
    if m == MT_FILL_RATE:
        return 0 if what == AC_FILL else -1
    return -1


def _activity_entry(r: int, cls: int, m: int, row: np.ndarray) -> np.ndarray:
    """monitor_activity_nb's entry (AE_*) for rule ``r`` counting an activity as class ``cls``;
    its block offset (AE_OFF) is filled in once the blocks are placed. AE_RULE and AE_OFF are
    integer slots (slots.py), the others floats."""
    entry = np.zeros(AE_NF)
    entry[AE_CLS] = cls
    int_view(entry)[[AE_RULE, AE_OFF]] = r, -1
    entry[AE_KIND] = (AE_COUNT if m in (MT_MESSAGE_RATE_KILL, MT_FILL_RATE)
                      else AE_RATIO_NUM if m == MT_ORDER_TO_TRADE else AE_RATIO_DEN)
    entry[AE_SCOPE], entry[AE_THRESHOLD], entry[AE_WINDOW] = row[R_SCOPE], row[R_THRESHOLD], row[R_WINDOW]
    entry[AE_MIN] = row[R_P0]
    return entry


def _fast_table(rules: np.ndarray, metrics: np.ndarray, pre: list[int], n_instruments: int) -> np.ndarray:
    """pretrade's fast table (layout FT_*): per instrument, the tightest threshold of each
    stateless metric over the rules that apply to it, inf where none does."""
    table = np.full((n_instruments, FT_NF), np.inf)
    table[:, FT_RESTRICTED] = 0.0
    for r in pre:
        scope = int(rules[r, R_SCOPE])
        rows = slice(None) if scope < 0 else slice(scope, scope + 1)
        if metrics[r] == MT_RESTRICTED:
            table[rows, FT_RESTRICTED] = 1.0
        elif metrics[r] in FT_METRICS:
            col = FT_METRICS.index(metrics[r])
            table[rows, col] = np.minimum(table[rows, col], rules[r, R_THRESHOLD])
    return table


def new_risk_state(rulebook, n_instruments: int, every_event: bool = False) -> RiskState:  # noqa: ANN001
    """Allocate and initialise ``rstate`` and ``ks`` for a Rulebook (or its rules array).

    ``every_event``: have the loop show monitor_event_nb every event, not only those that meet a
    wake-up condition (KS_WAKE_*); results are the same, only slower (tests check that).
    """
    rules = np.asarray(getattr(rulebook, "rules", rulebook), dtype=np.float64)
    if rules.ndim != 2 or rules.shape[1] != R_P2 + 1:
        raise ValueError(f"new_risk_state: rules must be float64[n_rules, {R_P2 + 1}], got shape "
                         f"{rules.shape}; compile a rulebook with load_rulebook")
    if not isinstance(n_instruments, (int, np.integer)) or n_instruments < 1:
        raise ValueError(f"new_risk_state: n_instruments must be an int >= 1, got {n_instruments!r}")
    n = rules.shape[0]
    head = np.zeros(RS_HEADER + n, dtype=np.int64)  # integer slots, all (slots.py)
    head[RS_N_RULES], head[RS_N_INST], head[RS_EXTERNAL] = n, n_instruments, -1
    head[RS_EVERY_EVENT] = 1 if every_event else 0
    metrics = rules[:, R_METRIC].astype(int)
    per_event = [r for r in range(n) if metrics[r] in (MT_PRICE_COLLAR_SIGMA, MT_CROSSED_DATA, MT_STALE_FEED)]
    charge = [r for r in range(n) if metrics[r] in (MT_MESSAGE_RATE, MT_REPEATED_EXECUTION, MT_DUPLICATE_ORDER)]
    pre = [r for r in range(n) if metrics[r] < MT_FIRST_KILL]  # in rulebook order: the first denial wins
    per_code = [[(r, c) for r in range(n) for c in [_activity_class(metrics[r], what)] if c >= 0]
                for what in range(1, AC_NCODES + 1)]
    blocks = [np.zeros(2 * n_instruments)]  # pretrade's scratch for open-order sums
    pos = RS_HEADER + n + 2 * n_instruments

    def add(block: np.ndarray) -> int:
        """Place a block (float64, or int64: integer slots, stored as their bits)."""
        nonlocal pos
        blocks.append(block.view(np.float64) if block.dtype == np.int64 else block)
        pos += len(block)
        return pos - len(block)

    def add_ints(values: list[int]) -> int:
        return add(np.array(values, dtype=np.int64))

    # the rules each hook visits (it skips the rest), and their counts
    head[RS_EVENT_LIST], head[RS_N_EVENT] = add_ints(per_event), len(per_event)
    head[RS_N_ACTIVITY] = len({r for pairs in per_code for r, _ in pairs})
    head[RS_CHARGE_LIST], head[RS_N_CHARGE] = add_ints(charge), len(charge)
    head[RS_PRE_LIST], head[RS_N_PRE] = add_ints(pre), len(pre)
    pre_table = np.zeros(2 * MT_STALE_DATA, dtype=np.int64)  # per pre-trade metric: (start, count)
    head[RS_PRE_TABLE] = add(pre_table)  # (a view: filled below)
    for m in range(1, MT_STALE_DATA + 1):
        of_m = [r for r in pre if metrics[r] == m]
        pre_table[2 * (m - 1) : 2 * m] = add_ints(of_m), len(of_m)
    head[RS_FAST] = add(_fast_table(rules, metrics, pre, n_instruments).ravel())
    table = np.zeros(2 * AC_NCODES, dtype=np.int64)  # per activity code: (start, count) of its entries
    head[RS_ACT_TABLE] = add(table)
    entries = []  # the entry blocks, whose block offsets are filled in once the blocks are placed
    for k, pairs in enumerate(per_code):
        table[2 * k : 2 * k + 2] = add(np.zeros(AE_NF * len(pairs))), len(pairs)
        entries.append(blocks[-1].reshape(-1, AE_NF))
        for e, (r, cls) in enumerate(pairs):
            entries[-1][e] = _activity_entry(r, cls, metrics[r], rules[r])
    for r in range(n):
        m, scope = int(rules[r, R_METRIC]), int(rules[r, R_SCOPE])
        if scope >= n_instruments:
            raise ValueError(f"new_risk_state: rule {r} is scoped to instrument {scope} but there "
                             f"are only {n_instruments} instruments")
        head[RS_N_SAMPLE] += m in (MT_LOSS_OVER_WINDOW, MT_DRAWDOWN, MT_EWMA_VAR_BREACH)
        if m == MT_EXTERNAL_KILL:
            head[RS_EXTERNAL] = r
        b = _block(m, rules[r], n_instruments)
        head[RS_HEADER + r] = pos if b.size else -1
        blocks.append(b)
        pos += b.size
    for rows in entries:  # the rule and its block's offset, integer slots
        ints = rows.view(np.int64)
        ints[:, AE_OFF] = head[RS_HEADER + ints[:, AE_RULE]]
    rstate = np.concatenate([head.view(np.float64)] + blocks)
    ks = np.zeros(KS_NF)
    ks[[KS_RULE, KS_TS, KS_OBSERVED, KS_THRESHOLD]] = -1.0, np.nan, np.nan, np.nan
    stale = rules[metrics == MT_STALE_FEED, R_THRESHOLD]
    ks[KS_WAKE_AT] = -np.inf if (metrics == MT_PRICE_COLLAR_SIGMA).any() else np.inf
    ks[KS_WAKE_GAP] = stale.min() if stale.size else np.inf
    ks[KS_WAKE_CROSSED] = float((metrics == MT_CROSSED_DATA).any())
    ks[KS_WAKE_ALL] = head[RS_EVERY_EVENT]
    ks[KS_PREV_TS] = np.nan
    return RiskState(rstate, ks)


# ------------------------------------------------------------------------- state machine
@internal_njit
def escalate_nb(now, rule, action, observed, threshold, ks):
    """Move the switch up to what ``action`` demands; returns the new state, or 0 if not harsher."""
    target = KS_REDUCING if action == ACT_REDUCE else KS_HALTED
    flat = action == ACT_HALT_FLATTEN
    state = ks[KS_STATE]
    if target > state or (flat and state == KS_HALTED and ks[KS_FLATTEN] == 0.0):
        ks[KS_STATE] = target
        ks[KS_RULE] = rule
        ks[KS_TS] = now
        ks[KS_OBSERVED] = observed
        ks[KS_THRESHOLD] = threshold
        if flat:
            ks[KS_FLATTEN] = 1.0
        ks[KS_N_TRANSITIONS] += 1.0
        return target
    return 0


@internal_njit
def reset_nb(now, rules, rstate, ks):
    """Explicit reset to ACTIVE; re-arms the trigger windows. Returns TR_RESET, or 0 if already ACTIVE.

    ``ks[KS_OBSERVED]`` keeps the state left behind, ``ks[KS_RULE]`` becomes PSEUDO_RESET.
    """
    for r in range(rules.shape[0]):
        m = int(rules[r, R_METRIC])
        off = int_nb(rstate, RS_HEADER + r)
        if m == MT_DRAWDOWN:
            rstate[off] = math.nan
        elif m in (MT_LOSS_OVER_WINDOW, MT_ORDER_TO_TRADE, MT_REJECT_RATE, MT_MESSAGE_RATE_KILL,
                   MT_FILL_RATE):
            set_int_nb(rstate, off + RB_HEAD, 0)
            set_int_nb(rstate, off + RB_COUNT, 0)
            rstate[off + RB_NUM] = 0.0
            rstate[off + RB_DEN] = 0.0
    prev = ks[KS_STATE]
    if prev == KS_ACTIVE:
        return 0
    ks[KS_STATE] = KS_ACTIVE
    ks[KS_FLATTEN] = 0.0
    ks[KS_RULE] = PSEUDO_RESET
    ks[KS_TS] = now
    ks[KS_OBSERVED] = prev
    ks[KS_THRESHOLD] = 0.0
    ks[KS_N_RESETS] += 1.0
    return TR_RESET


# ------------------------------------------------------------------------- ring buffers
# A ratio or loss ring's rows run in order from RB_HEAD, without wrapping around: cut to the window
# at the end of the buffer and at powers of two, and moved to the front with at most half left
# (the module doc), so the rows written stay within about twice the window's.
RING_CUT_MIN = 64  #: ratio and loss rings are cut to the window at powers of two from here on


@njit(cache=True, forceinline=True)
def _cut_due(end, cap):
    """Whether a ring whose next row goes at ``end`` is due for a cut: at the end of its buffer,
    or at a power of two from RING_CUT_MIN on."""
    return end == cap or (end >= RING_CUT_MIN and (end & (end - 1)) == 0)


@internal_njit
def _to_front(rs, base, head, n, width, end, cap):
    """After a cut at ``end``: the ring's ``n`` rows of ``width`` floats moved from row ``head``
    to row 0 if ``end`` was the end of the buffer or at most half of it is left; the head after.
    Out of line: it runs once per power of two of rows appended, at most."""
    not_inlined()
    if head == 0 or (end != cap and 2 * n > end):
        return head
    for k in range(n * width):  # forward: the rows only move down
        rs[base + k] = rs[base + head * width + k]
    return 0


@internal_njit
def _slide_cut(rs, off, width, head, n, cap):
    """A loss ring due for a cut (:func:`_cut_due`), already cut to its window: if still full,
    drop the oldest, counted in RB_OVERFLOW; then :func:`_to_front`. (head, n) after."""
    not_inlined()
    end = head + n
    if n == cap:
        head += 1
        n -= 1
        rs[off + RB_OVERFLOW] += 1.0
    return _to_front(rs, off + RB_NF, head, n, width, end, cap), n


# helpers inlined by LLVM (forceinline), not by numba: the same instructions per order, a shorter
# cold compile (engine/internal.py, "Inlining")
@njit(cache=True, forceinline=True)
def ring_slide_nb(rs, off, width, cutoff, ts, value):
    """Drop the entries stamped before ``cutoff`` (column 0 is the time), then append ``(ts,
    value)``; when still full, drop the oldest too, counted in RB_OVERFLOW (loss_over_window's
    samples). Returns the row offset written, so callers with wider rows fill the remaining columns.
    The rows run in order from RB_HEAD without wrapping around, moved to the front as a ratio
    trigger's are (:func:`_ratio_trigger_nb`): the rows written cycle through about twice the
    window's, not the whole buffer.

    One step, not an expiry then a push: head and count stay in registers between the two (the
    push read back what the expiry had just stored, through a float conversion each way).
    """
    cap = slot_nb(rs, off + RB_CAP)
    head = slot_nb(rs, off + RB_HEAD)
    n = slot_nb(rs, off + RB_COUNT)
    base = off + RB_NF
    while n > 0 and rs[base + head * width] < cutoff:
        head += 1
        n -= 1
    if _cut_due(head + n, cap):
        head, n = _slide_cut(rs, off, width, head, n, cap)
        head, n = head & SLOT_MASK, n & SLOT_MASK  # known >= 0 again after the call (slots.py)
    row = base + (head + n) * width
    rs[row] = ts
    rs[row + 1] = value
    set_int_nb(rs, off + RB_HEAD, head)
    set_int_nb(rs, off + RB_COUNT, n + 1)
    return row


@njit(cache=True, forceinline=True)
def _count_trigger_nb(rs, off, now, cutoff):
    """Append ``now`` to a count trigger's ring of its last ``cap`` times (cap = floor(thr) + 1):
    (the count held, whether more than the threshold are in ``[cutoff, now]``). The count in the
    window tops ``floor(thr)`` iff the ring is full and its oldest time, next to be overwritten,
    is in the window. RB_HEAD: the next row to write; RB_COUNT: rows written, at most cap."""
    cap = slot_nb(rs, off + RB_CAP)
    head = slot_nb(rs, off + RB_HEAD)
    rs[off + RB_NF + head] = now
    head = ring_slot_nb(head, 1, cap)
    n = min(slot_nb(rs, off + RB_COUNT) + 1, cap)
    set_int_nb(rs, off + RB_HEAD, head)
    set_int_nb(rs, off + RB_COUNT, n)
    return float(n), n == cap and rs[off + RB_NF + head] >= cutoff


@njit(cache=True, forceinline=True)
def _ratio_drop(rs, base, head, num, den):
    """Uncount a ratio ring's oldest row (at ``head``): (the next head, num, den)."""
    c = rs[base + 2 * head + 1]
    return head + 1, num - (1.0 if c == 0.0 else 0.0), den - (0.0 if c == 0.0 else 1.0)


@njit(cache=True, forceinline=True)
def _ratio_expire(rs, base, cutoff, head, n, num, den):
    """Drop a ratio ring's rows stamped before ``cutoff``, oldest first: (head, n, num, den) after."""
    while n > 0 and rs[base + 2 * head] < cutoff:
        head, num, den = _ratio_drop(rs, base, head, num, den)
        n -= 1
    return head, n, num, den


@internal_njit
def _ratio_cut(rs, off, cutoff, head, n, cap, num, den):
    """A ratio ring whose next row would go at the end of its buffer or at a power of two
    (``head + n``): cut to the window; if still full, drop the oldest (counted in RB_OVERFLOW);
    then :func:`_to_front`. (head, n, num, den) after. Out of line: it runs once per power of two
    of rows appended."""
    not_inlined()
    base = off + RB_NF
    end = head + n
    head, n, num, den = _ratio_expire(rs, base, cutoff, head, n, num, den)
    if n == cap:  # full of the window: the oldest is lost, counted
        head, num, den = _ratio_drop(rs, base, head, num, den)
        n -= 1
        rs[off + RB_OVERFLOW] += 1.0
    return _to_front(rs, base, head, n, 2, end, cap), n, num, den


@njit(cache=True, forceinline=True)
def _ratio_trigger_nb(rs, off, now, cutoff, cls, counts_num, min_count, thr):
    """Append ``(now, cls)`` to a ratio trigger's ring: (num / max(den, 1) in ``[cutoff, now]``,
    whether that is above ``thr`` with the counted class (num if ``counts_num``, else den) at
    least ``min_count``).

    Expiry is lazy: the class counts over all the ring holds bound those in the window from
    above, and the ratio is at most num, so while ``num <= thr`` or the counted class is under
    ``min_count`` over the whole ring the window cannot trip and is not cut to size. It is cut
    (exactly) when it could trip, and when the next row would go at the end of the buffer or at a
    power of two (:func:`_ratio_cut`, which keeps the rows written near the buffer's front and
    drops a row only when the window holds ``cap``, so RB_OVERFLOW still counts only rows inside
    the window). The ring holds every entry of the window and maybe older ones.
    """
    cap = slot_nb(rs, off + RB_CAP)
    head = slot_nb(rs, off + RB_HEAD)
    n = slot_nb(rs, off + RB_COUNT)
    num = rs[off + RB_NUM]
    den = rs[off + RB_DEN]
    base = off + RB_NF
    if _cut_due(head + n, cap):
        head, n, num, den = _ratio_cut(rs, off, cutoff, head, n, cap, num, den)
        head, n = head & SLOT_MASK, n & SLOT_MASK  # known >= 0 again after the call (slots.py)
    row = base + 2 * (head + n)
    rs[row] = now
    rs[row + 1] = cls
    n += 1
    num += 1.0 if cls == 0.0 else 0.0
    den += 0.0 if cls == 0.0 else 1.0
    hit = False
    obs = 0.0
    if num > thr and (num if counts_num else den) >= min_count:  # could trip: the window exactly
        head, n, num, den = _ratio_expire(rs, base, cutoff, head, n, num, den)
        obs = num / max(den, 1.0)
        hit = (num if counts_num else den) >= min_count and obs > thr
    set_int_nb(rs, off + RB_HEAD, head)
    set_int_nb(rs, off + RB_COUNT, n)
    rs[off + RB_NUM] = num
    rs[off + RB_DEN] = den
    return obs, hit


# ------------------------------------------------------------------------- per market event
@internal_njit
def monitor_event_nb(now, kind, inst, side, level, mkt, rules, rstate, ks):
    """On a local market event, after the strategy's market view ``mkt`` took it in.

    The loop calls it only for CONTROL rows and for events that meet a wake-up condition the
    rules publish in ``ks`` (KS_WAKE_*); calling it on every other event changes nothing.
    CONTROL rows with ``level == 1``: ``side == -1`` is an external kill (the book's external_kill
    rule, else a halt under PSEUDO_EXTERNAL), ``side == +1`` a reset. ``level == 0`` CONTROL rows
    are exchange trading halts: not ours, ignored. The rules:

    - stale_feed: the gap since the previous local event (``ks[KS_PREV_TS]``, kept by the loop).
    - price_collar_sigma: every ``window`` of local time (at the first event on or after each
      multiple of it), the mid of each instrument in scope is sampled; ``x = log(mid / previous
      sample's mid)`` and ``x**2 * window / elapsed`` (one window's worth, when the samples are
      further apart) feeds the EWMA variance (``var = x1**2``, then ``lam * var + (1 - lam) * x**2``).
      Sampling on a clock keeps the estimate free of bid-ask bounce and of the quote rate.
    - crossed_data: a quote leaving bid >= ask starts its instrument's clock, one that uncrosses
      stops it; while any instrument is crossed every event checks the duration.
    """
    ctl = 0
    if kind & _CONTROL and level == 1:
        ctl = -1 if side == -1 else (1 if side == 1 else 0)
    if int_nb(rstate, RS_N_EVENT) == 0 and ctl == 0:
        return 0
    tr = 0
    armed = ctl != 1  # a reset event updates the feed facts but trips nothing
    if int_nb(rstate, RS_N_EVENT) != 0:
        quote = (kind & _QUOTE) != 0
        n_inst = slot_nb(rstate, RS_N_INST)
        first_rule = slot_nb(rstate, RS_EVENT_LIST)
        wake_at = math.inf
        crossed_any = False
        for e in range(slot_nb(rstate, RS_N_EVENT)):  # only the rules with per-event work
            r = slot_nb(rstate, first_rule + e)
            m = int(rules[r, R_METRIC])
            scope = int(rules[r, R_SCOPE])
            off = slot_nb(rstate, RS_HEADER + r)  # (-1, masked, for a rule without a block: unused)
            thr = rules[r, R_THRESHOLD]
            if m == MT_STALE_FEED:
                gap = now - ks[KS_PREV_TS]  # NaN before the first event: no trip
                if armed and gap > thr:
                    tr = max(tr, escalate_nb(now, r, rules[r, R_ACTION], gap, thr, ks))
            elif m == MT_PRICE_COLLAR_SIGMA:
                nxt = rstate[off + SIG_NEXT]
                if now >= nxt:
                    _sample_sigma_nb(now, rules[r, R_WINDOW], rules[r, R_P0], scope, n_inst, mkt,
                                     rstate, off + SIG_ROWS)
                    nxt = (math.floor(now / rules[r, R_WINDOW]) + 1.0) * rules[r, R_WINDOW]
                    rstate[off + SIG_NEXT] = nxt
                wake_at = min(wake_at, nxt)
            elif m == MT_CROSSED_DATA:
                if quote and (scope < 0 or scope == inst):
                    crossed = mkt[inst, M_BID] >= mkt[inst, M_ASK]  # False if either is NaN
                    since = rstate[off + 1 + inst]
                    if crossed and math.isnan(since):
                        rstate[off + 1 + inst] = now
                        rstate[off + CR_N_CROSSED] += 1.0
                    elif not crossed and not math.isnan(since):
                        rstate[off + 1 + inst] = math.nan
                        rstate[off + CR_N_CROSSED] -= 1.0
                if rstate[off + CR_N_CROSSED] > 0.0:  # any event checks the duration
                    crossed_any = True
                    if armed:
                        first = float(now)
                        for k in range(n_inst):
                            s = rstate[off + 1 + k]
                            if s < first:  # NaN compares False
                                first = s
                        if now - first > thr:
                            tr = max(tr, escalate_nb(now, r, rules[r, R_ACTION], now - first, thr, ks))
        ks[KS_WAKE_AT] = wake_at
        ks[KS_WAKE_ALL] = float(int_nb(rstate, RS_EVERY_EVENT)) + (1.0 if crossed_any else 0.0)
    if ctl == -1:
        r = int_nb(rstate, RS_EXTERNAL)
        if r >= 0:
            tr = max(tr, escalate_nb(now, r, rules[r, R_ACTION], 1.0, 0.0, ks))
        else:
            # (typed as the rule rows are: literal arguments would compile escalate_nb again)
            tr = max(tr, escalate_nb(now, np.int64(PSEUDO_EXTERNAL), float(ACT_HALT), 1.0, 0.0, ks))
    elif ctl == 1:
        tr = reset_nb(now, rules, rstate, ks)
    return tr


@internal_njit
def _sample_sigma_nb(now, window, lam, scope, n_inst, mkt, rstate, rows):
    """One clock sample of the sigma estimate: each instrument in scope with a usable mid."""
    for k in range(n_inst):
        if scope >= 0 and scope != k:
            continue
        mid = mkt[k, M_MID]
        if not (mid > 0.0 and mid < math.inf):  # no quote yet, or a broken one: keep the estimate
            continue
        o = rows + k * SIG_NF
        prev = rstate[o + SIG_PREV_MID]
        if prev > 0.0:
            x = math.log(mid / prev)
            x2 = x * x * window / (now - rstate[o + SIG_PREV_TS])
            n = rstate[o + SIG_N]
            rstate[o + SIG_VAR] = x2 if n == 0.0 else lam * rstate[o + SIG_VAR] + (1.0 - lam) * x2
            rstate[o + SIG_N] = n + 1.0
        rstate[o + SIG_PREV_MID] = mid
        rstate[o + SIG_PREV_TS] = now


# ------------------------------------------------------------------------- per equity sample
@internal_njit
def monitor_sample_nb(now, equity, pnl, rules, rstate, ks):
    """Per equity sample: loss_over_window, drawdown, ewma_var_breach.

    ``equity``: account equity (currency); ``pnl``: cumulative realized + unrealized PnL (currency,
    gains positive). loss_over_window compares ``pnl`` with the oldest sample in
    ``[now - window, now]``. drawdown is ``(peak - equity) / peak`` with the peak of equity since
    the start or the last reset (undefined, so no trip, while the peak is <= 0). ewma_var_breach:
    increment ``x = pnl - previous pnl``; the trigger compares the loss ``-x`` with
    ``threshold * z(level) * sigma``, sigma from the EWMA variance of the increments before this one
    (``var = x1**2``, then ``lam * var + (1 - lam) * x**2``), once ``min_samples`` are folded in.
    NaN inputs leave the estimates alone.
    """
    if int_nb(rstate, RS_N_SAMPLE) == 0:
        return 0
    tr = 0
    for r in range(rules.shape[0]):
        m = int(rules[r, R_METRIC])
        off = slot_nb(rstate, RS_HEADER + r)  # (-1, masked, for a rule without a block: unused)
        thr = rules[r, R_THRESHOLD]
        if m == MT_LOSS_OVER_WINDOW and not math.isnan(pnl):
            ring_slide_nb(rstate, off, 2, now - rules[r, R_WINDOW], now, pnl)
            loss = rstate[off + RB_NF + slot_nb(rstate, off + RB_HEAD) * 2 + 1] - pnl
            if loss > thr:
                tr = max(tr, escalate_nb(now, r, rules[r, R_ACTION], loss, thr, ks))
        elif m == MT_DRAWDOWN and not math.isnan(equity):
            if not equity <= rstate[off]:  # also when the peak is NaN (start, after a reset)
                rstate[off] = equity
            peak = rstate[off]
            if peak > 0.0:
                dd = (peak - equity) / peak
                if dd > thr:
                    tr = max(tr, escalate_nb(now, r, rules[r, R_ACTION], dd, thr, ks))
        elif m == MT_EWMA_VAR_BREACH and not math.isnan(pnl):
            prev = rstate[off + EV_PREV_PNL]
            rstate[off + EV_PREV_PNL] = pnl
            if math.isnan(prev):
                continue
            x = pnl - prev
            n = rstate[off + EV_N]
            var = rstate[off + EV_VAR]
            if n >= 1.0 and n >= rules[r, R_P2] and var > 0.0:
                limit = thr * rstate[off + EV_Z] * math.sqrt(var)
                if -x > limit:
                    tr = max(tr, escalate_nb(now, r, rules[r, R_ACTION], -x, limit, ks))
            lam = rules[r, R_P0]
            rstate[off + EV_VAR] = x * x if n == 0.0 else lam * var + (1.0 - lam) * x * x
            rstate[off + EV_N] = n + 1.0
    return tr


# ------------------------------------------------------------------------- per order activity
# explicit: one copy, not one per literal activity code its callers pass (see engine/nbtypes.py)
@internal_njit(_t.int64(_t.int64, _t.int64, _t.int64, F64_2D, F64_1D, F64_1D))
def monitor_activity_nb(now, what, inst, rules, rstate, ks):
    """Per order activity ``what`` (AC_*) on instrument ``inst`` at local time ``now``.

    order_to_trade: order messages (submit + modify + cancel, as in MiFID II RTS 9) per fill,
    ``messages / max(fills, 1)``, once ``messages >= min_orders``; reject_rate: exchange rejects
    per submit, ``rejects / max(submits, 1)``, once ``submits >= min_orders``; message_rate_kill:
    messages in the window; fill_rate: fills in the window.
    """
    code_offset(5)  # its slot (engine/internal.py)
    if int_nb(rstate, RS_N_ACTIVITY) == 0 or what < 1 or what > AC_NCODES:
        return 0
    tr = 0
    entry = slot_nb(rstate, RS_ACT_TABLE) + 2 * ((what - 1) & 7)  # (masked: known >= 0, see slots.py)
    first = slot_nb(rstate, entry)
    for e in range(slot_nb(rstate, entry + 1)):  # the rules that count this activity (AE_* entries)
        at = first + AE_NF * e
        scope = rstate[at + AE_SCOPE]
        if scope >= 0.0 and scope != inst:
            continue
        off = slot_nb(rstate, at + AE_OFF)
        thr = rstate[at + AE_THRESHOLD]
        cutoff = now - rstate[at + AE_WINDOW]
        kind = rstate[at + AE_KIND]
        if kind == AE_COUNT:
            obs, hit = _count_trigger_nb(rstate, off, now, cutoff)
        else:
            obs, hit = _ratio_trigger_nb(rstate, off, now, cutoff, rstate[at + AE_CLS], kind == AE_RATIO_NUM,
                                         rstate[at + AE_MIN], thr)
        if hit:
            r = slot_nb(rstate, at + AE_RULE)
            tr = max(tr, escalate_nb(now, r, rules[r, R_ACTION], obs, thr, ks))
    return tr
