"""Named historical stress scenarios, shipped as TOML files, and the loader for your own.

A scenario file (see ``scenarios/*.toml``)::

    name = "my_scenario"
    description = "what it represents"
    sources = ["where each calibrated number comes from"]

    [[transforms]]
    transform = "flash_crash"      # a name from TRANSFORMS
    start = "77.4%"                # time points: "+30min", "-10min", "40%" of the session
    pct = -0.0919                  # parameters as in the transform's dataclass
    fall = "3.85%"                 # durations: "20min", "90s", "5%" of the session
    recover = "5.13%"

Times relative to the data (``"+30min"``) or as a share of the session (``"40%"``) make a scenario
apply to any day. An unknown key, transform or parameter is an error with a "did you mean".
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from .core import Scenario, Transform
from .feed import FeedOutage, LatencySpike, StaleFeed, TradingHalt
from .transforms import FlashCrash, LiquidityDrought, PriceGap, SpreadWiden, VolScale

__all__ = ["SCENARIO_DIR", "TRANSFORMS", "list_scenarios", "load_scenario", "scenario_from_dict"]

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
#: Transform name (as written in TOML) -> class.
TRANSFORMS: dict[str, type[Transform]] = {
    cls.name: cls
    for cls in (PriceGap, FlashCrash, VolScale, SpreadWiden, LiquidityDrought,
                FeedOutage, StaleFeed, TradingHalt, LatencySpike)
}
_TOP_KEYS = ("name", "description", "sources", "transforms")


def _did_you_mean(word: str, known: list[str]) -> str:
    hit = difflib.get_close_matches(word, known, n=1, cutoff=0.5)
    return f" Did you mean {hit[0]!r}?" if hit else ""


def list_scenarios() -> list[str]:
    """Names of the shipped scenarios, sorted."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def scenario_from_dict(data: dict[str, Any], where: str = "scenario") -> Scenario:
    """A :class:`Scenario` from parsed TOML; ``where`` names the source in error messages."""
    if not isinstance(data, dict):
        raise TypeError(f"{where}: expected a table of scenario keys, got {type(data).__name__}")
    for key in data:
        if key not in _TOP_KEYS:
            raise ValueError(f"{where}: unknown key {key!r}; a scenario has {list(_TOP_KEYS)}."
                             + _did_you_mean(key, list(_TOP_KEYS)))
    name, desc, sources = data.get("name"), data.get("description", ""), data.get("sources", [])
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: 'name' must be a non-empty string, got {name!r}")
    if not isinstance(desc, str):
        raise ValueError(f"{where}: 'description' must be a string, got {type(desc).__name__}")
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise ValueError(f"{where}: 'sources' must be a list of strings, got {sources!r}")
    items = data.get("transforms")
    if not isinstance(items, list) or not items:
        raise ValueError(f"{where}: needs at least one [[transforms]] table (got {items!r})")
    return Scenario(tuple(_transform(item, f"{where}: transforms[{i}]") for i, item in enumerate(items)),
                    name, desc, tuple(sources))


def _transform(item: Any, where: str) -> Transform:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected a table, got {item!r}")
    params = dict(item)
    kind = params.pop("transform", None)
    if kind not in TRANSFORMS:
        known = sorted(TRANSFORMS)
        hint = _did_you_mean(kind, known) if isinstance(kind, str) else ""
        raise ValueError(f"{where}: unknown transform {kind!r}; known: {known}.{hint}"
                         + ("" if kind is not None else " Write transform = \"flash_crash\" (for example)."))
    cls = TRANSFORMS[kind]
    allowed = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    for key in params:
        if key not in allowed:
            raise ValueError(f"{where} ({kind}): unknown parameter {key!r}; {kind} takes {allowed}."
                             + _did_you_mean(key, allowed))
    required = [f.name for f in fields(cls)  # type: ignore[arg-type]
                if f.default is MISSING and f.default_factory is MISSING]
    missing = [k for k in required if k not in params]
    if missing:
        raise ValueError(f"{where} ({kind}): missing parameter(s) {missing}; {kind} takes {allowed}")
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where} ({kind}): {exc}") from None


def load_scenario(name_or_path: str | os.PathLike[str]) -> Scenario:
    """A shipped scenario by name (see :func:`list_scenarios`), or a TOML file by path."""
    path = Path(name_or_path)
    is_path = isinstance(name_or_path, os.PathLike) or path.suffix == ".toml" or len(path.parts) > 1
    if not is_path:
        names = list_scenarios()
        if str(name_or_path) not in names:
            raise ValueError(f"unknown scenario {str(name_or_path)!r}; shipped: {names}."
                             + _did_you_mean(str(name_or_path), names)
                             + " Or pass the path of your own .toml file")
        path = SCENARIO_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise FileNotFoundError(f"scenario file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    return scenario_from_dict(data, str(path))
