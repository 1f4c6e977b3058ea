"""The Python front door: :class:`Backtest`, :func:`run` and the :class:`Result` they return."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pandas as pd
import xxhash
from numba import njit

from tickguard.data.errors import TickguardWarning
from tickguard.data.schema import EVENT_DTYPE, KIND_DEPTH, KIND_SNAPSHOT, InstrumentTable

from .book import B_NF, BM_NF
from .codegen import check_code_copy, compile_loop
from .config import EngineConfig
from .internal import CYCLES_AVAILABLE
from .layout import (
    A_CASH, A_EQUITY, A_INITIAL, A_NF, C_CUR_ROW, C_ERR_ORDER, C_ERR_TS, C_ERR_VALUE,
    C_EVENTS_DONE, C_LAST_XTS, C_N_EQ, C_N_FILLS, C_N_OE, C_N_OPEN, C_N_ORDERS, C_N_PEND,
    C_N_RISK, C_NEXT_ARRIVAL, C_NEXT_RESP, C_NEXT_SAMPLE_T, C_NF, C_S_LOOP, C_S_N_ACTIVITY,
    C_S_N_GATE, C_STATUS, C_XCURSOR, G_NF, SECTION_SLOTS,
    INT64_MAX,
    KERNEL_NEED_MORE, KERNEL_NEED_SPACE, KERNEL_OVERFLOW, KERNEL_RUNAWAY, KERNEL_STRATEGY_ERROR,
    M_HALTED, M_NF, M_TAKEN_ASK, M_TAKEN_BID, P_NF,
)
from .minmax import max2, min2
from .prefetch import BufferPool, prefetch
from .records import (
    EQUITY_DTYPE, FILL_DTYPE, LOCAL_ORDER_DTYPE, ORDER_DTYPE, ORDER_EVENT_DTYPE, ORDER_EVENT_NAMES,
    REQUEST_DTYPE, RESPONSE_DTYPE, RISK_EVENT_DTYPE, RISK_KIND_NAMES, RISK_STATE_NAMES,
)
from .strategy import NumbaStrategy, SignalStrategy

__all__ = ["Backtest", "Result", "StrategyError", "run"]


class StrategyError(RuntimeError):
    """The strategy misbehaved (bad request count, exception, wrong-shaped signal)."""


@dataclass
class Result:
    """Records of one run, as arrays and DataFrames, with a summary and a deterministic hash.

    ``result_hash`` is the SHA-256 of the config, rulebook, instruments and strategy, and of the
    XXH3-128 digests of the input events (streamed, so independent of chunking) and of each
    record array. XXH3 reads ~30 GB/s, SHA-256 ~1.8: on 10^7 events SHA-256 of the input alone
    took as long as the loop. It identifies runs; it is not meant to resist forgery."""

    order_events: np.ndarray
    fills: np.ndarray
    equity: np.ndarray
    risk_events: np.ndarray
    orders: np.ndarray
    instruments: InstrumentTable
    config: EngineConfig
    strategy_name: str
    n_events: int
    result_hash: str
    timings: dict[str, float] = field(default_factory=dict)
    risk: Any = None  # the RiskGate of the run (None: pass-through), for explanations
    # Backtest(sections=True): where the loop's time went, ns per section (SECTION_SLOTS, engine/
    # layout.py; "gate" and "activity" lie within "requests" and "responses"), and the calls of
    # the gate and the activity monitor counted; None otherwise
    sections: dict[str, float] | None = None
    # {rule id: entries still inside the rule's window that its full ring dropped}: those rules
    # judged shorter windows than their rows say (a TickguardWarning says so); empty if none
    risk_ring_overflows: dict[str, int] = field(default_factory=dict)

    def order_events_df(self) -> pd.DataFrame:
        df = pd.DataFrame(self.order_events).drop(columns=["_pad"])
        df["event"] = df["event"].map(ORDER_EVENT_NAMES)
        return df

    def fills_df(self) -> pd.DataFrame:
        return pd.DataFrame(self.fills).drop(columns=["_pad"])

    def equity_df(self) -> pd.DataFrame:
        return pd.DataFrame(self.equity)

    def risk_events_df(self) -> pd.DataFrame:
        """Risk events with names: kind, kill-switch state after, rule id and a sentence saying why."""
        df = pd.DataFrame(self.risk_events)
        df["kind"] = df["kind"].map(RISK_KIND_NAMES)
        df["state"] = df["state"].map(RISK_STATE_NAMES)
        if self.risk is not None:
            df["rule_id"] = [self.risk.rule_name(int(r)) for r in self.risk_events["rule"]]
            df["explanation"] = [self.risk.explain(int(r), float(o), float(t)) for r, o, t in
                                 zip(self.risk_events["rule"], self.risk_events["observed"],
                                     self.risk_events["threshold"])]
        return df

    @property
    def summary(self) -> dict[str, Any]:
        eq = self.equity
        initial = self.config.initial_cash
        final = float(eq["equity"][-1]) if len(eq) else initial
        return {
            "strategy": self.strategy_name,
            "events": self.n_events,
            "orders": int(len(self.orders)),
            "fills": int(len(self.fills)),
            "risk_events": int(len(self.risk_events)),
            "initial_cash": initial,
            "final_equity": final,
            "pnl": final - initial,
            "fees": float(self.fills["fee"].sum()) if len(self.fills) else 0.0,
            "result_hash": self.result_hash,
            **{f"{k}_s": v for k, v in self.timings.items() if k != "buffer_grows"},
            "buffer_grows": int(self.timings.get("buffer_grows", 0)),
        }


def _grow(buffers: dict[str, np.ndarray], cnt: np.ndarray, n_inst: int, n_req: int, n_levels: int) -> None:
    """Double each record buffer until it has the room the loop's check (``_has_room`` in
    loop_kernels.py, same formulas) asks for; order-indexed tables grow together."""
    work = int(cnt[C_N_OPEN] + (cnt[C_N_PEND] + 1) * n_req + n_inst)
    per = work * (n_levels + 4) + 16
    need = {"rec_oe": cnt[C_N_OE] + per, "rec_fill": cnt[C_N_FILLS] + per, "resp": cnt[C_N_PEND] + per,
            "orders": cnt[C_N_ORDERS] + work + 1, "rec_risk": cnt[C_N_RISK] + 2 * work + 8,
            "rec_eq": cnt[C_N_EQ] + 4}
    grew = False
    for name, n in need.items():
        size = len(buffers[name])
        if n <= size:
            continue
        while size < n:
            size *= 2
        grew = True
        for key in (("orders", "lorders", "lwork", "open_idx") if name == "orders" else (name,)):
            # a fresh zeroed array and one byte copy, not resize() in place: resize zero-fills the
            # new rows, faulting every page in 4 KiB at a time (the 26 grows of 10^8 events with
            # EMA took 1.07 s, 1.00 s of it the kernel's; now 0.42 s), while numpy's zeroed
            # allocation of 4 MiB or more asks for huge pages and leaves the rows the loop has not
            # written untouched (assigning the structured rows copied them field by field: 0.45 s)
            old = buffers[key]
            buffers[key] = np.zeros(size, dtype=old.dtype)
            buffers[key].view(np.uint8)[: old.nbytes] = old.view(np.uint8)
        if name == "orders":
            buffers["kreq"] = np.zeros(size + n_inst, dtype=buffers["kreq"].dtype)
    if not grew:
        raise RuntimeError("the loop asked for room that every buffer already has")  # a bug


def _bytes(a: np.ndarray) -> memoryview:
    """The array's bytes without a copy when it is contiguous (hashing reads them once)."""
    return memoryview(np.ascontiguousarray(a).reshape(-1).view(np.uint8))


_BRIDGE_ROWS = 4096  # rows of a new chunk run with the previous chunk's leftover (see _run_once)
_BOOK_KINDS = int(KIND_DEPTH | KIND_SNAPSHOT)  # the rows an L2 book takes


class _Overflow(Exception):
    """A record buffer overflowed inside the loop: the run restarts with larger buffers."""


class _Joiner:
    """``np.concatenate([carry, chunk])`` for the streaming loop, which hands back a few
    unconsumed rows before every chunk. One byte copy into one of two reused buffers: numpy
    copies structured rows field by field (~10x slower: 9.8 vs 0.85 ms per 2^18-row chunk) and a
    fresh array per chunk pays its page faults again. Two, because the carry is a view of the
    buffer the previous join filled."""

    def __init__(self) -> None:
        self._bufs = [np.empty(0, dtype=EVENT_DTYPE), np.empty(0, dtype=EVENT_DTYPE)]
        self._next = 0

    def __call__(self, head: np.ndarray, tail: np.ndarray) -> np.ndarray:
        n = len(head) + len(tail)
        k = self._next
        self._next = 1 - k
        if len(self._bufs[k]) < n:
            self._bufs[k] = np.empty(n, dtype=EVENT_DTYPE)
        out = self._bufs[k][:n]
        raw = out.view(np.uint8)
        raw[: head.nbytes] = np.ascontiguousarray(head).view(np.uint8)
        raw[head.nbytes :] = np.ascontiguousarray(tail).view(np.uint8)
        return out


@njit(cache=True, nogil=True)
def _scan_rows_nb(events, prev_ts):
    """(smallest id, largest id, first row whose ``ts_local`` is below the one before it or -1,
    the bitwise or of the rows' kinds) of a non-empty event array, in one pass; ``prev_ts``: the
    previous chunk's last ``ts_local``. The rows are 72 bytes, so every pass reads every row's
    cache line: one pass for all (nogil: the reader thread runs it), ~28 ms for 10^7 rows, no
    longer than the ids' own pass; numpy's min and max of the ids took 157 ms."""
    lo = events[0]["instrument"]
    hi = lo
    prev = prev_ts
    first_bad = -1
    kinds = np.int64(0)
    for k in range(events.shape[0]):
        ev = events[k]
        v = ev["instrument"]
        lo = min2(lo, v)
        hi = max2(hi, v)
        kinds |= ev["kind"]
        t = ev["ts_local"]
        if t < prev and first_bad < 0:  # never taken on sorted data: predicted, ~free
            first_bad = k
        prev = t
    return lo, hi, first_bad, kinds


def _check_chunk(chunk: np.ndarray, known: np.ndarray, first_row: int, prev_ts: int,
                 table: InstrumentTable) -> bool:
    """Refuse a chunk with an event for an instrument id the table lacks (the kernels index
    per-instrument arrays by it, unchecked), or out of local-time order (the loop's clocks, its
    wake-up bounds and the strategy's causality assume ``ts_local`` never decreases).
    ``first_row``: the chunk's first row in the data; ``prev_ts``: the ``ts_local`` of the row
    before it (the smallest int64 for the first chunk). Returns whether it holds a book row
    (``KIND_DEPTH`` or ``KIND_SNAPSHOT``)."""
    if not len(chunk):
        return False
    lo, hi, bad, kinds = (int(v) for v in _scan_rows_nb(chunk, np.int64(prev_ts)))
    has_book = (kinds & _BOOK_KINDS) != 0
    if bad >= 0:
        before = int(chunk["ts_local"][bad - 1]) if bad > 0 else prev_ts
        raise ValueError(
            f"event row {first_row + bad}: field 'ts_local' is {int(chunk['ts_local'][bad])} ns, "
            f"below the previous row's {before} ns; the engine replays events in local-time "
            "order: sort them by ts_local (np.sort(events, order='ts_local', kind='stable')), or "
            "merge sorted sources with tickguard.data.merge"
        )
    ids = chunk["instrument"]
    if lo >= 0 and hi < len(known) and (known.all() or known[ids].all()):
        return has_book
    ok = (ids >= 0) & (ids < len(known))
    ok[ok] = known[ids[ok]]
    row = int(np.argmin(ok))
    raise ValueError(
        f"event row {first_row + row}: field 'instrument' is {int(ids[row])}, which is not an id "
        f"of the instrument table (ids {table.ids.tolist()}); add the instrument to the table "
        "(instruments=) or drop its rows"
    )


def _with_last(chunks: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, bool]]:
    it = iter(chunks)
    try:
        prev = next(it)
    except StopIteration:
        return
    for nxt in it:
        yield prev, False
        prev = nxt
    yield prev, True


class Backtest:
    """One strategy over one event stream.

    ``data``: an EVENT_DTYPE array, a canonical Parquet or ``.npy`` path (streamed chunk by chunk,
    read and hashed one or two chunks ahead in a thread), or a zero-argument callable returning an
    iterable of EVENT_DTYPE chunks, in ``ts_local`` order (a row below the one before it is
    refused, naming it; ids the instrument table lacks likewise, before the loop sees the chunk).
    Record buffers grow as they fill (each into a fresh array); the callable may
    still be called twice if a single step ever outgrows the loop's worst-case room estimate (the
    run is then repeated with larger buffers).
    ``risk``: None (allow everything) or a :class:`tickguard.risk.RiskGate` (a rulebook in the loop).
    ``progress``: None, or ``progress(events_done, elapsed_s)`` called after each chunk with the
    events processed so far (non-decreasing; the total after the last chunk) and the wall seconds
    since the run started. It is not part of the config or the result hash; if the run is ever
    repeated with larger buffers (see ``data``), the counts start again from 0.
    ``sections``: also time the loop's sections (x86-64): a build of the loop of its own, which
    reads the CPU's time-stamp counter around each (70-130 ns per order on the canonical
    workload, 5 December); ``Result.sections`` then says how the loop's time split, in ns. Not
    part of the config or the result hash: the records are the same either way.
    ``code_copy``: 0, or k >= 1 to run copy k of the loop's build: the same code compiled again
    under another name, at other addresses (codegen.compile_loop; benchmarks/placement.py
    averages over copies). Not part of the config or the result hash either.
    """

    def __init__(
        self,
        data: np.ndarray | str | os.PathLike[str] | Any,
        strategy: NumbaStrategy | SignalStrategy,
        *,
        instruments: InstrumentTable | None = None,
        config: EngineConfig | None = None,
        risk: Any = None,
        progress: Callable[[int, float], None] | None = None,
        sections: bool = False,
        code_copy: int = 0,
    ) -> None:
        if sections and not CYCLES_AVAILABLE:
            raise ValueError(f"sections=True: the loop's sections are timed with the x86-64 time-stamp "
                             f"counter, which this machine ({platform.machine()}) lacks; leave sections off")
        self.sections = bool(sections)
        self.code_copy = check_code_copy(code_copy)
        if progress is not None and not callable(progress):
            raise TypeError(f"progress: got {progress!r}; pass a callable "
                            "progress(events_done, elapsed_s) or None")
        self.progress = progress
        self.config = config or EngineConfig()
        self._data = data
        self.instruments = self._resolve_instruments(data, instruments)
        if isinstance(strategy, SignalStrategy):
            if not isinstance(data, np.ndarray):  # the signal is computed over the whole stream
                chunks = list(self._chunks())
                data = np.concatenate(chunks) if chunks else np.zeros(0, dtype=EVENT_DTYPE)
                self._data = data
            strategy = strategy.to_numba(data)
        if not isinstance(strategy, NumbaStrategy):
            raise TypeError(f"strategy must be a NumbaStrategy or SignalStrategy, got {type(strategy).__name__}")
        self.strategy = strategy
        # risk: None, or an object with ``module`` (the risk hooks, see gate.py), ``rules`` (float64
        # 2-D), ``new_state(n_instruments) -> (rstate, ks)`` (fresh arrays on every call: the loop
        # writes them), ``describe()``, ``rule_name(rule)`` and ``explain(rule, observed,
        # threshold)``, and optionally ``ring_overflows(rstate) -> {rule id: count}`` (read after
        # the run): tickguard.risk.RiskGate is one
        self.risk = risk

    @staticmethod
    def _resolve_instruments(data: Any, instruments: InstrumentTable | None) -> InstrumentTable:
        if instruments is not None:
            return instruments
        if isinstance(data, (str, os.PathLike)):
            from tickguard.data.readers import source_instruments

            table = source_instruments(data)
            if table is not None:
                return table
            raise ValueError(f"{os.fspath(data)}: no instrument table stored with the file; pass instruments=")
        if isinstance(data, np.ndarray):
            if data.dtype != EVENT_DTYPE:
                raise TypeError(f"data must have EVENT_DTYPE, got dtype {data.dtype}")
            ids = np.unique(data["instrument"]) if len(data) else np.array([0])
            return InstrumentTable.from_symbols([f"I{i}" for i in range(int(ids.max()) + 1)])
        raise ValueError("pass instruments= when data is a callable")

    def _chunks(self, pool: BufferPool | None = None) -> Iterable[np.ndarray]:
        """The data's EVENT_DTYPE chunks; a Parquet file's are packed into arrays of ``pool``
        when one is given (the caller gives each back once it reads it no more)."""
        data, rows = self._data, self.config.chunk_rows
        if isinstance(data, np.ndarray):
            return (data[s : s + rows] for s in range(0, max(len(data), 1), rows))
        if isinstance(data, (str, os.PathLike)):
            suffix = Path(data).suffix.lower()
            if suffix == ".parquet":
                from tickguard.data.parquet_io import iter_parquet_batches, parquet_batch_to_events

                # pyarrow decodes the next batch in a thread of its own while the reader thread
                # packs, checks and hashes the one before: one after the other, the reader was
                # the streaming pipeline's bound with a core idle (benchmarks/PERFORMANCE.md)
                return (parquet_batch_to_events(batch, data, offset,
                                                None if pool is None else pool.take(batch.num_rows))
                        for offset, batch in prefetch(iter_parquet_batches(data, rows), depth=1))
            if suffix == ".npy":
                from tickguard.data.npy_io import iter_npy

                return (np.asarray(c) for c in iter_npy(data, rows))
            raise ValueError(f"{os.fspath(data)}: the engine streams canonical .parquet or .npy; "
                             "convert other formats with `tickguard data convert`")
        return data()

    def run(self) -> Result:
        caps = {"orders": 1 << 12, "oe": 1 << 14, "fills": 1 << 13, "eq": 1 << 12, "risk": 1 << 10,
                "resp": 1 << 10}
        while True:
            result = self._run_once(caps)
            if result is not None:
                return result
            caps = {k: v * 4 for k, v in caps.items()}

    def _callback_raised(self, cnt: np.ndarray, exc: Exception, events: np.ndarray, g0: int) -> None:
        """``events``: the chunk the loop ran, ``g0``: the events done before its first row."""
        strat = self.strategy
        row = int(cnt[C_CUR_ROW])
        if cnt[C_ERR_ORDER] < 0:  # a market event's callback: the steps keep only its row
            where, ts = "its market-event callback", int(events[row]["ts_local"])
        else:
            where, ts = f"its response callback for order {int(cnt[C_ERR_ORDER])}", int(cnt[C_ERR_TS])
        raise StrategyError(
            f"strategy {strat.name!r} raised {type(exc).__name__}: {exc} in {where} at local time "
            f"{ts} ns (after {g0 + row} events)"
        ) from exc

    def _bad_request_count(self, cnt: np.ndarray) -> None:
        strat = self.strategy
        where = ("its market-event callback" if cnt[C_ERR_ORDER] < 0
                 else f"its response callback for order {int(cnt[C_ERR_ORDER])}")
        raise StrategyError(
            f"strategy {strat.name!r} returned {int(cnt[C_ERR_VALUE])} requests from {where} at "
            f"local time {int(cnt[C_ERR_TS])} ns (after {int(cnt[C_EVENTS_DONE])} events); it must "
            f"return how many rows of req it wrote, between 0 and max_requests={strat.max_requests}"
        )

    def _runaway(self, cnt: np.ndarray, g0: int) -> None:
        raise StrategyError(
            f"strategy {self.strategy.name!r} sent {int(cnt[C_ERR_VALUE])} requests at local time "
            f"{int(cnt[C_ERR_TS])} ns (after {g0 + int(cnt[C_CUR_ROW])} events), more than "
            f"EngineConfig.max_requests_per_instant={self.config.max_requests_per_instant}, with "
            "nothing moving time on: a runaway, most likely a request answered by a response that "
            "comes back at once and is answered by the same request again (no latency at all: "
            "EngineConfig.latency is 0 by default). Give the actions latency "
            "(EngineConfig.latency), stop resending what the exchange just rejected, or raise "
            "max_requests_per_instant if that many requests at one instant is intended"
        )

    def _run_once(self, caps: dict[str, int]) -> Result | None:
        table = self.instruments
        dense = table.dense_arrays()
        n_inst = len(dense["tick_size"])
        tick = np.nan_to_num(dense["tick_size"], nan=0.0)
        lot = np.nan_to_num(dense["lot_size"], nan=0.0)
        mult = np.nan_to_num(dense["multiplier"], nan=1.0)
        cfg = self.config.cfg_array()
        lat, trace_ts, trace_lat = self.config.latency.arrays()
        strat = self.strategy
        mkt_l = np.full((n_inst, M_NF), np.nan)
        mkt_x = np.full((n_inst, M_NF), np.nan)
        mkt_l[:, [M_TAKEN_BID, M_TAKEN_ASK, M_HALTED]] = 0.0
        mkt_x[:, [M_TAKEN_BID, M_TAKEN_ASK, M_HALTED]] = 0.0
        pf = np.zeros((n_inst, P_NF))
        pos_local = np.zeros(n_inst)
        acct = np.zeros(A_NF)
        acct[A_CASH] = acct[A_EQUITY] = acct[A_INITIAL] = self.config.initial_cash
        orders = np.zeros(caps["orders"], dtype=ORDER_DTYPE)
        lorders = np.zeros(caps["orders"], dtype=LOCAL_ORDER_DTYPE)
        open_idx = np.zeros(caps["orders"], dtype=np.int64)
        lwork = np.zeros(caps["orders"], dtype=np.int64)  # ids of the strategy's working orders
        cnt = np.zeros(C_NF, dtype=np.int64)
        cnt[C_NEXT_ARRIVAL] = cnt[C_NEXT_RESP] = INT64_MAX
        cnt[C_LAST_XTS] = np.iinfo(np.int64).min
        cnt[C_NEXT_SAMPLE_T] = np.iinfo(np.int64).min  # the first event is sampled
        req = np.zeros(strat.max_requests, dtype=REQUEST_DTYPE)
        resp = np.zeros(caps["resp"], dtype=RESPONSE_DTYPE)
        rec_oe = np.zeros(caps["oe"], dtype=ORDER_EVENT_DTYPE)
        rec_fill = np.zeros(caps["fills"], dtype=FILL_DTYPE)
        rec_eq = np.zeros(caps["eq"], dtype=EQUITY_DTYPE)
        rec_risk = np.zeros(caps["risk"], dtype=RISK_EVENT_DTYPE)
        state = strat.state.copy()
        if self.risk is None:
            risk_module, rules = "tickguard.engine.gate", np.zeros((0, 1))
            rstate, ks = np.zeros(1), np.zeros(G_NF)
        else:
            risk_module, rules = self.risk.module, np.ascontiguousarray(self.risk.rules, dtype=np.float64)
            # new_state makes fresh arrays (the protocol above): copied only if not float64, C and
            # writable. A copy of the default rulebook's 4.9 MB of rings cost as much as making them
            rstate, ks = (np.require(a, dtype=np.float64, requirements=["C", "W"])
                          for a in self.risk.new_state(n_inst))
        kreq = np.zeros(caps["orders"] + n_inst, dtype=REQUEST_DTYPE)
        blank = np.zeros(1, dtype=EVENT_DTYPE)
        book = np.zeros((n_inst, 2, self.config.book_levels, B_NF))
        book_meta = np.zeros((n_inst, BM_NF), dtype=np.int64)
        deferred = np.full(n_inst, -1, dtype=np.int64)  # the loop's scratch: -1 between calls
        width = 0 if strat.aux is None else strat.aux.shape[1]
        aux_blank = np.full(width, np.nan)
        tl = time.perf_counter()
        # imported here, not at the top: gate.py's explicit-signature hook compiles on import, and
        # every kernel's compile belongs in the compile timing (a cold one, from an empty cache)
        from .gate import marked_rows_nb

        # the reader thread's id, order and kind check, compiled in the timed part
        _scan_rows_nb(np.zeros(1, dtype=EVENT_DTYPE), np.int64(0))
        # a monitor to wake: the reader lists each chunk's rows that may wake it by their content
        # (global row numbers, ascending), for the loop (run_chunk_nb's marks)
        watch = rules.shape[0] > 0
        if watch:
            marked_rows_nb(np.zeros(1, dtype=EVENT_DTYPE))
        mark_runs: deque[np.ndarray] = deque()
        loop_import_s = time.perf_counter() - tl

        data_hash = xxhash.xxh3_128()
        carry: np.ndarray | None = None
        join = _Joiner()
        compile_s = loop_import_s  # and each build of the loop, when it is first needed (feed)
        t0 = time.perf_counter()
        run_s = 0.0
        known = ~np.isnan(dense["tick_size"])  # index: instrument id
        rows_read = 0
        last_ts = int(np.iinfo(np.int64).min)

        # Two builds of the loop (codegen.compile_loop): without the L2 book's upkeep while the
        # data has brought no book row, which saves ~0.9 s of a cold compile on L1 data, and with
        # it from the first chunk that brings one (or never, with book_levels 0, which ignores
        # them). Both run on the same state: the book is empty until a book row. The reader
        # notes, per chunk in order, whether it holds one
        keep_book = self.config.book_levels > 0
        book_chunks: deque[bool] = deque()
        loops: dict[bool, Any] = {}
        l2 = False

        def hash_chunk(chunk: np.ndarray) -> None:  # runs in the reader thread
            nonlocal rows_read, last_ts
            book_chunks.append(_check_chunk(chunk, known, rows_read, last_ts, table))
            if len(chunk):
                last_ts = int(chunk["ts_local"][-1])
            if watch:
                marked = marked_rows_nb(chunk)
                if len(marked):
                    mark_runs.append(marked + rows_read)
            rows_read += len(chunk)
            data_hash.update(_bytes(chunk))

        buffers = {"orders": orders, "lorders": lorders, "lwork": lwork, "open_idx": open_idx,
                   "kreq": kreq, "resp": resp, "rec_oe": rec_oe, "rec_fill": rec_fill, "rec_eq": rec_eq,
                   "rec_risk": rec_risk}
        grows = 0
        def marks_for(g0: int, n: int) -> np.ndarray:
            """The marked rows among events g0 .. g0 + n - 1 (all read by now), as indices into
            them, then n."""
            while mark_runs and mark_runs[0][-1] < g0:  # behind the loop for good
                mark_runs.popleft()
            parts = []
            for run in mark_runs:
                if run[0] >= g0 + n:
                    break
                parts.append(run[(run >= g0) & (run < g0 + n)] - g0)
            parts.append(np.array([n], dtype=np.int64))
            return np.concatenate(parts)

        def feed(ev: np.ndarray, final: bool) -> np.ndarray:
            """Run the loop over ``ev`` (growing buffers as it asks); returns the unconsumed tail."""
            nonlocal compile_s, run_s, grows
            while True:  # once, plus once per buffer growth
                g0 = int(cnt[C_EVENTS_DONE])
                if strat.aux is None:
                    aux = np.zeros((len(ev), 0))
                else:
                    aux = strat.aux[g0 : g0 + len(ev)]
                    if len(aux) != len(ev):
                        raise StrategyError(f"strategy {strat.name!r}: aux has {len(strat.aux)} rows "
                                            "but the data has more events")
                b = buffers
                args = (blank, mkt_l, mkt_x, pf, pos_local, acct, b["orders"], b["lorders"],
                        b["lwork"], b["open_idx"], cnt, req, b["resp"], cfg, lat, trace_ts, trace_lat,
                        tick, lot, mult, b["rec_oe"], b["rec_fill"], b["rec_eq"], b["rec_risk"], strat.params,
                        state, aux, aux_blank, rules, rstate, ks, b["kreq"], book, book_meta,
                        deferred, marks_for(g0, len(ev)))
                loop = loops.get(l2)
                if loop is None:  # compile (or load from cache) on an empty slice of the same type
                    tc = time.perf_counter()
                    # importing the generated loop compiles its explicit-signature kernels
                    loop = loops[l2] = compile_loop(strat.on_event, risk_module, l2=l2,
                                                    sections=self.sections, code_copy=self.code_copy)
                    # (args[26] is aux; the last, the marks: none but the end, 0)
                    loop(ev[:0], False, *args[:26], aux[:0], *args[27:-1], np.zeros(1, dtype=np.int64))
                    compile_s += time.perf_counter() - tc
                tr = time.perf_counter()
                try:
                    consumed = loop(ev, final, *args)
                except Exception as exc:  # the engine's kernels never raise: a strategy callback did
                    self._callback_raised(cnt, exc, ev, g0)
                run_s += time.perf_counter() - tr
                status = int(cnt[C_STATUS])
                if status == KERNEL_OVERFLOW:  # the room check's worst case was not enough
                    raise _Overflow
                if status == KERNEL_STRATEGY_ERROR:
                    self._bad_request_count(cnt)
                if status == KERNEL_RUNAWAY:
                    self._runaway(cnt, g0)
                cnt[C_XCURSOR] -= consumed
                ev = ev[consumed:]
                if status != KERNEL_NEED_SPACE:
                    if status != KERNEL_NEED_MORE and len(ev):
                        raise RuntimeError(f"engine stopped early with status {status}")  # a bug
                    return ev
                _grow(buffers, cnt, n_inst, len(req), book.shape[2])  # keeps the records
                grows += 1

        pool = BufferPool(EVENT_DTYPE)  # the Parquet reader's chunks, reused (prefetch.py)
        before: np.ndarray | None = None  # the chunk before this one, read until its carry is joined
        try:
            for chunk, final in _with_last(prefetch(self._chunks(pool), on_item=hash_chunk)):
                # for good: one switch at most (the L1 build would run later chunks without book
                # rows as well, as the book's readers are in both builds; only its upkeep is not)
                l2 = l2 or (book_chunks.popleft() and keep_book)
                ev = chunk
                if carry is not None:
                    # The loop handed back a few rows (the exchange clock needed this chunk). Rather
                    # than copy the whole chunk behind them, run them with a short head of it: what
                    # is left over then is a suffix of that head, so the rest of the chunk goes on
                    # as a view (results never depend on where chunks end: tests/engine).
                    head = max(_BRIDGE_ROWS, 2 * len(carry))
                    if head < len(chunk):
                        tail = feed(join(carry, chunk[:head]), False)
                        ev = chunk[head - len(tail):] if len(tail) <= head else join(tail, chunk[head:])
                    else:
                        ev = join(carry, chunk)
                if before is not None:  # its rows left over (carry) were copied just above
                    pool.give(before)
                before = chunk
                tail = feed(ev, final)
                carry = tail if len(tail) else None
                if self.progress is not None:
                    self.progress(int(cnt[C_EVENTS_DONE]), time.perf_counter() - t0)
        except _Overflow:
            return None
        total_s = time.perf_counter() - t0 + loop_import_s  # total includes all of compile

        n_orders = int(cnt[C_N_ORDERS])
        # the record buffers become the result's arrays, shrunk in place (realloc, no copy): a
        # copy would briefly hold every record twice, the run's peak memory on long active runs.
        # refcheck=False is safe: other names hold these same array objects, never views of them
        out = {}
        for name, key, n in (("order_events", "rec_oe", cnt[C_N_OE]), ("fills", "rec_fill", cnt[C_N_FILLS]),
                             ("equity", "rec_eq", cnt[C_N_EQ]), ("risk_events", "rec_risk", cnt[C_N_RISK]),
                             ("orders", "orders", n_orders)):
            out[name] = buffers[key]
            out[name].resize(int(n), refcheck=False)
        n_events = int(cnt[C_EVENTS_DONE])
        h = hashlib.sha256()
        described = self.config.describe()
        described.pop("chunk_rows", None)  # how the data is streamed, not what the run does
        described.pop("max_requests_per_instant", None)  # a finished run never met it
        h.update(json.dumps(described, sort_keys=True, default=str).encode())
        if self.risk is not None:
            h.update(json.dumps(self.risk.describe(), sort_keys=True, default=str).encode())
        h.update(table.to_json().encode())
        h.update(strat.name.encode())
        h.update(strat.params.tobytes())
        h.update(strat.state.tobytes())
        if strat.aux is not None:
            h.update(xxhash.xxh3_128(_bytes(strat.aux)).digest())
        h.update(data_hash.digest())
        for name in ("order_events", "fills", "equity", "risk_events", "orders"):
            h.update(xxhash.xxh3_128(_bytes(out[name])).digest())
        timings = {"compile": compile_s, "run": run_s, "total": total_s, "buffer_grows": float(grows)}
        overflows = self.risk.ring_overflows(rstate) if hasattr(self.risk, "ring_overflows") else {}
        if overflows:
            listed = ", ".join(f"{rule!r} {n}" for rule, n in overflows.items())
            warnings.warn(TickguardWarning(
                f"risk rules dropped entries still inside their windows, their rings full ({listed}): "
                "they judged shorter windows than their rulebook rows say (counts, ratios and losses "
                "over fewer entries); raise their params.capacity (Result.risk_ring_overflows)"),
                stacklevel=3)
        return Result(**out, instruments=table, config=self.config, strategy_name=strat.name,
                      n_events=n_events, result_hash=h.hexdigest(), timings=timings, risk=self.risk,
                      sections=_sections(cnt, run_s) if self.sections else None,
                      risk_ring_overflows=overflows)


def _sections(cnt: np.ndarray, run_s: float) -> dict[str, float]:
    """The loop's sections in ns: its counter ticks scaled by the run's own wall time over the
    whole loop's ticks (the counter's rate, measured here, not assumed), and the calls counted."""
    loop_ticks = int(cnt[C_S_LOOP])
    ns_per_tick = run_s * 1e9 / loop_ticks if loop_ticks > 0 else 0.0
    out = {name: float(cnt[slot]) * ns_per_tick for name, slot in SECTION_SLOTS.items()}
    out["gate_calls"] = float(cnt[C_S_N_GATE])
    out["activity_calls"] = float(cnt[C_S_N_ACTIVITY])
    return out


def run(data: Any, strategy: NumbaStrategy | SignalStrategy, **kwargs: Any) -> Result:
    """``Backtest(data, strategy, **kwargs).run()``; ``kwargs`` are Backtest's keywords
    (``instruments``, ``config``, ``risk``, ``progress``, ``sections``, ``code_copy``)."""
    return Backtest(data, strategy, **kwargs).run()
