"""The generated loop's cache key: it must change whenever any code the loop inlines changes."""

from __future__ import annotations

import hashlib
import inspect
import os
from pathlib import Path

import numpy as np
import pytest
from numba import njit

from tickguard.engine import strategy as strategy_module
from tickguard.engine.codegen import _source, _sources_reached, compile_loop
from tickguard.strategies import ema_crossover as ema_module

GATE = "tickguard.engine.gate"  # the pass-through risk module


def test_key_covers_helpers_the_strategy_calls_in_other_modules():
    # ema_crossover_nb calls submit_market_nb, which lives in engine/strategy.py: an edit there
    # must reach the key, or numba would reuse a stale compiled loop.
    text = _sources_reached(ema_module.ema_crossover_nb.py_func)
    for module in (ema_module, strategy_module):
        assert hashlib.sha256(Path(inspect.getfile(module)).read_bytes()).hexdigest() in text


def test_a_source_is_read_again_when_its_size_or_its_time_changes(tmp_path):
    # compile_loop keys the loop on digests it remembers per file (not re-read on every run):
    # an edit must still reach the key, whether it keeps the file's size or its time.
    path = tmp_path / "helper.py"
    path.write_text("X = 1\n")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert _source(path) == ("X = 1\n", hashlib.sha256(b"X = 1\n").hexdigest())
    path.write_text("X = 2\n")  # same size, new time
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    assert _source(path) == ("X = 2\n", hashlib.sha256(b"X = 2\n").hexdigest())
    path.write_text("X = 30\n")  # new size, the old time
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    assert _source(path) == ("X = 30\n", hashlib.sha256(b"X = 30\n").hexdigest())


def test_strategy_defined_inside_a_function_is_refused_with_the_reason():
    @njit
    def local_strategy(reason, ev, order, now, mkt, pos, orders, n_orders, params, state, aux, req):
        return 0

    with pytest.raises(TypeError, match="top level of an importable module"):
        compile_loop(local_strategy, GATE)


def test_unmanaged_view_reads_and_writes_the_same_memory():
    from tickguard.engine.unmanaged import unmanaged

    @njit
    def twice_strided(a, out):
        v = unmanaged(a)  # a strided 2-D view must keep its shape and strides
        o = unmanaged(out)
        for r in range(v.shape[0]):
            for c in range(v.shape[1]):
                o[r, c] = 2.0 * v[r, c]
        return v.shape[0], v.shape[1]

    base = np.arange(24.0).reshape(4, 6)
    view = base[::2, 1::2]
    out = np.zeros(view.shape)
    assert twice_strided(view, out) == view.shape
    np.testing.assert_array_equal(out, 2.0 * view)


def test_generated_loop_inlines_the_strategy(tmp_path, monkeypatch):
    from tickguard.engine import codegen

    monkeypatch.setenv("TICKGUARD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(codegen, "_loaded", {})  # write the file again even if loaded already
    compile_loop(ema_module.ema_crossover_nb, GATE)
    (path,) = tmp_path.glob("_tickguard_loop_*.py")
    text = path.read_text()
    assert "from tickguard.strategies.ema_crossover import ema_crossover_nb as _strategy" in text
    assert 'on_event = _njit(inline="always")(_strategy)' in text
    # responses call a copy with no Python entry point, never cached under the user's own name,
    # with reference counting kept: a strategy may allocate (test_internal_njit.py)
    assert "on_response = _internal_njit(cache=False, _nrt=True)(_strategy)" in text


def test_pass_through_loop_compiles_no_kill_switch_code():
    # With the pass-through gate nothing can trip the kill switch, so its actions are left out of
    # the loop before typing (~1.4 s of a cold compile); with a rulebook they are compiled in.
    import sys

    from numba import config as numba_config

    from tickguard.benchmarks.engine import _engine_once, canonical_table, quote_workload
    from tickguard.risk import RiskGate

    if numba_config.DISABLE_JIT:
        pytest.skip("nothing compiles in the pure-Python twin")
    table = canonical_table()
    ev = quote_workload(2000)
    loops = {}
    for name, gate in (("pass", None), ("book", RiskGate.load(instruments=table))):
        _engine_once(ev, table, gate)
        loop = compile_loop(ema_module.ema_crossover_nb, gate.module if gate else GATE)
        loops[name] = sys.modules[loop.py_func.__module__]
    kernels = {name: sys.modules[mod._handle_requests.py_func.__module__] for name, mod in loops.items()}
    assert kernels["pass"] is not kernels["book"]  # one copy of loop_kernels.py per risk module
    assert loops["pass"]._RISK is False and loops["book"]._RISK is True
    assert kernels["pass"]._RISK is False and kernels["book"]._RISK is True
    for never_compiled in ("_kill_switch_actions", "_risk_on_event", "_transition", "_denied",
                           "_risk_record"):
        assert not getattr(kernels["pass"], never_compiled).signatures, never_compiled
        assert getattr(kernels["book"], never_compiled).py_func  # the same code, compiled lazily
    for eager in ("_risk_on_event", "_transition", "_denied", "_risk_record"):
        assert getattr(kernels["book"], eager).signatures, eager  # compiled (or loaded) with its signature


def test_loops_for_two_strategies_share_the_gates_kernels(tmp_path, monkeypatch):
    # a new strategy compiles only its loop: the kernels that depend on the gate alone (requests
    # through the gate, the kill switch, the equity clock) are one generated module per gate
    import sys

    from tickguard.engine import codegen
    from tickguard.engine.idle import idle_strategy_nb

    monkeypatch.setenv("TICKGUARD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(codegen, "_loaded", {})
    first = compile_loop(ema_module.ema_crossover_nb, GATE)
    second = compile_loop(idle_strategy_nb, GATE)
    mods = [sys.modules[loop.py_func.__module__] for loop in (first, second)]
    assert mods[0] is not mods[1]
    assert mods[0]._handle_requests is mods[1]._handle_requests
    assert mods[0]._sample_equity is mods[1]._sample_equity
    assert len(list(tmp_path.glob("_tickguard_kernels_*.py"))) == 1
    assert len(list(tmp_path.glob("_tickguard_loop_*.py"))) == 2


def test_hooks_that_allocate_nothing_are_called_without_reference_counting(monkeypatch):
    # A risk module that says its hooks allocate nothing (HOOKS_ALLOCATE = False) gets kernels
    # that call them without reference counting; one that does not say so keeps it (its hooks may
    # allocate: test_internal_njit.py runs such a module).
    import sys
    import types

    from tickguard.engine import codegen
    from tickguard.risk import inloop

    sources = {}

    def capture(prefix, source, deps, extra):
        sources[current] = source
        return types.SimpleNamespace(__name__="unused")

    monkeypatch.setattr(codegen, "_load", capture)
    silent = types.ModuleType("silent_hooks")  # the rulebook's hooks, without the flag
    for hook in codegen._RISK_HOOKS:
        setattr(silent, hook, getattr(inloop, hook))
    monkeypatch.setitem(sys.modules, "silent_hooks", silent)
    for current in ("tickguard.risk.inloop", "tickguard.benchmarks.noop_risk", "silent_hooks"):
        __import__(current)
        codegen._kernels_module(current, "", True)
    off = "_HOOKS_ALLOCATE = False  # @@HOOKS_ALLOCATE@@"
    assert off in sources["tickguard.risk.inloop"]
    assert off in sources["tickguard.benchmarks.noop_risk"]
    assert codegen._HOOKS_ALLOCATE_LINE in sources["silent_hooks"]
    assert 'if _RISK and _HOOKS_ALLOCATE else {}' in sources["silent_hooks"]


def test_each_kernel_of_a_fresh_loop_compiles_once(tmp_path, monkeypatch):
    # Numba types a variable first met as a plain literal (i = 0) as that literal, and compiles a
    # callee taking it twice: once for Literal[int](0), once for int64. The strategy's steps, with
    # the strategy inlined, were compiled twice that way (~1 s of every cold compile,
    # benchmarks/PERFORMANCE.md). A fresh loop and fresh kernels (the pass-through gate's: the
    # rulebook's take 20 s more to compile): every function of theirs compiles one signature
    # (record_order_event_nb, in exchange.py, takes rows of two record types on purpose and is not
    # among them).
    import sys

    from numba import config as numba_config
    from numba.core.registry import CPUDispatcher

    from tickguard.benchmarks.engine import _engine_once, canonical_table, quote_workload
    from tickguard.engine import codegen

    if numba_config.DISABLE_JIT:
        pytest.skip("nothing compiles in the pure-Python twin")
    monkeypatch.setenv("TICKGUARD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(codegen, "_loaded", {})
    table = canonical_table()
    _engine_once(quote_workload(1000), table)
    # (L1 quotes: the run built the loop without the L2 book, backtest.py)
    loop_module = sys.modules[compile_loop(ema_module.ema_crossover_nb, GATE, l2=False).py_func.__module__]
    modules = [loop_module, sys.modules[loop_module._handle_requests.py_func.__module__]]
    compiled = {f"{m.__name__}.{name}": len(obj.signatures) for m in modules
                for name, obj in vars(m).items()
                if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == m.__name__}
    assert compiled[f"{loop_module.__name__}._strategy_steps"] == 1  # compiled here, not loaded
    assert compiled[f"{loop_module._handle_requests.py_func.__module__}._idle_rows"] == 1
    assert {k: v for k, v in compiled.items() if v > 1} == {}


def test_a_thread_importing_a_module_another_is_still_making_waits_for_it(tmp_path, monkeypatch):
    # Dask workers in one process compile the same loop at once: the loop imports its kernels'
    # module, which the other thread had put in sys.modules before its code ran ("cannot import
    # name ..."). The slow module stands in for the kernels (their import compiles for seconds).
    import sys
    import threading
    import time

    from tickguard.engine import codegen

    monkeypatch.setenv("TICKGUARD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(codegen, "_loaded", {})
    slow = "import time\ntime.sleep(0.5)\nVALUE = 42\n"
    slow_name = codegen._module_name("_tickguard_test_slow_", slow, (), "")
    user = f"from {slow_name} import VALUE\n"
    got, errors = [], []

    def load(prefix, source):
        try:
            got.append(codegen._load(prefix, source, (), "").__name__)
        except Exception as exc:  # noqa: BLE001 (the assertion below names it)
            errors.append(exc)

    first = threading.Thread(target=load, args=("_tickguard_test_slow_", slow))
    first.start()
    while slow_name not in sys.modules and first.is_alive():  # the slow module is being made
        time.sleep(0.005)
    second = threading.Thread(target=load, args=("_tickguard_test_user_", user))
    second.start()
    first.join()
    second.join()
    try:
        assert errors == []
        assert got[0] == slow_name and sys.modules[got[1]].VALUE == 42
    finally:
        for name in got:
            sys.modules.pop(name, None)


def test_a_code_copy_is_the_same_loop_compiled_again_under_its_own_names(monkeypatch):
    # benchmarks/placement.py times copies of a build: the same records, other modules (so other
    # machine code), and the pass-through build's copy still carries no kill-switch code
    import sys

    from numba import config as numba_config

    from tickguard.benchmarks.engine import _engine_once, canonical_table, quote_workload
    from tickguard.engine import backtest

    if numba_config.DISABLE_JIT:
        pytest.skip("nothing compiles in the pure-Python twin")
    table = canonical_table()
    ev = quote_workload(2000)
    asked = []

    def recording(*args, **kwargs):
        asked.append(kwargs["code_copy"])
        return compile_loop(*args, **kwargs)

    monkeypatch.setattr(backtest, "compile_loop", recording)
    runs = [_engine_once(ev, table, None, code_copy=k) for k in (0, 1)]
    assert asked == [0, 1]  # Backtest builds the copy it was asked for
    assert runs[0].result_hash == runs[1].result_hash and len(runs[0].orders) > 0
    loops = [sys.modules[compile_loop(ema_module.ema_crossover_nb, GATE, code_copy=k).py_func.__module__]
             for k in (0, 1)]
    kernels = [sys.modules[mod._handle_requests.py_func.__module__] for mod in loops]
    assert loops[0] is not loops[1] and kernels[0] is not kernels[1]
    assert kernels[1]._RISK is False and loops[1]._RISK is False
    assert Path(kernels[1].__file__).read_text().endswith(
        "# code copy 1: this module compiled again under its own name (compile_loop)\n")
    assert f"from {kernels[1].__name__} import (" in Path(loops[1].__file__).read_text()


@pytest.mark.parametrize("bad", [-1, 1.0, True, "1"])
def test_a_code_copy_that_is_not_a_count_is_refused_by_name(bad):
    from tickguard.engine.backtest import Backtest
    from tickguard.strategies.ema_crossover import ema_crossover

    with pytest.raises(ValueError, match=r"code_copy must be an int >= 0 .* got " + repr(bad).replace(".", r"\.")):
        compile_loop(ema_module.ema_crossover_nb, GATE, code_copy=bad)
    with pytest.raises(ValueError, match=r"code_copy must be an int >= 0"):
        Backtest(np.zeros(0), ema_crossover(fast=5.0, slow=20.0, size=1), code_copy=bad)
