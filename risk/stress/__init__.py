"""tickguard.risk.stress: stress scenarios as transforms of event streams, and a historical library.

``apply(events, scenario, seed=...)`` runs a :class:`Scenario` (an ordered list of transforms) on a
copy of an event array; ``scenario_latency`` gives the engine latency config of its latency
spikes; ``load_scenario("covid_2020")`` reads a shipped (or your own) TOML scenario.
"""

from __future__ import annotations

from .core import Duration, Scenario, StressContext, TimePoint, Transform, apply, check_stream, scenario_latency
from .feed import FeedOutage, LatencySpike, StaleFeed, TradingHalt
from .library import SCENARIO_DIR, TRANSFORMS, list_scenarios, load_scenario, scenario_from_dict
from .transforms import FlashCrash, LiquidityDrought, PriceGap, SpreadWiden, VolScale

__all__ = [
    "Duration",
    "FeedOutage",
    "FlashCrash",
    "LatencySpike",
    "LiquidityDrought",
    "PriceGap",
    "SCENARIO_DIR",
    "Scenario",
    "SpreadWiden",
    "StaleFeed",
    "StressContext",
    "TRANSFORMS",
    "TimePoint",
    "TradingHalt",
    "Transform",
    "VolScale",
    "apply",
    "check_stream",
    "list_scenarios",
    "load_scenario",
    "scenario_from_dict",
    "scenario_latency",
]

# grids of engine runs on Dask, and reverse stress tests (appended: the lines above are the library's)
from .grid import GridResult, run_grid, run_stressed, stress_metrics  # noqa: E402
from .grid_config import GridSpec, grid_from_dict, load_grid  # noqa: E402
from .reverse import (  # noqa: E402
    DrawdownBeyond, KillSwitchFires, LossBeyond, ReverseResult, WorstCase, linear_worst_case, reverse_stress,
)

__all__ = sorted([
    *__all__, "DrawdownBeyond", "GridResult", "GridSpec", "KillSwitchFires", "LossBeyond", "ReverseResult",
    "WorstCase", "grid_from_dict", "linear_worst_case", "load_grid", "reverse_stress", "run_grid",
    "run_stressed", "stress_metrics",
])
