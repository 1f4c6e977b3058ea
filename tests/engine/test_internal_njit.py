"""internal_njit: kernels compiled with no entry point for Python callers (see engine/internal.py)."""

from __future__ import annotations

import numpy as np
import pytest
from numba import config as numba_config
from numba import njit
from numba import types as _t

from tickguard.data.schema import KIND_QUOTE, Instrument, InstrumentTable, empty_events
from tickguard.engine import book, exchange, latency
from tickguard.engine.backtest import run
from tickguard.engine.config import EngineConfig, Latency, LatencyConfig
from tickguard.engine.internal import internal_njit, not_inlined
from tickguard.engine.strategy import NumbaStrategy, submit_market_nb

pytestmark = pytest.mark.skipif(numba_config.DISABLE_JIT, reason="nothing compiles in the twin")


@internal_njit
def _twice(x):
    return 2.0 * x


@internal_njit(_t.float64(_t.float64))
def _thrice(x):
    return 3.0 * x


@njit
def _caller(x):
    return _twice(x) + _thrice(x)


def _no_entry_points(dispatcher):
    opts = dispatcher.targetoptions
    return bool(opts.get("no_cpython_wrapper")) and bool(opts.get("no_cfunc_wrapper"))


def test_compiled_without_entry_points_and_jitted_callers_link_it():
    assert _caller(2.0) == 10.0
    assert _no_entry_points(_twice) and _no_entry_points(_thrice)
    assert _twice.signatures and _thrice.signatures  # compiled (or loaded from the cache)
    assert not _no_entry_points(_caller)  # an ordinary njit function keeps its wrapper


def test_a_python_call_runs_a_separate_copy_with_an_entry_point():
    # numba would jump through a null entry point (a segfault): the dispatcher compiles, once, an
    # uncached copy that has one, and the result is the same code's
    assert _thrice(1.5) == 4.5
    assert _twice(np.float64(4.0)) == 8.0
    entry = _twice.__dict__["_python_entry"]
    assert _twice(1.0) == 2.0 and _twice.__dict__["_python_entry"] is entry
    assert not _no_entry_points(entry) and entry.signatures


def test_the_engines_and_the_rulebooks_kernels_are_internal():
    # the cold-compile saving depends on these staying wrapper-less (benchmarks/PERFORMANCE.md, "Compile")
    from tickguard.risk import killswitch, pretrade

    for kernel in (exchange._execute_nb, exchange._fill_nb, exchange.emit_nb, exchange.on_market_nb,
                   exchange.process_arrivals_nb, book.apply_depth_nb, latency.latency_nb,
                   pretrade.pretrade_nb, killswitch.monitor_event_nb, killswitch.monitor_sample_nb,
                   killswitch.monitor_activity_nb):
        assert type(kernel).__name__ == "_InternalDispatcher" and _no_entry_points(kernel), kernel


@njit(cache=True)
def allocating_round_trip_nb(reason, ev, order, now, mkt, pos, orders, n_orders, params, state, aux, req):
    """Buy 1, then sell it when the fill is reported; both callbacks allocate a scratch array (the
    engine's kernels are compiled without reference counting, a strategy's code never is)."""
    scratch = np.empty(3)
    scratch[:] = now
    state[reason] += scratch.sum() / 3.0
    if reason == 0 and n_orders == 0:
        return submit_market_nb(req, 0, 0, 1.0)
    if reason == 1 and n_orders == 1 and pos[0] == 1.0:
        return submit_market_nb(req, 0, 0, -1.0)
    return 0


def test_a_strategy_that_allocates_still_compiles_and_runs():
    ev = empty_events(3)
    for i, t in enumerate((1000, 2000, 50_000)):
        ev[i]["ts_exch"] = ev[i]["ts_local"] = t
        ev[i]["kind"] = KIND_QUOTE
        ev[i]["bid_px"], ev[i]["ask_px"] = 99.99, 100.00
        ev[i]["bid_sz"] = ev[i]["ask_sz"] = 10.0
    strat = NumbaStrategy(allocating_round_trip_nb, state=np.zeros(2), max_requests=1)
    lat = LatencyConfig(submit=Latency(entry_ns=100, response_ns=100))
    r = run(ev, strat, instruments=InstrumentTable([Instrument(0, "X", tick_size=0.01)]),
            config=EngineConfig(latency=lat))
    # the buy sent at 1000 fills at 1100 (reported 1200); the sell sent from that response
    # callback fills at 1300 (reported 1400): both callbacks ran, allocating each time
    got = [(int(f["ts_local"]), float(f["price"]), float(f["qty"]) * f["side"]) for f in r.fills]
    assert got == [(1200, 100.00, 1.0), (1400, 99.99, -1.0)]


_ALLOCATING_HOOKS = '''
"""The shipped rulebook hooks, each allocating a scratch array first."""
import numpy as np
from numba import njit
from tickguard.risk.killswitch import monitor_activity_nb as _activity
from tickguard.risk.killswitch import monitor_event_nb as _event
from tickguard.risk.killswitch import monitor_sample_nb as _sample
from tickguard.risk.pretrade import pretrade_nb as _pretrade


@njit(cache=False)
def pretrade_nb(req, now, mkt, pos, orders, working, mult, rules, rstate, ks):
    return _pretrade(req, now, mkt, pos, orders, np.arange(working.shape[0]) * 0 + working, mult,
                     rules, rstate, ks)


@njit(cache=False)
def monitor_event_nb(now, kind, inst, side, level, mkt, rules, rstate, ks):
    return _event(now, kind, inst, side, level, mkt, rules, rstate, ks) + int(np.zeros(2).sum())


@njit(cache=False)
def monitor_sample_nb(now, equity, pnl, rules, rstate, ks):
    return _sample(now, equity, pnl, rules, rstate, ks) + int(np.zeros(2).sum())


@njit(cache=False)
def monitor_activity_nb(now, what, inst, rules, rstate, ks):
    return _activity(now, what, inst, rules, rstate, ks) + int(np.zeros(2).sum())
'''


def test_risk_hooks_that_allocate_compile_and_decide_as_the_shipped_ones(tmp_path, monkeypatch):
    # the kernels calling the hooks keep reference counting in a kill-switch loop (loop_kernels's
    # _CALLS_HOOKS): without it, numba refuses the hooks' allocations when it types the loop
    from tickguard.benchmarks.engine import canonical_table, quote_workload
    from tickguard.risk import RiskGate
    from tickguard.strategies.ema_crossover import ema_crossover

    (tmp_path / "allocating_hooks.py").write_text(_ALLOCATING_HOOKS)
    monkeypatch.syspath_prepend(str(tmp_path))

    class AllocatingGate(RiskGate):
        module = "allocating_hooks"

    table = canonical_table()
    rulebook = RiskGate.load(instruments=table).rulebook
    ev = quote_workload(20_000)
    runs = [run(ev, ema_crossover(fast=20, slow=80, size=1), instruments=table, risk=gate)
            for gate in (RiskGate(rulebook), AllocatingGate(rulebook))]
    assert len(runs[0].fills) > 10
    for records in ("fills", "orders", "risk_events"):
        assert getattr(runs[0], records).tobytes() == getattr(runs[1], records).tobytes(), records


@njit
def _kept_apart(x):
    not_inlined()
    return x + 1.0


@njit
def _plain(x):
    return x + 1.0


@njit
def _calls_both(x):
    return _kept_apart(x) + _plain(x)


def _own_body(dispatcher, name):
    """The machine code of ``dispatcher``'s own body (not its Python wrapper): from its label to
    the next ``.size``."""
    lines = dispatcher.inspect_asm(dispatcher.signatures[0]).splitlines()
    start = next(k for k, line in enumerate(lines) if name in line and line.endswith(":")
                 and "cpython" not in line)
    return lines[start + 1 : next(k for k in range(start, len(lines)) if ".size" in lines[k])]


def test_a_function_marked_not_inlined_stays_a_call_in_its_callers_optimized_code():
    # LLVM inlines a small callee compiled with its caller; the marked one must stay a call
    assert _calls_both(1.0) == 4.0
    ir = _kept_apart.inspect_llvm(_kept_apart.signatures[0])
    assert "noinline" in ir
    body = _own_body(_calls_both, "_calls_both")
    assert any("_kept_apart" in line for line in body), body  # called (numba calls through a register)
    assert not any("_plain" in line for line in body), body  # the unmarked one was inlined


@internal_njit
def _kernel_apart(x):
    not_inlined()
    return 2.0 * x


@njit(forceinline=True)
def _spliced(x):
    return _kernel_apart(x) + 1.0


@njit
def _calls_spliced(x):
    return _spliced(x) + 1.0


def test_an_internal_kernel_called_by_a_forceinlined_function_stays_apart():
    # numba hands forceinline down to callees that do not set it: an internal kernel kept apart
    # would get alwaysinline beside its noinline, which LLVM refuses ("Can't have alwaysinline
    # and noinline"), unless internal_njit sets it (engine/internal.py, "Inlining")
    assert _calls_spliced(1.0) == 4.0
    assert "alwaysinline" in _spliced.inspect_llvm(_spliced.signatures[0])
    body = _own_body(_calls_spliced, "_calls_spliced")
    assert any("_kernel_apart" in line for line in body), body  # still a call
    assert not any("_spliced" in line and "_calls_spliced" not in line for line in body), body  # inlined


_IMPORT_PROBE = """
from numba.core import event

compiled = []


class _Seen(event.Listener):
    def on_start(self, ev):
        pass

    def on_end(self, ev):
        func = ev.data["dispatcher"].py_func
        compiled.append(f"{func.__module__}.{func.__qualname__}")


event.register("numba:compile", _Seen())
import tickguard.engine, tickguard.engine.backtest, tickguard.engine.config  # noqa: E401,F401
import tickguard.benchmarks.engine  # noqa: F401  (its cold-compile children import it first)
print(sorted({name for name in compiled if name.startswith("tickguard.engine.")}))
"""


def test_importing_the_engine_compiles_no_kernel(tmp_path):
    """Backtest times the compile from the loop's import on (Result.timings["compile"], the
    benchmark's cold compile): a kernel compiled when the engine's modules are imported would be
    left out of that figure. An empty numba cache, a fresh interpreter: the engine's front door
    (and the benchmark module the cold-compile children import before their timer) compiles none
    (latency_nb did, through config.py's import of the latency modes, until they moved to
    layout.py; gate.py's activity hook through backtest.py's import of marked_rows_nb)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "TICKGUARD_CACHE_DIR": str(tmp_path / "loops")}
    out = subprocess.run([sys.executable, "-c", _IMPORT_PROBE], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
