"""Stress grids described in TOML: scenarios x strategies x parameter sets x data, validated first.

A grid file (``tickguard stress GRID.toml``)::

    seed = 7                          # the stress transforms' RNG (the engine seed is [engine] seed)
    rulebook = "default"              # or a rulebook TOML (relative to this file); omit: no risk gate
    specialize = true                 # optional: the pre-trade gate written for the rulebook's shape
                                      # (same results; one compile per shape, then every cell is faster)
    scenarios = ["baseline", "flash_crash_2010", "mine.toml"]   # library names, paths, "baseline"

    [data]                            # one source as in a run config, or [[data]] tables (one per item)
    sample = "synthetic_l1"           # or path = ..., synth = {...}, lobster = {...}
    max_events = 20000                # optional: keep the first events (cut at a batch boundary)
    label = "sample"                  # optional: the name in the results

    [[strategy]]
    name = "ema_crossover"
    params = [{ fast = 20, slow = 80 }, { fast = 50, slow = 200 }]   # a list of parameter sets, or
    # params = { fast = [20, 50], slow = 200 }   # a table: list values -> their cartesian product

    [[scenario]]                      # inline scenarios: the layout of a scenario file
    name = "wide_spreads"
    [[scenario.transforms]]
    transform = "spread_widen"
    start = "40%"
    end = "60%"
    k = 4.0

    [engine]                          # as in a run config (latency, fees, seed, ...)
    [output]
    dir = "runs/stress"               # relative to this file; --out overrides

"baseline" is the data unchanged. Every cell has a key: a hash of everything that decides its
run (data, scenario, strategy, parameters, engine, rulebook text, seed), so a changed grid never
reuses a stale result. Unknown keys are refused with the closest known one.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tickguard.data.schema import KIND_LAST_IN_BATCH
from tickguard.reports.run_config import (
    ConfigError, RunConfig, _check_keys, _data_spec, _engine_config, read_toml, rulebook_path, specialize_flag,
)

from .core import Scenario
from .library import list_scenarios, load_scenario, scenario_from_dict

__all__ = ["BASELINE", "Cell", "DataItem", "GridSpec", "grid_from_dict", "load_grid"]

#: The unstressed scenario.
BASELINE = Scenario((), name="baseline", description="the data unchanged")

_TOP = {"seed", "rulebook", "specialize", "scenarios", "scenario", "data", "strategy", "engine", "output"}
_DATA_EXTRA = {"max_events", "label"}
_STRATEGY_KEYS = {"name", "params"}


@dataclass(frozen=True)
class DataItem:
    """One data source of the grid: a run-config data spec (paths resolved), a cap and a label."""

    label: str
    spec: dict[str, Any]
    max_events: int | None = None

    def load(self) -> tuple[np.ndarray, Any]:
        """``(events, instruments)`` in memory, capped at ``max_events`` (at a batch boundary)."""
        data, instruments = RunConfig(source=self.label, data=self.spec, strategy="", strategy_params={},
                                      engine=None, out=None).build_data()
        if isinstance(data, str):  # a canonical file: the transforms need it in memory
            from tickguard.data.readers import source_instruments

            if data.endswith(".npy"):
                from tickguard.data.npy_io import read_npy

                events = np.array(read_npy(data, mmap=False))
            else:
                from tickguard.data.parquet_io import read_parquet

                events = read_parquet(data)
            instruments = source_instruments(data)
            data = events
        return _cap(data, self.max_events), instruments


def _cap(events: np.ndarray, n: int | None) -> np.ndarray:
    if n is None or len(events) <= n:
        return events
    closed = np.flatnonzero(events["kind"][:n] & KIND_LAST_IN_BATCH)
    return events[: closed[-1] + 1 if len(closed) else n].copy()  # no batch cut in two


@dataclass(frozen=True)
class Cell:
    """One engine run of the grid."""

    key: str
    data: str
    scenario: str
    strategy: str
    params: dict[str, Any]

    @property
    def params_json(self) -> str:
        return json.dumps(self.params, sort_keys=True)


@dataclass
class GridSpec:
    """A validated grid (see the module docstring for the TOML layout)."""

    source: str
    data: tuple[DataItem, ...]
    scenarios: tuple[Scenario, ...]
    strategies: tuple[tuple[str, tuple[dict[str, Any], ...]], ...]
    engine: Any  # EngineConfig
    rulebook: Path | None = None
    seed: int = 0
    out: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    specialize: bool = False  # how the gate runs, not what it decides: not in the cells' keys

    def __post_init__(self) -> None:
        for what, names in (("data label", [d.label for d in self.data]),
                            ("scenario name", [s.name for s in self.scenarios])):
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ConfigError(f"{self.source}: {what}(s) {dup} used twice; give each a distinct name")

    def scenario(self, name: str) -> Scenario:
        return next(s for s in self.scenarios if s.name == name)

    def data_item(self, label: str) -> DataItem:
        return next(d for d in self.data if d.label == label)

    def cells(self) -> list[Cell]:
        """Every cell, in grid order: data, then scenario, then strategy and parameter set."""
        rb = hashlib.sha256(self.rulebook.read_bytes()).hexdigest() if self.rulebook else None
        common = json.dumps([self.engine.describe(), rb, self.seed], sort_keys=True, default=str)
        out = []
        for d in self.data:
            for sc in self.scenarios:
                for name, sets in self.strategies:
                    for params in sets:
                        ident = json.dumps([d.label, d.spec, d.max_events, repr(sc), name, params, common],
                                           sort_keys=True, default=str)
                        digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
                        key = f"{_slug(sc.name)}__{_slug(name)}__{digest}"
                        out.append(Cell(key, d.label, sc.name, name, dict(params)))
        return out

    def grid_hash(self) -> str:
        """sha256 of the sorted cell keys: equal hashes, equal grids."""
        return hashlib.sha256("\n".join(sorted(c.key for c in self.cells())).encode()).hexdigest()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:40]


def _fail(source: str, where: str, message: str) -> ConfigError:
    return ConfigError(f"{source}: [{where}] {message}")


def _data_items(value: Any, base: Path, source: str) -> tuple[DataItem, ...]:
    tables = [value] if isinstance(value, dict) else value
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise _fail(source, "data", f"must be a [data] table or [[data]] tables, got {value!r}")
    items = []
    for i, table in enumerate(tables):
        where = "data" if isinstance(value, dict) else f"data[{i}]"
        _check_keys(table, {"path", "lobster", "synth", "sample"} | _DATA_EXTRA, source, where)
        cap = table.get("max_events")
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise _fail(source, where, f"max_events: got {cap!r}; use an int >= 1 (or leave it out)")
        spec = _data_spec({k: v for k, v in table.items() if k not in _DATA_EXTRA}, base, source)
        label = table.get("label", _default_label(spec))
        if not isinstance(label, str) or not label:
            raise _fail(source, where, f"label: got {label!r}; use a non-empty string")
        items.append(DataItem(label, spec, cap))
    return tuple(items)


def _default_label(spec: dict[str, Any]) -> str:
    if "path" in spec:
        return Path(spec["path"]).stem
    if "lobster" in spec:
        return Path(spec["lobster"]["message"]).stem
    if "synth" in spec:
        s = spec["synth"]
        return f"synth(events={s.get('events', 100_000)},seed={s.get('seed', 0)})"
    return spec.get("sample", "synthetic_l1")


def _scenarios(doc: dict[str, Any], base: Path, source: str) -> tuple[Scenario, ...]:
    listed = doc.get("scenarios", [])
    inline = doc.get("scenario", [])
    if not isinstance(listed, list) or not isinstance(inline, list):
        raise _fail(source, "top level", "scenarios must be a list (names, paths, tables) and "
                    "[[scenario]] an array of tables")
    out: list[Scenario] = []
    for i, item in enumerate(listed):
        where = f"{source}: scenarios[{i}]"
        if isinstance(item, dict):
            out.append(_wrap(lambda: scenario_from_dict(item, where)))
        elif item == "baseline":
            out.append(BASELINE)
        elif isinstance(item, str) and (item.endswith(".toml") or "/" in item):
            out.append(_wrap(lambda: load_scenario(base / item), where))
        elif isinstance(item, str):
            out.append(_wrap(lambda: load_scenario(item), where))
        else:
            raise ConfigError(f"{where}: got {item!r}; use a scenario name ({list_scenarios()} or "
                              "'baseline'), a .toml path, or a table")
    out += [_wrap(lambda: scenario_from_dict(t, f"{source}: [[scenario]] {j}")) for j, t in enumerate(inline)]
    if not out:
        raise _fail(source, "top level", "scenarios: none given; e.g. scenarios = [\"baseline\", "
                    "\"flash_crash_2010\"]")
    return tuple(out)


def _wrap(make: Any, where: str = "") -> Scenario:
    try:
        return make()
    except (ValueError, TypeError, FileNotFoundError) as exc:
        raise ConfigError(f"{where}: {exc}" if where else str(exc)) from None


def _strategies(value: Any, source: str) -> tuple[tuple[str, tuple[dict[str, Any], ...]], ...]:
    from tickguard.engine.strategy import load_strategy

    value = [value] if isinstance(value, dict) else value
    if not isinstance(value, list) or not value:
        raise _fail(source, "strategy", "give at least one [[strategy]] table with a name")
    out = []
    for i, table in enumerate(value):
        where = f"strategy[{i}]"
        if not isinstance(table, dict):
            raise _fail(source, where, f"must be a table, got {table!r}")
        _check_keys(table, _STRATEGY_KEYS, source, where)
        name = table.get("name")
        if not isinstance(name, str):
            raise _fail(source, where, "name: missing; pick one from `tickguard strategies`")
        try:
            load_strategy(name)
        except KeyError as exc:
            raise _fail(source, where, f"name: {exc.args[0]}") from None
        params = table.get("params", {})
        if isinstance(params, dict):
            axes = [v if isinstance(v, list) else [v] for v in params.values()]
            if any(not a for a in axes):
                raise _fail(source, where, "params: an empty list gives no parameter set")
            sets = [dict(zip(params, combo)) for combo in itertools.product(*axes)]
        elif isinstance(params, list) and params and all(isinstance(p, dict) for p in params):
            sets = [dict(p) for p in params]
        else:
            raise _fail(source, where, f"params: got {params!r}; use a table (list values: every "
                        "combination) or a non-empty list of tables (one parameter set each)")
        out.append((name, tuple(sets)))
    return tuple(out)


def grid_from_dict(doc: dict[str, Any], *, source: str = "grid", base: str | Path = ".") -> GridSpec:
    """A :class:`GridSpec` from parsed TOML; relative paths start at ``base``."""
    base = Path(base).resolve()
    _check_keys(doc, _TOP, source, "top level")
    seed = doc.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise _fail(source, "top level", f"seed: got {seed!r}; use an int >= 0")
    output = doc.get("output", {})
    if not isinstance(output, dict):
        raise _fail(source, "output", f"must be a table, got {output!r}")
    _check_keys(output, {"dir"}, source, "output")
    engine = doc.get("engine", {})
    if not isinstance(engine, dict):
        raise _fail(source, "engine", f"must be a table, got {engine!r}")
    rulebook = rulebook_path(doc.get("rulebook"), base, source, "top level")
    return GridSpec(
        source=source,
        data=_data_items(doc.get("data", {"sample": "synthetic_l1"}), base, source),
        scenarios=_scenarios(doc, base, source),
        strategies=_strategies(doc.get("strategy"), source),
        engine=_engine_config(engine, source),
        rulebook=rulebook,
        seed=seed,
        out=base / output["dir"] if "dir" in output else None,
        raw=doc,
        specialize=specialize_flag(doc.get("specialize", False), rulebook, source, "top level"),
    )


def load_grid(path: str | Path) -> GridSpec:
    """Read and validate a grid file; raises :class:`ConfigError` naming the key and the fix."""
    path = Path(path)
    doc = read_toml(path, "grid")
    return grid_from_dict(doc, source=str(path), base=path.resolve().parent)
