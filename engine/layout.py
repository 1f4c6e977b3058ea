"""Column indices of the engine's state arrays.

Kernel state lives in a handful of plain float64/int64 arrays (so it can be carried across chunks,
hashed and inspected); these module-level ints name their columns. Numba treats module globals
as compile-time constants, so naming costs nothing in the loop.
"""

from __future__ import annotations

__all__ = [name for name in dir() if name.isupper()]  # refreshed at the end of the module

# --- market view, float64[n_instruments, M_NF] (one for the exchange, one for the strategy) ----
M_BID = 0
M_ASK = 1
M_BID_SZ = 2
M_ASK_SZ = 3
M_LAST = 4  #: last trade price
M_MID = 5
M_TS_QUOTE = 6  #: strategy's view only: local time of the last quote, as float64 ns
M_TAKEN_BID = 7  #: exchange view only: size our own sells took at the current best bid
M_TAKEN_ASK = 8  #: exchange view only: size our own buys took at the current best ask
M_HALTED = 9  #: 1.0 while the exchange halts trading in the instrument (CONTROL rows, level 0)
M_NF = 10

# --- portfolio, float64[n_instruments, P_NF] ------------------------------------------------
P_POS = 0  #: position (units), exchange truth
P_AVG = 1  #: average entry price of the open position
P_REALIZED = 2  #: realized PnL (currency, before fees)
P_FEES = 3  #: fees paid (currency; rebates negative)
P_POS_LOCAL = 4  #: position as the strategy knows it (after response latency)
P_MARK = 5  #: last mark price used
P_TRADED = 6  #: traded notional (currency), for turnover
P_NF = 7

# --- account scalars, float64[A_NF] ----------------------------------------------------------
A_CASH = 0
A_EQUITY = 1
A_INITIAL = 2
A_NF = 3

# --- counters and cursors, int64[C_NF] -------------------------------------------------------
C_STATUS = 0  #: kernel status, KERNEL_* below
C_N_ORDERS = 1  #: rows used in the order table
C_N_OE = 2  #: order-event records written
C_N_FILLS = 3
C_N_EQ = 4
C_N_RISK = 5
C_N_PEND = 6  #: pending responses
C_XCURSOR = 7  #: exchange cursor, index into the current chunk
C_EVENTS_DONE = 8  #: global count of local events processed
C_N_OPEN = 9  #: open (resting or in-flight) exchange orders in the open list
C_RESP_SEQ = 10  #: sequence number for deterministic tie-break of responses
C_SINCE_SAMPLE = 11  #: events since the last equity sample
C_LAST_XTS = 12  #: exchange clock (max ts_exch applied, ns)
C_NEXT_ARRIVAL = 13  #: earliest exchange arrival time of an in-flight action (INT64 max if none)
C_NEXT_RESP = 14  #: earliest local delivery time of a pending response (INT64 max if none)
C_N_ACTIONS = 15  #: actions sent (for latency draws)
C_KILL = 16  #: 1 when the kill switch went HALTED and the loop still has to cancel/flatten
C_ERR_TS = 17  #: local time of the latest strategy callback (kept when it fails or raises)
C_ERR_ORDER = 18  #: -1: a market-event callback; else the order id of the response it answered
C_ERR_VALUE = 19  #: the bad request count it returned
C_CUR_ROW = 20  #: the chunk's row whose step is running (Backtest reports it, and its time, if a callback raises)
C_FLAT_TS = 21  #: local time of the kill switch's latest flattening attempt (one per instant)
C_N_WORK = 22  #: the strategy's working orders (in flight or open, local view), ids in ``lwork``
C_BURST_TS = 23  #: local time of the strategy's latest requests (the runaway guard's instant)
C_BURST_N = 24  #: requests the strategy sent at that local time
C_NEXT_SAMPLE_T = 25  #: the time clock's next multiple of sample_dt (local ns, exact integers)
# the kill switch's wake-up bounds, kept by the loop within one call (loop_template.py,
# _watch_bounds): in memory, not in the loop's registers
C_W_MARKED = 26  #: the next marked row at or after the rows checked (-1: none looked up yet)
C_W_MK = 27  #: the index of the next of the marks
C_W_SAFE = 28  #: no event before this local time (ns) may meet the timer or the feed gap
C_W_HOOKS = 29  #: 1: hooks ran since the bounds were drawn (the conditions may have moved on)
# the conditions the bounds were drawn under, as float64 bits (cnt viewed as float64)
C_W_FROM = 30  #: every event from this local time wakes the monitor (-inf: every one)
C_W_GAP = 31  #: the feed gap that wakes it
C_W_CROSSED = 32  #: 1.0: a crossed quote wakes it
# where the loop's time goes, in the CPU's time-stamp counter ticks: counted only by a build with
# the sections on (``Backtest(sections=True)``, engine/codegen.py), 0 in every other
C_S_LOOP = 33  #: the whole loop, every call
C_S_STEPS = 34  #: step 3, the strategy's steps (the kill switch's wake-up checks included)
C_S_IDLE = 35  #: an idle exchange catching up on the rows it owes
C_S_MATCH = 36  #: the exchange taking rows while orders rest or fill (matching included)
C_S_ARRIVALS = 37  #: actions arriving at the exchange
C_S_RESPONSES = 38  #: responses reaching the strategy (its callbacks, the activity monitor on fills)
C_S_REQUESTS = 39  #: step 4, the requests (the gate and the activity monitor on them included)
C_S_SAMPLES = 40  #: step 5, equity samples (the kill switch's sample monitor included)
C_S_GATE = 41  #: the pre-trade gate's calls (within the requests)
C_S_ACTIVITY = 42  #: the activity monitor's calls (within the requests and the responses)
C_S_N_GATE = 43  #: gate calls counted
C_S_N_ACTIVITY = 44  #: activity monitor calls counted
C_NF = 45
#: the counted sections, by name, in the order Result.sections lists them
SECTION_SLOTS = {
    "loop": C_S_LOOP, "steps": C_S_STEPS, "idle_exchange": C_S_IDLE, "matching": C_S_MATCH,
    "arrivals": C_S_ARRIVALS, "responses": C_S_RESPONSES, "requests": C_S_REQUESTS,
    "samples": C_S_SAMPLES, "gate": C_S_GATE, "activity": C_S_ACTIVITY,
}

# --- config, float64[K_NF] -------------------------------------------------------------------
K_MAKER_BPS = 0
K_TAKER_BPS = 1
K_MAKER_PER_UNIT = 2
K_TAKER_PER_UNIT = 3
K_IMPACT_TICKS = 4  #: L1 data: remainder beyond the touch fills this many ticks worse; < 0: no fill
K_QUEUE_MODEL = 5  #: 0 conservative (only trades advance), 1 probabilistic power model
K_QUEUE_POWER = 6  #: exponent n of the power queue model f(x) = x**n
K_MARK = 7  #: 0 mid, 1 last trade, 2 bid/ask side (long at bid, short at ask)
K_SAMPLE_EVERY = 8  #: equity sample every N events (0: off)
K_SAMPLE_DT = 9  #: equity sample every dt ns of local time (0: off)
K_SEED = 10
K_MAX_BURST = 11  #: most requests the strategy may send at one local time (the runaway guard)
K_NF = 12

# --- latency table, float64[3 actions, L_NF]: row = action - 1 -------------------------------
L_ENTRY_MODE = 0  #: 0 constant, 1 lognormal (seeded), 2 trace
L_ENTRY_A = 1  #: constant ns, or lognormal median ns
L_ENTRY_B = 2  #: lognormal sigma
L_RESP_MODE = 3
L_RESP_A = 4
L_RESP_B = 5
L_NF = 6
# the modes (latency.py): here, not there, so that the config imports no kernel (importing
# latency.py compiles latency_nb, outside the backtest's compile timing)
LAT_CONSTANT = 0
LAT_LOGNORMAL = 1
LAT_TRACE = 2

# --- the risk module's kill-switch array ks, float64[>= G_NF] (see gate.py) -------------------
G_DENY_OBSERVED = 0  #: observed value of the latest pre-trade denial
G_DENY_THRESHOLD = 1  #: its threshold
G_STATE = 2  #: kill-switch state: G_TR_NONE (active), G_TR_REDUCING, G_TR_HALTED
G_RULE = 3  #: rule index (or negative pseudo code) of the latest transition
G_TS = 4  #: local time of the latest transition (ns)
G_OBSERVED = 5  #: observed value of the trigger behind the latest transition
G_THRESHOLD = 6  #: its threshold
G_FLATTEN = 7  #: 1.0 once a trigger asked HALTED to flatten positions
# 8, 9: the risk module's own. Wake-up conditions (see gate.py): monitor_event_nb sees an event
# only if it is a CONTROL row or meets one of these
G_WAKE_AT = 10  #: local time (ns) from which the next event is shown (inf: no timer)
G_WAKE_GAP = 11  #: show an event more than this many ns after the previous local event
G_WAKE_CROSSED = 12  #: 1.0: show a quote that leaves its instrument's bid >= ask
G_WAKE_ALL = 13  #: > 0: show every event
G_PREV_TS = 14  #: the loop writes each local event's time here after it (NaN before the first)
G_NF = 15

# monitor return codes (the kill switch's new state) and pretrade's negative codes
G_TR_NONE = 0
G_TR_REDUCING = 1
G_TR_HALTED = 2
G_TR_RESET = 3
G_DENIED_HALTED = -1  #: pretrade: refused because the switch is HALTED
G_DENIED_REDUCING = -2  #: pretrade: refused in REDUCING (the order would not shrink |position|)

# what monitor_activity_nb is told about
G_ACT_SUBMIT = 1
G_ACT_FILL = 2
G_ACT_REJECT = 3
G_ACT_CANCEL = 4
G_ACT_MODIFY = 5

# --- the strategy's view of its own orders: LOCAL_ORDER columns are in records.py -------------

INT64_MAX = 9223372036854775807
INT64_MIN = -9223372036854775808

# --- kernel status (cnt[C_STATUS]) and callback reasons ----------------------------------------
# Here, not in loop_kernels.py: importing the template compiles its explicit-signature kernels
# (seconds, cold) for a loop nobody runs; the front door needs only these numbers.
KERNEL_DONE = 0
KERNEL_NEED_MORE = 1  #: the exchange clock needs the next chunk; the caller carries the tail over
KERNEL_OVERFLOW = 2  #: a record buffer is full: the front door reruns with larger buffers
KERNEL_STRATEGY_ERROR = 3  #: the strategy returned a bad request count
KERNEL_NEED_SPACE = 4  #: a record buffer is nearly full: the caller grows it and resumes
KERNEL_RUNAWAY = 5  #: the strategy sent more than K_MAX_BURST requests at one local time
REASON_MARKET = 0
REASON_RESPONSE = 1

__all__ = sorted(name for name in dir() if name.isupper())
