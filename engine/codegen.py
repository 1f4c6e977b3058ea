"""Specialise the event loop for one (strategy, risk gate) pair, with numba's on-disk cache intact.

Numba caches a function only when everything it calls is a module global: a loop that takes the
strategy as an argument (or closes over it) is recompiled in every process. So we write copies of
two templates into a cache folder and import them: ``loop_kernels.py`` with its marked lines
naming the gate (one copy per risk module, shared by every strategy's loop), and
``loop_template.py`` with its marked lines naming the strategy and that copy of the kernels. Each
file name carries a hash of its source, the engine modules it calls and the user code it reaches,
because numba's cache checks only the timestamp of the file a function lives in: a changed
dependency must produce a new file, not reuse stale code. For the strategy and the gate the hash
covers every file of every jitted function they reach.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

from numba import config as numba_config

__all__ = ["check_code_copy", "compile_loop", "load_generated", "loop_cache_dir"]

_ENGINE_DIR = Path(__file__).resolve().parent
_KERNEL_DEPENDENCIES = (
    "loop_kernels.py", "exchange.py", "latency.py", "layout.py", "market.py", "portfolio.py",
    "records.py", "rng.py", "gate.py", "unmanaged.py", "book.py", "nbtypes.py", "internal.py",
    "bundle.py", "minmax.py",
)
_DEPENDENCIES = ("loop_template.py", "idle.py", *_KERNEL_DEPENDENCIES)
_GATE_LINE = "import tickguard.engine.gate as risk  # @@GATE@@"
_RISK_LINE = "_RISK = True  # @@RISK@@"
_L2_LINE = "_L2 = True  # @@L2@@"
_HOOKS_ALLOCATE_LINE = "_HOOKS_ALLOCATE = True  # @@HOOKS_ALLOCATE@@"
_SECTIONS_LINE = "_SECTIONS = False  # @@SECTIONS@@: True in a build timing its sections (codegen.py)"
_KERNELS_LINE = "from tickguard.engine.loop_kernels import (  # @@KERNELS@@"
_PASS_THROUGH = "tickguard.engine.gate"
_RISK_HOOKS = ("pretrade_nb", "monitor_event_nb", "monitor_sample_nb", "monitor_activity_nb")
_STRATEGY_LINE = (
    "from tickguard.engine.idle import idle_strategy_nb as on_response  # @@STRATEGY@@\n"
    "on_event = on_response  # @@STRATEGY_INLINE@@"
)
_loaded: dict[str, ModuleType] = {}
# one generating thread at a time: a module sits in sys.modules before its code has run, and a
# second thread (Dask workers share a process) importing the loop would find its kernels' module
# there half made ("cannot import name ..."); compiling the same loop twice at once helps no one
_load_lock = threading.RLock()
# path -> ((mtime_ns, size, inode), text, sha256 hex digest): every run() re-derives the loop's
# key from these files, and reading and hashing them each time cost ~2 ms per call (a stress grid
# runs thousands of small cells). Re-read when the stat changes: numba's own cache trusts a
# source file's (mtime, size), so this memo is no weaker.
_sources: dict[str, tuple[tuple[int, int, int], str, str]] = {}


def loop_cache_dir() -> Path:
    """Where generated loops live: $TICKGUARD_CACHE_DIR, else beside numba's cache, else ~/.cache."""
    explicit = os.environ.get("TICKGUARD_CACHE_DIR")
    if explicit:
        return Path(explicit)
    numba_dir = os.environ.get("NUMBA_CACHE_DIR")
    if numba_dir:
        return Path(numba_dir) / "tickguard_loops"
    return Path.home() / ".cache" / "tickguard" / "loops"


def _import_path(fn: Any, what: str) -> tuple[str, str, str]:
    """(module, name, digests of the sources it reaches) of a jitted module-level function."""
    py = fn if numba_config.DISABLE_JIT else getattr(fn, "py_func", None)  # twin runs: plain Python
    if py is None:
        raise TypeError(
            f"{what} must be a numba-jitted function (decorate it with @njit(cache=True)), "
            f"got {type(fn).__name__}"
        )
    module, name = py.__module__, py.__qualname__
    if "<locals>" in name or "." in name or module == "__main__":
        raise TypeError(
            f"{what} {name!r} must be defined at the top level of an importable module "
            f"(got module {module!r}): the compiled loop imports it by name"
        )
    mod = sys.modules.get(module)
    if mod is None or getattr(mod, name, None) is not fn:
        raise TypeError(f"{what} {module}.{name} is not importable under that name")
    return module, name, _sources_reached(py)


def _sources_reached(py: Any) -> str:
    """Digests of the source of every file holding a jitted function ``py`` calls, directly or not
    (a file that cannot be read counts by its path).

    The compiled loop inlines all of them, so a change to any one must change the cache key.
    """
    seen: set[str] = set()
    files: list[str] = []
    todo = [py]
    while todo:
        func = todo.pop()
        try:
            path = inspect.getfile(func)
        except TypeError:
            continue
        if path not in seen:
            seen.add(path)
            files.append(path)
        for value in getattr(func, "__globals__", {}).values():
            callee = getattr(value, "py_func", None) if not numba_config.DISABLE_JIT else None
            if callee is not None and inspect.getfile(callee) not in seen:
                todo.append(callee)
    digests = []
    for path in sorted(files):
        try:
            digests.append(_source(path)[1])
        except OSError:
            digests.append(path)
    return "\n".join(digests)


def _source(path: Path | str) -> tuple[str, str]:
    """(text, SHA-256 hex digest) of a source file, read again only when its stat changes."""
    key = str(path)
    st = os.stat(key)
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    memo = _sources.get(key)
    if memo is None or memo[0] != stamp:
        text = Path(key).read_text()
        memo = (stamp, text, hashlib.sha256(text.encode()).hexdigest())
        _sources[key] = memo
    return memo[1], memo[2]


def _strategy_import(module: str, name: str) -> str:
    """Re-jit the strategy's Python function twice: inlined for market events, called for responses.

    Inlined at numba IR level (``inline="always"``), the per-event callback costs no call: an
    ordinary call marshals its dozen array arguments (about 20 ns per event, measured) and keeps
    LLVM from hoisting loads of ``params`` out of the loop. Responses are rare, so they keep a
    call, to a copy with no Python entry point (internal.py) that keeps reference counting (a
    strategy may allocate) and is not cached: numba would file it under the user's function,
    whose own cached build has an entry point.
    """
    return (
        f"from {module} import {name} as _strategy\n"
        "from numba import njit as _njit\n"
        "from tickguard.engine.internal import internal_njit as _internal_njit\n"
        "_strategy = getattr(_strategy, \"py_func\", _strategy)\n"
        "on_event = _njit(inline=\"always\")(_strategy)\n"
        "on_response = _internal_njit(cache=False, _nrt=True)(_strategy)"
    )


def _risk_module(module: ModuleType | str) -> tuple[str, str]:
    """(importable name, digests of the sources reached) of a risk module holding the four hooks
    (see gate.py)."""
    mod = importlib.import_module(module) if isinstance(module, str) else module
    name = mod.__name__
    if name == "__main__" or sys.modules.get(name) is not mod:
        raise TypeError(f"risk module {name!r} must be importable by name: the compiled loop imports it")
    texts = []
    for hook in _RISK_HOOKS:
        fn = getattr(mod, hook, None)
        if fn is None:
            raise TypeError(f"risk module {name!r} has no {hook}; see tickguard.engine.gate for the four hooks")
        texts.append(_import_path(fn, f"risk hook {name}.{hook}")[2])
    return name, "\n".join(texts)


def compile_loop(strategy_fn: Any, risk_module: ModuleType | str = "tickguard.engine.gate",
                 l2: bool = True, sections: bool = False, code_copy: int = 0) -> Any:
    """Return ``run_chunk_nb`` specialised for ``strategy_fn`` and the risk hooks of ``risk_module``.

    ``l2=False`` builds a loop whose exchange keeps no L2 book: it drops the book's upkeep, ~0.9 s
    of a ~10 s cold compile (benchmarks/PERFORMANCE.md), and must only see rows without
    ``KIND_DEPTH``/``KIND_SNAPSHOT`` (or run with ``book_levels`` 0, which ignores them). Backtest
    picks it while the data has brought no book row (backtest.py).

    ``sections=True`` builds a loop that also times its sections with the CPU's time-stamp counter
    (``cnt[C_S_*]``, engine/layout.py; x86-64 only, see internal.py's ``cycles``): a build of its
    own, slower by its counter reads (70-130 ns per order on the canonical workload); the default
    build has none of that code.

    ``code_copy=k`` (k >= 1) compiles the same loop and kernels again, as copy k: the kernels'
    source differs by a comment line only, and the loop's by the kernels' name it imports, so they
    get modules, cache files and machine code of their own, at other addresses. Where a build's
    code sits moves the canonical run by up to ~4 %
    (benchmarks/PERFORMANCE.md, 5 December): benchmarks/placement.py averages over copies."""
    check_code_copy(code_copy)
    s_mod, s_name, s_src = _import_path(strategy_fn, "strategy callback")
    g_mod, g_src = _risk_module(risk_module)
    kernels = _kernels_module(g_mod, g_src, l2, sections, code_copy)
    template = _source(_ENGINE_DIR / "loop_template.py")[0]
    if _STRATEGY_LINE not in template or _KERNELS_LINE not in template:
        raise RuntimeError("loop_template.py lost its @@STRATEGY@@/@@KERNELS@@ marker lines")
    source = template.replace(_STRATEGY_LINE, _strategy_import(s_mod, s_name)).replace(
        _KERNELS_LINE, f"from {kernels} import (  # @@KERNELS@@"
    )
    # the kernels' module name carries their key (a copy's too), so this key covers them through
    # the source
    return _load("_tickguard_loop_", source, _DEPENDENCIES, s_src).run_chunk_nb


def check_code_copy(code_copy: Any) -> int:
    """``code_copy`` if it is an int >= 0 (0: the loop's usual build, k: its k-th copy), else a
    ValueError naming it."""
    if isinstance(code_copy, bool) or not isinstance(code_copy, int) or code_copy < 0:
        raise ValueError(f"code_copy must be an int >= 0 (0: the loop's usual build, k: its k-th "
                         f"copy), got {code_copy!r}")
    return code_copy


def _as_copy(source: str, code_copy: int) -> str:
    """``source`` as its copy ``code_copy`` (0: itself): the same code under another hash."""
    if code_copy == 0:
        return source
    return source + f"\n# code copy {code_copy}: this module compiled again under its own name (compile_loop)\n"


def _kernels_module(g_mod: str, g_src: str, l2: bool, sections: bool = False, code_copy: int = 0) -> str:
    """The name of the generated, imported copy of loop_kernels.py for the risk module ``g_mod``
    (with the book's upkeep if ``l2``): one per risk module and book setting, so loops for other
    strategies share its compiled kernels; ``sections``: a build that times its sections;
    ``code_copy``: see compile_loop."""
    template = _source(_ENGINE_DIR / "loop_kernels.py")[0]
    if (_GATE_LINE not in template or _RISK_LINE not in template or _HOOKS_ALLOCATE_LINE not in template
            or _L2_LINE not in template or _SECTIONS_LINE not in template):
        raise RuntimeError("loop_kernels.py lost its @@GATE@@/@@RISK@@/@@HOOKS_ALLOCATE@@/@@L2@@/@@SECTIONS@@ "
                           "marker lines")
    source = template.replace(_GATE_LINE, f"import {g_mod} as risk")
    if not l2:
        source = source.replace(_L2_LINE, "_L2 = False  # @@L2@@")
    if sections:
        source = source.replace(_SECTIONS_LINE, "_SECTIONS = True  # @@SECTIONS@@")
    if g_mod == _PASS_THROUGH:  # its hooks never trip: the loop carries no kill-switch code
        source = source.replace(_RISK_LINE, "_RISK = False  # @@RISK@@")
    if getattr(importlib.import_module(g_mod), "HOOKS_ALLOCATE", True) is False:
        source = source.replace(_HOOKS_ALLOCATE_LINE, "_HOOKS_ALLOCATE = False  # @@HOOKS_ALLOCATE@@")
    return _load("_tickguard_kernels_", _as_copy(source, code_copy), _KERNEL_DEPENDENCIES, g_src).__name__


def load_generated(prefix: str, source: str, engine_deps: tuple[str, ...],
                   other_files: tuple[Path, ...]) -> ModuleType:
    """Import ``source``, written to the cache folder under a name keyed by it, the engine's modules
    ``engine_deps`` and ``other_files`` (the sources its code reaches: a change to any of them
    must give a new file, as numba's cache checks only the generated file's stamp). For modules
    generated outside the engine (risk/gate_codegen.py); imported once per process."""
    extra = "\n".join(_source(path)[1] for path in other_files)
    return _load(prefix, source, engine_deps, extra)


def _load(prefix: str, source: str, deps: tuple[str, ...], extra: str) -> ModuleType:
    """Write ``source`` to the cache folder under a name keyed by it, the engine's modules ``deps``
    and ``extra`` (digests of the user code it reaches), and import it (once per process)."""
    mod_name = _module_name(prefix, source, deps, extra)
    with _load_lock:
        if mod_name not in _loaded:
            _loaded[mod_name] = _write_and_import(mod_name, source)
        return _loaded[mod_name]


def _module_name(prefix: str, source: str, deps: tuple[str, ...], extra: str) -> str:
    digest = hashlib.sha256(source.encode())
    for dep in deps:
        digest.update(_source(_ENGINE_DIR / dep)[1].encode())
    digest.update(extra.encode())
    return f"{prefix}{digest.hexdigest()[:20]}"


def _write_and_import(mod_name: str, source: str) -> ModuleType:
    folder = loop_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{mod_name}.py"
    if not path.exists():  # never rewrite: a new mtime would void numba's cache of it
        tmp = path.with_name(f"{path.name}.{os.getpid()}.partial")
        tmp.write_text(source)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import the generated module {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[mod_name]  # half made: the next call starts again
        raise
    return module
