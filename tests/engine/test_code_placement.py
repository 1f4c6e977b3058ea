"""Where the per-order kernels sit in their pages (engine/internal.py, code_offset): each at its own
slot, so that their hot first lines do not share the instruction cache's sets."""

from __future__ import annotations

import platform
import sys

import pytest

from tickguard.benchmarks.engine import _engine_once, canonical_table, full_rulebook_gate, quote_workload
from tickguard.benchmarks.instructions import demangle_numba, jitted_symbols
from tickguard.engine.internal import SLOT_BYTES

# ._gate and ._activity: the loop's kernels that run the hooks (inlined there by LLVM, which
# carries the hook's slot, code_offset's module asm, into the kernel's module)
SLOTS = {"run_chunk_nb": 0, "_handle_requests": 1, "._gate": 2, "tickguard.engine.exchange._execute_nb": 3,
         "tickguard.engine.exchange._fill_nb": 4, "._activity": 5,
         "tickguard.risk.killswitch.monitor_activity_nb": 5, "tickguard.engine.latency.latency_nb": 6}


@pytest.mark.skipif(not (sys.platform.startswith("linux") and platform.machine() == "x86_64"),
                    reason="code placement is done on x86-64 Linux only")
def test_each_per_order_kernel_starts_at_its_own_slot_of_its_page() -> None:
    table = canonical_table()
    res = _engine_once(quote_workload(3_000), table, full_rulebook_gate(table))
    assert len(res.fills) > 5  # the per-order kernels ran, so they are loaded
    offsets: dict[str, set[int]] = {}
    for symbol, address in jitted_symbols().items():
        name = demangle_numba(symbol)
        for key in SLOTS:
            if name.endswith(key) and not name.startswith("cpython."):
                offsets.setdefault(key, set()).add(address % 4096)
    for key, slot in SLOTS.items():
        assert slot * SLOT_BYTES in offsets.get(key, set()), (key, sorted(offsets.get(key, ())))
