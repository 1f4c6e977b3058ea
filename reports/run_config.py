"""``tickguard run CONFIG.toml``: a run described in TOML, validated before anything runs.

A config has four tables; only ``[strategy]`` is required::

    [data]                          # one source (paths are relative to the config file)
    path = "events.parquet"         # canonical .parquet / .npy (streamed), or
    # lobster = { message = "AMZN_..._message_1.csv", orderbook = "AMZN_..._orderbook_1.csv",
    #             feed_latency = "50us", depth = false }
    # synth = { events = 100000, seed = 1 }
    # sample = "synthetic_l1"       # a bundled sample (the default)

    [strategy]
    name = "ema_crossover"          # a registered plugin (`tickguard strategies`)
    params = { fast = 50, slow = 200, size = 1 }   # keyword arguments of its factory

    [engine]                        # EngineConfig fields; durations as "100us", "1s", "5min" or ns
    initial_cash = 1_000_000
    impact_ticks = 1
    queue_model = "conservative"    # or "probabilistic" (with queue_power)
    mark = "mid"
    sample_every = 0
    sample_dt = "1s"
    seed = 0
    latency = { entry = "100us", response = "100us" }   # or mode/entry_sigma/response_sigma;
                                    # per action: latency.cancel = {...}, latency.modify = {...}
    fees = { maker_bps = -0.2, taker_bps = 0.3 }

    [risk]                          # optional: a rulebook in the loop (omit: no risk gate)
    rulebook = "default"            # or a rulebook TOML, relative to the config file
    specialize = false              # the pre-trade gate written for the rulebook's shape: the
                                    # same results, fewer instructions per order, one compile
                                    # per new shape (see the README's risk section)

    [output]
    dir = "runs/demo"               # relative to the config file; --out overrides

Every unknown key is refused with the table it sits in and the closest known key.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ConfigError", "RunConfig", "load_run_config", "parse_duration_ns", "read_toml", "rulebook_path",
           "specialize_flag"]

_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "min": 60_000_000_000,
          "h": 3_600_000_000_000}
_TABLES = {"data", "strategy", "engine", "risk", "output"}
_DATA_KEYS = {"path", "lobster", "synth", "sample"}
_LOBSTER_KEYS = {"message", "orderbook", "feed_latency", "depth", "tick_size", "symbol", "tz"}
_SYNTH_KEYS = {"events", "seed"}
_STRATEGY_KEYS = {"name", "params"}
_ENGINE_KEYS = {"initial_cash", "impact_ticks", "queue_model", "queue_power", "mark", "sample_every",
                "sample_dt", "seed", "chunk_rows", "book_levels", "max_requests_per_instant", "latency",
                "fees"}
_LATENCY_KEYS = {"entry", "response", "mode", "entry_sigma", "response_sigma", "cancel", "modify"}
_ACTION_KEYS = _LATENCY_KEYS - {"cancel", "modify"}
_FEE_KEYS = {"maker_bps", "taker_bps", "maker_per_unit", "taker_per_unit"}
_OUTPUT_KEYS = {"dir"}
_RISK_KEYS = {"rulebook", "specialize"}


class ConfigError(ValueError):
    """The run config is invalid; the message names the file, the key and the fix."""


def _fail(source: str, where: str, message: str) -> ConfigError:
    return ConfigError(f"{source}: [{where}] {message}")


def _check_keys(table: dict[str, Any], allowed: set[str], source: str, where: str) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {sorted(allowed)}"
            raise _fail(source, where, f"unknown key {key!r}{hint}")


def parse_duration_ns(value: Any, what: str = "duration") -> int:
    """``"100us"``, ``"1.5s"``, ``"5min"`` or a number of ns -> int ns (>= 0)."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: got {value!r}; use a number of ns or a string like '100us'")
    if isinstance(value, (int, float)):
        ns = float(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*(ns|us|ms|s|min|h)\s*", value)
        if m is None:
            raise ValueError(f"{what}: got {value!r}; write a number and a unit, one of {list(_UNITS)}")
        ns = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError(f"{what}: got {value!r}; use a number of ns or a string like '100us'")
    if not np.isfinite(ns) or ns < 0:
        raise ValueError(f"{what}: got {value!r}; a duration must be finite and >= 0")
    return int(round(ns))


@dataclass
class RunConfig:
    """A validated run description (see the module docstring for the TOML layout)."""

    source: str
    data: dict[str, Any]
    strategy: str
    strategy_params: dict[str, Any]
    engine: Any  # EngineConfig
    out: Path | None
    raw: dict[str, Any] = field(default_factory=dict)
    rulebook: Path | None = None  # [risk] rulebook, resolved; None: no risk gate
    specialize: bool = False  # [risk] specialize

    def build_strategy(self) -> Any:
        """Call the plugin's factory with the configured parameters."""
        from tickguard.engine.strategy import load_strategy

        try:
            factory = load_strategy(self.strategy)
        except KeyError as exc:
            raise _fail(self.source, "strategy", f"name: {exc.args[0]}") from None
        try:
            return factory(**self.strategy_params)
        except TypeError as exc:  # an unknown or missing keyword
            raise _fail(self.source, "strategy", f"params {self.strategy_params!r} do not fit "
                        f"{self.strategy!r}: {exc}") from None
        except ValueError as exc:
            raise _fail(self.source, "strategy", f"params: {exc}") from None

    def build_risk(self, instruments: Any = None) -> Any:
        """The :class:`tickguard.risk.RiskGate` of ``[risk]`` (symbols resolve via ``instruments``),
        or None without one."""
        if self.rulebook is None:
            return None
        from tickguard.risk.inloop import RiskGate

        try:
            return RiskGate.load(self.rulebook, instruments, specialize=self.specialize)
        except ValueError as exc:  # RulebookError: names the rule and the field
            raise _fail(self.source, "risk", f"rulebook {self.raw['risk']['rulebook']!r}: {exc}") from None

    def build_data(self) -> tuple[Any, Any]:
        """``(data, instruments)`` for :class:`tickguard.engine.Backtest` (instruments may be None)."""
        d = self.data
        if "path" in d:
            return d["path"], None
        if "lobster" in d:
            from tickguard.data.lobster import read_lobster

            lob = d["lobster"]
            kwargs = {k: lob[k] for k in ("tick_size", "symbol", "tz", "depth") if k in lob}
            events, table, _ = read_lobster(
                lob["message"], lob.get("orderbook"),
                feed_latency_ns=parse_duration_ns(lob.get("feed_latency", 0), "lobster.feed_latency"),
                **kwargs,
            )
            return events, table
        if "synth" in d:
            from tickguard.data.synth import synthesize

            syn = d["synth"]
            return synthesize(int(syn.get("events", 100_000)), seed=int(syn.get("seed", 0)))
        from tickguard.data.cli import bundled_samples

        samples = {p.stem: p for p, _ in bundled_samples()}
        name = d.get("sample", "synthetic_l1")
        if name not in samples:
            raise _fail(self.source, "data", f"sample: no bundled sample {name!r}; have {sorted(samples)}")
        return str(samples[name]), None


def rulebook_path(value: Any, base: Path, source: str, where: str) -> Path | None:
    """A config's ``rulebook`` value: "default" (the shipped example) or a TOML path relative to
    ``base``; None stays None."""
    if value is None:
        return None
    if value == "default":
        from tickguard.risk.inloop import DEFAULT_RULEBOOK

        return DEFAULT_RULEBOOK
    if not isinstance(value, str):
        raise _fail(source, where, f"rulebook: got {value!r}; use \"default\" or a TOML path")
    path = base / value
    if not path.is_file():
        raise _fail(source, where, f"rulebook: {path} does not exist; give \"default\" (the shipped "
                    f"rulebook) or the path of a rulebook TOML, relative to {base}")
    return path


def specialize_flag(value: Any, rulebook: Path | None, source: str, where: str) -> bool:
    """A config's ``specialize`` value: a bool, true only beside a rulebook."""
    if not isinstance(value, bool):
        raise _fail(source, where, f"specialize: got {value!r}; use true or false")
    if value and rulebook is None:
        raise _fail(source, where, "specialize = true needs a rulebook: set rulebook = \"default\" "
                    "or a TOML path, or drop specialize")
    return value


def _section(doc: dict[str, Any], name: str, source: str) -> dict[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise _fail(source, name, f"must be a table, got {type(value).__name__}")
    return value


def _latency(table: dict[str, Any], source: str, where: str) -> Any:
    from tickguard.engine.config import Latency

    _check_keys(table, _ACTION_KEYS, source, where)
    try:
        return Latency(
            entry_ns=parse_duration_ns(table.get("entry", 0), f"{where}.entry"),
            response_ns=parse_duration_ns(table.get("response", 0), f"{where}.response"),
            mode=table.get("mode", "constant"),
            entry_sigma=float(table.get("entry_sigma", 0.0)),
            response_sigma=float(table.get("response_sigma", 0.0)),
        )
    except ValueError as exc:
        raise _fail(source, where, str(exc)) from None


def _engine_config(table: dict[str, Any], source: str) -> Any:
    from tickguard.engine.config import EngineConfig, FeeConfig, LatencyConfig

    _check_keys(table, _ENGINE_KEYS, source, "engine")
    lat = table.get("latency", {})
    _check_keys(lat, _LATENCY_KEYS, source, "engine.latency")
    latency = LatencyConfig(
        submit=_latency({k: v for k, v in lat.items() if k not in ("cancel", "modify")}, source,
                        "engine.latency"),
        cancel=_latency(lat["cancel"], source, "engine.latency.cancel") if "cancel" in lat else None,
        modify=_latency(lat["modify"], source, "engine.latency.modify") if "modify" in lat else None,
    )
    fees_table = table.get("fees", {})
    _check_keys(fees_table, _FEE_KEYS, source, "engine.fees")
    plain = {k: v for k, v in table.items() if k not in ("latency", "fees", "sample_dt")}
    try:
        if "sample_dt" in table:
            plain["sample_dt_ns"] = parse_duration_ns(table["sample_dt"], "sample_dt")
        return EngineConfig(latency=latency, fees=FeeConfig(**fees_table), **plain)
    except (TypeError, ValueError) as exc:
        raise _fail(source, "engine", str(exc)) from None


def _data_spec(table: dict[str, Any], base: Path, source: str) -> dict[str, Any]:
    _check_keys(table, _DATA_KEYS, source, "data")
    if len(table) > 1:
        raise _fail(source, "data", f"give one source, got {sorted(table)}")
    spec = dict(table)
    if "path" in spec:
        path = base / str(spec["path"])
        if not path.exists():
            raise _fail(source, "data", f"path: {path} does not exist")
        spec["path"] = str(path)
    if "lobster" in spec:
        lob = dict(spec["lobster"])
        _check_keys(lob, _LOBSTER_KEYS, source, "data.lobster")
        if "message" not in lob:
            raise _fail(source, "data.lobster", "message: missing; name the LOBSTER message file")
        for key in ("message", "orderbook"):
            if key in lob:
                path = base / str(lob[key])
                if not path.exists():
                    raise _fail(source, "data.lobster", f"{key}: {path} does not exist")
                lob[key] = str(path)
        spec["lobster"] = lob
    if "synth" in spec:
        _check_keys(spec["synth"], _SYNTH_KEYS, source, "data.synth")
    return spec


def read_toml(path: Path, what: str = "config") -> dict[str, Any]:
    """The parsed TOML document; a missing file or bad TOML is a :class:`ConfigError` naming it."""
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what} file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def load_run_config(path: str | Path) -> RunConfig:
    """Read and validate a run config; raises :class:`ConfigError` naming the key and the fix."""
    path = Path(path)
    source = str(path)
    doc = read_toml(path)
    _check_keys(doc, _TABLES, source, "top level")
    base = path.resolve().parent
    strategy = _section(doc, "strategy", source)
    _check_keys(strategy, _STRATEGY_KEYS, source, "strategy")
    if "name" not in strategy:
        raise _fail(source, "strategy", "name: missing; pick one from `tickguard strategies`")
    params = strategy.get("params", {})
    if not isinstance(params, dict):
        raise _fail(source, "strategy", f"params must be a table, got {params!r}")
    output = _section(doc, "output", source)
    _check_keys(output, _OUTPUT_KEYS, source, "output")
    risk = _section(doc, "risk", source)
    _check_keys(risk, _RISK_KEYS, source, "risk")
    if risk and "rulebook" not in risk:
        raise _fail(source, "risk", "rulebook: missing; use \"default\" or a TOML path (or drop [risk])")
    rulebook = rulebook_path(risk.get("rulebook"), base, source, "risk")
    return RunConfig(
        source=source,
        data=_data_spec(_section(doc, "data", source), base, source),
        strategy=str(strategy["name"]),
        strategy_params=dict(params),
        engine=_engine_config(_section(doc, "engine", source), source),
        out=base / output["dir"] if "dir" in output else None,
        raw=doc,
        rulebook=rulebook,
        specialize=specialize_flag(risk.get("specialize", False), rulebook, source, "risk"),
    )
