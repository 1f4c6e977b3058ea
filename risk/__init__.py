"""tickguard.risk: the rulebook-driven gate and kill switch in the event loop (:mod:`.inloop`,
:mod:`.rulebook`, :mod:`.pretrade`, :mod:`.killswitch`), offline VaR/ES (:mod:`.var`) and their
backtests (:mod:`.var_backtests`).

Names are imported lazily (PEP 562): the in-loop risk kernels live in this package too, and
importing them must not pay for scipy, pandas and arch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    ".var": (
        "cornish_fisher_es", "cornish_fisher_var", "ewma_es", "ewma_var", "ewma_variance",
        "fhs_es", "fhs_var", "historical_es", "historical_var", "monte_carlo_es",
        "monte_carlo_var", "parametric_es", "parametric_var", "rolling_es", "rolling_var",
    ),
    ".inloop": ("DEFAULT_RULEBOOK", "RiskGate"),
    ".rulebook": ("Rulebook", "RulebookError", "load_rulebook"),
    ".var_backtests": (
        "LRTestResult", "TrafficLightResult", "Z2Result", "christoffersen_cc",
        "christoffersen_independence", "es_backtest_z2", "kupiec_pof", "traffic_light",
        "var_exceptions",
    ),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
