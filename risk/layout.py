"""Codes and column indices of the in-loop risk layer (rulebook rows, kill switch, risk state).

Module-level ints, like :mod:`tickguard.engine.layout`: numba freezes them as compile-time
constants, so naming columns costs nothing in the loop.

Arrays
------
``rules``  float64[n_rules, R_NF]: one compiled rule per row (see :mod:`.rulebook`).

``ks``     float64[KS_NF]: the kill switch. Its first two slots are the observed value and the
           threshold of the latest gate denial, so ``ks`` can be handed to the loop as its
           ``gate_state`` (the loop reads ``gate_state[0]`` / ``[1]`` into the risk record).

``rstate`` float64[n]: everything else, flat. A header (``RS_*``), then ``rstate[RS_HEADER + r]``
           holds the offset of rule ``r``'s block (``-1`` if the rule keeps no state); then
           ``2 * n_instruments`` scratch floats at ``RS_HEADER + n_rules`` (pretrade's open-order
           sums: buys, then sells); then the lists of the rules each hook visits (monitor_event_nb
           at ``rstate[RS_EVENT_LIST]``, ``RS_N_EVENT`` of them; pretrade_nb per metric at
           ``RS_PRE_TABLE``, the same rules in rulebook order at ``RS_PRE_LIST``;
           the rules a passed request charges at ``RS_CHARGE_LIST``; pretrade_nb's fast table at
           ``RS_FAST``, ``FT_*``; monitor_activity_nb's table at ``RS_ACT_TABLE``): each skips the
           rest; then the blocks. Block contents per metric:

           - message_rate: ``TB_*`` (one token bucket per action type: submit, modify; the last
             charge's previous values).
           - repeated_execution, duplicate_order: ring header ``RB_*``, ``cap`` rows of
             ``SG_NF`` floats (``SG_*``: the signature of each passed submit), then the
             table header ``SC_*`` and a hash table counting the signatures in the ring, kept
             up only while windows are full enough to need it (see :mod:`.signatures`).
           - price_collar_sigma: ``[next sample time]`` then ``n_instruments`` rows of ``SIG_NF``
             (``SIG_*``).
           - crossed_data: ``CR_N_CROSSED`` then ``n_instruments`` crossed-since times (NaN: not
             crossed).
           - loss_over_window: ring header ``RB_*`` then ``cap`` rows ``[ts, pnl]``, in time order
             from ``RB_HEAD`` as the ratio triggers' are.
           - drawdown: ``[peak equity]``.
           - ewma_var_breach: ``EV_*``.
           - order_to_trade, reject_rate: ring header ``RB_*`` then ``cap`` rows ``[ts, class]``
             (class 0 numerator, 1 denominator), in time order from ``RB_HEAD`` without wrapping
             around (moved to the front as they expire, see :mod:`.killswitch`).
           - message_rate_kill, fill_rate: ring header ``RB_*`` then ``cap`` times.

Integer slots: the header (every ``RS_*`` slot and the block offsets), the rule lists and the
(start, count) tables, the activity entries' ``AE_RULE`` and ``AE_OFF``, every ring header's
``RB_HEAD``, ``RB_COUNT`` and ``RB_CAP``, the signature tables' ``SC_NROWS``, ``SC_PENDING``,
``SC_EPOCH`` and ``SC_SCAN`` and the signature rows' ``SG_ROW`` hold int64 values stored as their
bits, not as float values (the kernels read them without a conversion, see :mod:`.slots`); Python
reads them through ``rstate.view(np.int64)``. Everything else holds floats.

Times are int64 ns carried as float64: exact below 2**53 ns (about 104 days), so epoch times
(~1.7e18 ns) are held to 256 ns; windows and gaps compare at that resolution.
"""

from __future__ import annotations

# --- rule rows: float64[n_rules, R_NF] -------------------------------------------------------
R_METRIC = 0  #: MT_* code
R_SCOPE = 1  #: instrument id, or -1 for all instruments
R_THRESHOLD = 2  #: the limit (units per metric, see rulebook.METRICS)
R_ACTION = 3  #: ACT_* code
R_WINDOW = 4  #: window length in ns (0: no window)
R_P0 = 5  #: first parameter (meaning per metric, see rulebook.METRICS)
R_P1 = 6
R_P2 = 7
R_NF = 8

SCOPE_ALL = -1

# --- metric codes: pre-trade controls (< MT_FIRST_KILL) then kill-switch triggers --------------
MT_MAX_ORDER_QTY = 1
MT_MAX_ORDER_NOTIONAL = 2
MT_PRICE_COLLAR_PCT = 3
MT_PRICE_COLLAR_SIGMA = 4
MT_MAX_POSITION = 5
MT_MAX_POSITION_NOTIONAL = 6
MT_MAX_GROSS_EXPOSURE = 7
MT_MAX_NET_EXPOSURE = 8
MT_MESSAGE_RATE = 9
MT_REPEATED_EXECUTION = 10
MT_DUPLICATE_ORDER = 11
MT_RESTRICTED = 12
MT_STALE_DATA = 13
MT_FIRST_KILL = 20
MT_LOSS_OVER_WINDOW = 20
MT_DRAWDOWN = 21
MT_EWMA_VAR_BREACH = 22
MT_ORDER_TO_TRADE = 23
MT_REJECT_RATE = 24
MT_MESSAGE_RATE_KILL = 25
MT_FILL_RATE = 26
MT_CROSSED_DATA = 27
MT_STALE_FEED = 28
MT_EXTERNAL_KILL = 29

# --- actions ---------------------------------------------------------------------------------
ACT_DENY = 0
ACT_REDUCE = 1
ACT_HALT = 2
ACT_HALT_FLATTEN = 3

# --- kill-switch states and kernel return codes ------------------------------------------------
KS_ACTIVE = 0
KS_REDUCING = 1
KS_HALTED = 2
TR_NONE = 0  #: monitor kernels: nothing changed
TR_RESET = 3  #: monitor_event_nb / reset_nb: a reset took the switch back to ACTIVE

# --- pseudo-rules (negative codes where a rule index would go) -------------------------------
PSEUDO_HALTED = -1  #: pretrade: refused because the switch is HALTED (observed/threshold: latching trigger's)
PSEUDO_REDUCING = -2  #: pretrade: refused in REDUCING (observed: projected position, threshold: position)
PSEUDO_EXTERNAL = -3  #: ks[KS_RULE]: external kill with no external_kill rule in the book (halt)
PSEUDO_RESET = -4  #: ks[KS_RULE] after a reset

# --- kill switch: float64[KS_NF] ---------------------------------------------------------------
KS_LAST_OBSERVED = 0  #: pretrade: observed value of the latest denial
KS_LAST_THRESHOLD = 1  #: pretrade: threshold of the latest denial
KS_STATE = 2  #: KS_ACTIVE / KS_REDUCING / KS_HALTED
KS_RULE = 3  #: rule index (0-based) that set the state, or a PSEUDO_* code; -1 never set
KS_TS = 4  #: local time of the latest transition or reset (ns)
KS_OBSERVED = 5  #: observed value of the trigger that set the state
KS_THRESHOLD = 6  #: its threshold (same units)
KS_FLATTEN = 7  #: 1.0 when a halt_flatten trigger latched: the loop should flatten positions
KS_N_TRANSITIONS = 8
KS_N_RESETS = 9
# wake-up conditions: the loop calls monitor_event_nb only for events that meet one of them (or
# CONTROL rows), so that the per-event rules cost nothing on the events they would ignore
KS_WAKE_AT = 10  #: the first event at or after this local time (ns; inf: no timer)
KS_WAKE_GAP = 11  #: an event more than this many ns after the previous local event (inf: none)
KS_WAKE_CROSSED = 12  #: 1.0: a quote that leaves its instrument's bid >= ask
KS_WAKE_ALL = 13  #: > 0: every event (a crossed book is being timed, or RS_EVERY_EVENT)
KS_PREV_TS = 14  #: set by the loop after each local event: its time (NaN before the first)
KS_NF = 15

# --- activity codes for monitor_activity_nb ----------------------------------------------------
AC_SUBMIT = 1  #: a new order left (passed the gate)
AC_FILL = 2  #: a fill report (partial or full) reached the strategy
AC_REJECT = 3  #: an exchange reject reached the strategy (gate denials are not sent: not counted)
AC_CANCEL = 4  #: a cancel request left
AC_MODIFY = 5  #: a modify request left
AC_NCODES = 5

# --- monitor_activity_nb's entries (AE_NF floats): one per activity code and rule counting it ----
# Each holds what the monitor reads for that rule, in one place: a visit reads one entry and the
# rule's ring, not the rule's row of ``rules`` and its block offset besides (copied by
# new_risk_state from the same rulebook as ``rules``).
AE_RULE = 0  #: the rule's index (for the escalation)
AE_CLS = 1  #: 0: the activity counts as the numerator, 1: as the denominator
AE_OFF = 2  #: offset of the rule's ring block
AE_KIND = 3  #: AE_COUNT, AE_RATIO_NUM or AE_RATIO_DEN
AE_SCOPE = 4  #: instrument, -1: all
AE_THRESHOLD = 5
AE_WINDOW = 6  #: ns
AE_MIN = 7  #: ratio triggers: the least count of the counted class (R_P0)
AE_NF = 8
AE_COUNT = 0.0  #: message_rate_kill, fill_rate: entries in the window
AE_RATIO_NUM = 1.0  #: order_to_trade: a ratio whose minimum count applies to the numerator
AE_RATIO_DEN = 2.0  #: reject_rate: ... to the denominator

# --- rstate header ---------------------------------------------------------------------------
RS_N_RULES = 0
RS_N_INST = 1
RS_N_EVENT = 2  #: rules monitor_event_nb must visit (sigma, crossed_data, stale_feed)
RS_N_SAMPLE = 3  #: rules monitor_sample_nb must visit
RS_N_ACTIVITY = 4  #: rules monitor_activity_nb must visit
RS_EXTERNAL = 5  #: index of the external_kill rule, -1 if none
RS_EVENT_LIST = 6  #: offset of the list of the RS_N_EVENT rule indices monitor_event_nb visits
RS_EVERY_EVENT = 7  #: 1: the loop shows monitor_event_nb every event (tests the wake-ups)
RS_CHARGE_LIST = 8  #: offset of the list of the RS_N_CHARGE rules a passed request charges
#: (message_rate, repeated_execution, duplicate_order; read by no kernel, like RS_PRE_LIST: the
#: gate charges each as it checks it)
RS_N_CHARGE = 9
RS_ACT_TABLE = 10  #: offset of AC_NCODES (start, count) pairs: per activity code, where its list
#: of entries (AE_*: the rules that count it, as numerator or denominator) starts and how many
RS_PRE_LIST = 11  #: offset of the list of the RS_N_PRE pre-trade rules, in rulebook order (read
#: by no kernel: the state's own account of what the gate checks, RS_PRE_TABLE its index)
RS_N_PRE = 12
RS_PRE_TABLE = 13  #: offset of MT_STALE_DATA (start, count) pairs: per pre-trade metric m (from
#: 1), where the list of its rules (rulebook order) starts and how many it holds: pretrade_nb
#: runs each metric's code over its own rules, with no dispatch per rule
RS_FAST = 14  #: offset of pretrade's fast table (FT_*: n_instruments rows of FT_NF), -1: none (every
#: order then takes the rule-by-rule pass; the tests compare the two)
RS_HEADER = 15  #: rstate[RS_HEADER + r] = offset of rule r's block (-1: no state)

# --- pretrade's fast table: per instrument, the tightest threshold of each stateless metric ------
# over the rules that apply to it (scope all or that instrument; inf: none). An order within all
# of them passes every such rule; one that is not takes the rule-by-rule pass, which names the
# first denying rule (see :mod:`.pretrade`).
FT_QTY = 0  #: max_order_qty
FT_NOTIONAL = 1  #: max_order_notional
FT_COLLAR_PCT = 2  #: price_collar_pct
FT_POSITION = 3  #: max_position
FT_POSITION_NOTIONAL = 4  #: max_position_notional
FT_GROSS = 5  #: max_gross_exposure
FT_NET = 6  #: max_net_exposure
FT_STALE = 7  #: stale_data
FT_RESTRICTED = 8  #: 1.0 when a restricted rule applies, else 0.0
FT_NF = 9
#: the metric behind each FT_* column but FT_RESTRICTED (new_risk_state builds the table from it)
FT_METRICS = (MT_MAX_ORDER_QTY, MT_MAX_ORDER_NOTIONAL, MT_PRICE_COLLAR_PCT, MT_MAX_POSITION,
              MT_MAX_POSITION_NOTIONAL, MT_MAX_GROSS_EXPOSURE, MT_MAX_NET_EXPOSURE, MT_STALE_DATA)

# --- ring buffer header (RB_NF floats, then cap rows) ------------------------------------------
RB_HEAD = 0  #: slot of the oldest entry (count triggers: the next row written, killswitch.py)
RB_COUNT = 1  #: entries held (count triggers: rows written, at most the capacity)
RB_CAP = 2  #: capacity (rows)
RB_NUM = 3  #: entries of class 0 held (numerator)
RB_DEN = 4  #: entries of class 1 held (denominator)
RB_OVERFLOW = 5  #: entries still inside the window dropped because the ring was full
RB_NF = 6

# --- signature rows of the duplicate / repeated-execution ring -----------------------------------
SG_TS = 0
SG_INST = 1
SG_SIDE = 2
SG_TYPE = 3
SG_PRICE = 4
SG_QTY = 5
# SG_ROW in ring rows: where their key sits in the table (an rstate offset), so expiry needs no
# probe; in table rows: the epoch in which the row was filled (signatures.SC_EPOCH; another: empty)
SG_ROW = 6
SG_NF = 7

# --- token bucket (message_rate) ----------------------------------------------------------------
TB_TOKENS_SUBMIT = 0
TB_LAST_SUBMIT = 1  #: time of the last refill (NaN: bucket untouched, full)
TB_TOKENS_MODIFY = 2
TB_LAST_MODIFY = 3
TB_SAVED_TOKENS = 4  #: the tokens and refill time a charge replaced, for the gate to undo it
TB_SAVED_LAST = 5
TB_NF = 6

# --- EWMA sigma of mid log-returns sampled every `window` (price_collar_sigma) ------------------
SIG_NEXT = 0  #: block slot 0: local time of the next sample (-inf: at the first event)
SIG_ROWS = 1  #: then n_instruments rows of SIG_NF floats:
SIG_PREV_MID = 0  #: mid at the previous sample (NaN: none yet)
SIG_VAR = 1  #: EWMA variance of log-returns per window (the return's square scaled to one window)
SIG_N = 2  #: returns folded in
SIG_PREV_TS = 3  #: time of the previous sample
SIG_NF = 4

# --- crossed_data ------------------------------------------------------------------------------
CR_N_CROSSED = 0  #: then n_instruments crossed-since times

# --- ewma_var_breach -----------------------------------------------------------------------------
EV_Z = 0  #: standard normal quantile at the rule's level (filled by new_risk_state)
EV_VAR = 1  #: EWMA variance of PnL increments (currency**2)
EV_N = 2  #: increments folded in
EV_PREV_PNL = 3  #: NaN before the first sample
EV_NF = 4

__all__ = sorted(name for name in dir() if name.isupper())
