"""The declarative rulebook: TOML ``[[rule]]`` tables compiled into the float64 rows the kernels read.

A rule::

    [[rule]]
    id = "max-qty"                 # unique string, quoted in every denial and transition
    scope = "all"                  # "all", an instrument symbol (needs an InstrumentTable) or an id
    metric = "max_order_qty"       # see METRICS
    threshold = 500                # the limit, in the metric's unit (durations may be "2s")
    action = "deny"                # pre-trade: deny; kill switch: reduce, halt, halt_flatten
    window = "1s"                  # windowed metrics only: "<number><ns|us|ms|s|min|h>"
    params = { burst = 20 }        # optional, per metric
    description = "fat-finger cap" # optional, shown in reports

Contradictions refused (one family each):

- kill-switch triggers with the same metric, scope, window and params: a milder action whose
  threshold is >= that of a harsher one can never act first (the harsher trigger latches the
  switch above it), so the pair is contradictory: reduce at 5% drawdown with halt at 3% is
  refused; reduce at 3% with halt at 5% is the intended ladder. Only one external_kill rule.
- price collars: ``floor`` above ``cap`` in a sigma collar (an inverted min/max band).
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import layout as L

__all__ = ["ACTIONS", "METRICS", "MetricSpec", "Rulebook", "RulebookError", "load_rulebook",
           "parse_duration"]


class RulebookError(ValueError):
    """A rulebook that cannot be compiled; the message names the rule id and the field."""


@dataclass(frozen=True)
class MetricSpec:
    """How one metric reads: code, family, threshold unit and bound, scope, window, params."""

    code: int
    family: str  # "pretrade" (action deny) or "kill" (reduce / halt / halt_flatten)
    unit: str  # unit of the threshold, for messages and reports
    bound: str  # "positive" (> 0), "nonneg" (>= 0), "count" (>= 1), "fraction" (0 < x <= 1)
    scope: str  # "any", "all" (portfolio-wide only) or "instrument" (an instrument is required)
    window: bool | str  # True: window required; False: window refused; a str: its default
    params: tuple[tuple[str, float | None], ...] = ()  # (name, default); None: default = threshold
    text: str = ""  # explanation template with {obs} and {thr}


def _m(code, family, unit, bound, scope, window, params, text):  # noqa: ANN001, ANN202
    return MetricSpec(code, family, unit, bound, scope, window, tuple(params), text)


_CAP_SIG = ("capacity", 1024.0)
_SIGNATURE_METRICS = ("repeated_execution", "duplicate_order")  # their memories hold `capacity` orders
_CAP = ("capacity", 65536.0)
#: Every metric the kernels know. Params fill rule columns R_P0.. in the order listed.
METRICS: dict[str, MetricSpec] = {
    "max_order_qty": _m(L.MT_MAX_ORDER_QTY, "pretrade", "units", "positive", "any", False, (),
                        "order quantity {obs} exceeds the limit {thr}"),
    "max_order_notional": _m(L.MT_MAX_ORDER_NOTIONAL, "pretrade", "currency", "positive", "any",
                             False, (), "order notional {obs} exceeds the limit {thr}"),
    "price_collar_pct": _m(L.MT_PRICE_COLLAR_PCT, "pretrade", "fraction of mid", "positive", "any",
                           False, (), "limit price is {obs} of mid away, beyond the {thr} collar"),
    # window: the clock on which the mid is sampled for sigma (optional, default 1 s)
    "price_collar_sigma": _m(L.MT_PRICE_COLLAR_SIGMA, "pretrade", "sigmas", "positive", "any", "1s",
                             (("lambda", 0.94), ("floor", 0.0), ("cap", math.inf)),
                             "limit price is {obs} (log distance) from mid, beyond the collar "
                             "{thr} (k sigma of returns per window, clamped to [floor, cap])"),
    "max_position": _m(L.MT_MAX_POSITION, "pretrade", "units", "nonneg", "any", False, (),
                       "projected |position| {obs} (open orders as filled) exceeds {thr}"),
    "max_position_notional": _m(L.MT_MAX_POSITION_NOTIONAL, "pretrade", "currency", "nonneg", "any",
                                False, (), "projected |position| notional {obs} exceeds {thr}"),
    "max_gross_exposure": _m(L.MT_MAX_GROSS_EXPOSURE, "pretrade", "currency", "nonneg", "all", False,
                             (), "projected gross exposure {obs} exceeds {thr}"),
    "max_net_exposure": _m(L.MT_MAX_NET_EXPOSURE, "pretrade", "currency", "nonneg", "all", False, (),
                           "projected |net exposure| {obs} exceeds {thr}"),
    "message_rate": _m(L.MT_MESSAGE_RATE, "pretrade", "messages per window", "count", "any", True,
                       (("burst", None),), "the message bucket holds {obs} messages; one needs {thr}"),
    "repeated_execution": _m(L.MT_REPEATED_EXECUTION, "pretrade", "orders", "count", "any", True,
                             (_CAP_SIG,), "{obs} orders with the same instrument, side, price and "
                             "quantity in the window, more than {thr}"),
    "duplicate_order": _m(L.MT_DUPLICATE_ORDER, "pretrade", "orders", "count", "any", True,
                          (_CAP_SIG,), "{obs} identical orders in the window, more than {thr}"),
    "restricted": _m(L.MT_RESTRICTED, "pretrade", "", "nonneg", "instrument", False, (),
                     "the instrument is restricted"),
    "stale_data": _m(L.MT_STALE_DATA, "pretrade", "ns", "positive", "any", False, (),
                     "quote age {obs} exceeds {thr}"),
    "loss_over_window": _m(L.MT_LOSS_OVER_WINDOW, "kill", "currency", "positive", "all", True, (_CAP,),
                           "PnL fell {obs} within the window, more than {thr}"),
    "drawdown": _m(L.MT_DRAWDOWN, "kill", "fraction of peak equity", "fraction", "all", False, (),
                   "drawdown {obs} from peak equity exceeds {thr}"),
    "ewma_var_breach": _m(L.MT_EWMA_VAR_BREACH, "kill", "multiple of VaR", "positive", "all", False,
                          (("lambda", 0.94), ("level", 0.99), ("min_samples", 30.0)),
                          "loss {obs} in one sample exceeds {thr} (threshold x EWMA VaR)"),
    "order_to_trade": _m(L.MT_ORDER_TO_TRADE, "kill", "messages per fill", "positive", "any", True,
                         (("min_orders", 0.0), _CAP),
                         "{obs} order messages per fill in the window, above {thr}"),
    "reject_rate": _m(L.MT_REJECT_RATE, "kill", "rejects per order", "positive", "any", True,
                      (("min_orders", 1.0), _CAP), "{obs} rejects per order in the window, above {thr}"),
    "message_rate_kill": _m(L.MT_MESSAGE_RATE_KILL, "kill", "messages", "count", "any", True, (),
                            "{obs} messages in the window, more than {thr}"),
    "fill_rate": _m(L.MT_FILL_RATE, "kill", "fills", "count", "any", True, (),
                    "{obs} fills in the window, more than {thr}"),
    "crossed_data": _m(L.MT_CROSSED_DATA, "kill", "ns", "nonneg", "any", False, (),
                       "the book has been crossed (bid >= ask) for {obs}, longer than {thr}"),
    "stale_feed": _m(L.MT_STALE_FEED, "kill", "ns", "positive", "all", False, (),
                     "no market event for {obs}, longer than {thr}"),
    "external_kill": _m(L.MT_EXTERNAL_KILL, "kill", "", "nonneg", "all", False, (),
                        "an external kill command arrived"),
}
ACTIONS = {"deny": L.ACT_DENY, "reduce": L.ACT_REDUCE, "halt": L.ACT_HALT,
           "halt_flatten": L.ACT_HALT_FLATTEN}
_ACTION_NAMES = {v: k for k, v in ACTIONS.items()}
_METRIC_NAMES = {s.code: n for n, s in METRICS.items()}
_KEYS = ("id", "scope", "metric", "threshold", "action", "window", "params", "description")
_TOP_KEYS = ("rule", "name", "description")
_UNITS_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "min": 60_000_000_000,
             "h": 3_600_000_000_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]+)\s*$")
_PSEUDO = {L.PSEUDO_HALTED: "HALTED: every new order and modify is refused",
           L.PSEUDO_REDUCING: "REDUCING: the order would take the position from {thr} to {obs} "
                              "(open orders as filled), not strictly toward 0",
           L.PSEUDO_EXTERNAL: "HALTED by an external kill command (no external_kill rule)",
           L.PSEUDO_RESET: "reset to ACTIVE (from state {obs})"}


def _hint(word: str, choices) -> str:  # noqa: ANN001
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def parse_duration(text: str) -> int:
    """``"5s"`` -> 5_000_000_000 ns. Units: ns, us, ms, s, min, h. Raises ValueError otherwise."""
    m = _DURATION.match(text) if isinstance(text, str) else None
    if m is None or m.group(2) not in _UNITS_NS:
        raise ValueError(f"duration must be a string '<number><unit>' with unit in "
                         f"{list(_UNITS_NS)}, e.g. '5s' or '1min'; got {text!r}")
    ns = float(m.group(1)) * _UNITS_NS[m.group(2)]
    if not (ns >= 1 and ns == round(ns)):
        raise ValueError(f"duration must be a whole number of ns >= 1; got {text!r} = {ns!r} ns")
    return int(ns)


@dataclass(frozen=True, eq=False)
class Rulebook:
    """A compiled rulebook: ``rules`` float64[n_rules, R_NF] plus the names reports need."""

    rules: np.ndarray
    ids: tuple[str, ...]
    metrics: tuple[str, ...]
    actions: tuple[str, ...]
    scopes: tuple[str, ...]  # "all" or the symbol / id as written
    descriptions: tuple[str, ...]
    params: tuple[dict[str, float], ...] = field(default=())
    name: str = ""

    def __post_init__(self) -> None:
        # A memory of identical orders holds at most ``capacity`` of them, so it counts at most
        # capacity + 1 with the order being checked: a threshold at or above that would never
        # deny, silently. Checked here, where every rulebook is made: the loader's, and one made
        # by editing a loaded one's arrays (benchmarks/engine.py's relaxed rulebook was one).
        for k, metric in enumerate(self.metrics):
            if metric in _SIGNATURE_METRICS:
                thr, cap = float(self.rules[k, L.R_THRESHOLD]), float(self.rules[k, L.R_P0])
                if not thr < cap + 1:
                    below = f"below {cap + 1:.15g}"
                    fix = (f"raise params.capacity to at least {math.floor(thr)} or lower the threshold "
                           f"{below}" if math.isfinite(thr) else f"give a finite threshold {below}")
                    raise RulebookError(
                        f"rule {self.ids[k]!r}: field 'threshold': {thr:.15g} can never be exceeded: "
                        f"{metric} remembers at most params.capacity = {cap:.15g} orders, so it counts "
                        f"at most {cap + 1:.15g} with the order checked and would never deny; {fix}")

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, rule_id: str) -> int:
        """0-based row of the rule called ``rule_id``."""
        try:
            return self.ids.index(rule_id)
        except ValueError:
            raise KeyError(f"no rule {rule_id!r}{_hint(rule_id, self.ids)}; ids: {list(self.ids)}") from None

    def explain(self, rule_index: int, observed: float, threshold: float) -> str:
        """One sentence for a denial or a transition. ``rule_index``: 0-based row or a PSEUDO_* code.

        Gate codes from :func:`~tickguard.risk.pretrade.pretrade_nb` are ``index + 1``; pass
        ``code - 1`` for positive codes and negative codes as they are.
        """
        r = int(rule_index)
        if r < 0:
            if r not in _PSEUDO:
                raise ValueError(f"explain: rule_index {r} is neither a row nor a PSEUDO_* code")
            return "Kill switch " + _PSEUDO[r].format(obs=_fmt(observed, ""), thr=_fmt(threshold, "")) + "."
        if r >= len(self):
            raise ValueError(f"explain: rule_index {r} out of range for {len(self)} rules")
        spec = METRICS[self.metrics[r]]
        unit = spec.unit if spec.code != L.MT_PRICE_COLLAR_SIGMA else "fraction of mid"
        body = spec.text.format(obs=_fmt(observed, unit), thr=_fmt(threshold, unit))
        return (f"Rule {self.ids[r]!r} ({self.metrics[r]}, scope {self.scopes[r]}): {body}; "
                f"action {self.actions[r]}.")

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python view for JSON reports."""
        rows = []
        for r in range(len(self)):
            w = self.rules[r, L.R_WINDOW]
            rows.append({"index": r, "id": self.ids[r], "metric": self.metrics[r],
                         "scope": self.scopes[r], "threshold": float(self.rules[r, L.R_THRESHOLD]),
                         "unit": METRICS[self.metrics[r]].unit, "action": self.actions[r],
                         "window_ns": int(w) if w > 0 else None, "params": dict(self.params[r]),
                         "description": self.descriptions[r]})
        return {"name": self.name, "rules": rows}


def _fmt(x: float, unit: str) -> str:
    x = float(x)
    if not math.isfinite(x):
        return "infinite (no quote yet)" if unit == "ns" and x > 0 else repr(x)
    if unit == "ns":
        return f"{x / 1e9:.6g} s"
    if unit.startswith("fraction"):
        return f"{x:.4%}"
    if unit == "currency":
        return f"{x:,.2f}"
    return f"{x:.6g}"


def load_rulebook(path_or_text: str | Path, instruments=None) -> Rulebook:  # noqa: ANN001
    """Compile a TOML rulebook into a :class:`Rulebook`.

    ``path_or_text``: a :class:`~pathlib.Path` or a one-line str ending in ``.toml`` is read as a
    file; any other str is the TOML text itself.

    ``instruments`` (an :class:`~tickguard.data.schema.InstrumentTable`) resolves symbol scopes
    and checks id scopes. Raises :class:`RulebookError` naming the rule id and the field.
    """
    if isinstance(path_or_text, Path) or (
        isinstance(path_or_text, str) and "\n" not in path_or_text and path_or_text.endswith(".toml")
    ):
        path = Path(path_or_text)
        if not path.is_file():
            raise RulebookError(f"load_rulebook: no rulebook file at {str(path)!r}")
        text = path.read_text(encoding="utf-8")
    elif isinstance(path_or_text, str):
        text = path_or_text
    else:
        raise TypeError(f"load_rulebook: path_or_text must be a str or Path, got "
                        f"{type(path_or_text).__name__}")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulebookError(f"load_rulebook: not valid TOML: {exc}") from None
    for key in doc:
        if key not in _TOP_KEYS:
            raise RulebookError(f"rulebook: unknown top-level key {key!r}{_hint(key, _TOP_KEYS)}; "
                                f"rules go in [[rule]] tables")
    tables = doc.get("rule", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise RulebookError("rulebook: 'rule' must be an array of tables, written [[rule]]")
    rows, names = [], []
    for k, table in enumerate(tables):
        row, info = _compile_rule(k, table, instruments)
        if info["id"] in [n["id"] for n in names]:
            raise RulebookError(f"rule {info['id']!r}: field 'id': duplicate id (rule #{k})")
        rows.append(row)
        names.append(info)
    _check_contradictions(rows, names)
    rules = np.array(rows, dtype=np.float64).reshape(len(rows), L.R_NF)
    return Rulebook(rules, tuple(n["id"] for n in names), tuple(n["metric"] for n in names),
                    tuple(n["action"] for n in names), tuple(n["scope"] for n in names),
                    tuple(n["description"] for n in names), tuple(n["params"] for n in names),
                    str(doc.get("name", "")))


def _compile_rule(k: int, t: dict, instruments) -> tuple[list[float], dict]:  # noqa: ANN001
    rid = t.get("id")
    if not isinstance(rid, str) or not rid:
        raise RulebookError(f"rule #{k}: field 'id': a non-empty string is required, got {rid!r}")

    def fail(fieldname: str, msg: str) -> RulebookError:
        return RulebookError(f"rule {rid!r}: field {fieldname!r}: {msg}")

    for key in t:
        if key not in _KEYS:
            raise fail(key, f"unknown key{_hint(key, _KEYS)}; allowed keys: {list(_KEYS)}")
    metric = t.get("metric")
    if metric not in METRICS:
        raise fail("metric", f"unknown metric {metric!r}{_hint(str(metric), METRICS)}; "
                             f"known metrics: {sorted(METRICS)}")
    spec = METRICS[metric]
    action = t.get("action")
    allowed = ("deny",) if spec.family == "pretrade" else (
        ("halt", "halt_flatten") if metric == "external_kill" else ("reduce", "halt", "halt_flatten"))
    if action not in allowed:
        raise fail("action", f"{metric} takes action {' / '.join(allowed)}, got {action!r}"
                             f"{_hint(str(action), allowed)}")
    thr = _threshold(t, spec, metric, fail)
    window = 0
    if spec.window:
        if "window" not in t and spec.window is True:
            raise fail("window", f"{metric} needs a window, e.g. window = \"1s\"")
        try:
            window = parse_duration(t.get("window", spec.window))
        except ValueError as exc:
            raise fail("window", str(exc)) from None
    elif "window" in t:
        raise fail("window", f"{metric} takes no window; remove the key")
    scope_id, scope_txt = _scope(t.get("scope", "all"), spec, metric, instruments, fail)
    params = _params(t.get("params", {}), spec, metric, thr, fail)
    desc = t.get("description", "")
    if not isinstance(desc, str):
        raise fail("description", f"must be a string, got {type(desc).__name__}")
    values = list(params.values()) + [0.0] * (3 - len(params))
    row = [float(spec.code), float(scope_id), thr, float(ACTIONS[action]), float(window), *values]
    return row, {"id": rid, "metric": metric, "action": action, "scope": scope_txt,
                 "description": desc, "params": params}


def _threshold(t: dict, spec: MetricSpec, metric: str, fail) -> float:  # noqa: ANN001
    if "threshold" not in t:
        if spec.unit == "":  # restricted, external_kill: nothing to measure
            return 0.0
        raise fail("threshold", f"{metric} needs a threshold in {spec.unit}")
    raw = t["threshold"]
    if spec.unit == "ns" and isinstance(raw, str):
        try:
            return float(parse_duration(raw))
        except ValueError as exc:
            raise fail("threshold", str(exc)) from None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise fail("threshold", f"must be a number ({spec.unit}), got {raw!r}")
    x = float(raw)
    bad = {"positive": not x > 0, "nonneg": not x >= 0, "count": not x >= 1,
           "fraction": not 0 < x <= 1}[spec.bound]
    if not math.isfinite(x) or bad:
        need = {"positive": "> 0", "nonneg": ">= 0", "count": ">= 1", "fraction": "in (0, 1]"}
        raise fail("threshold", f"must be finite and {need[spec.bound]} ({spec.unit}), got {raw!r}")
    return x


def _scope(raw, spec: MetricSpec, metric: str, instruments, fail) -> tuple[int, str]:  # noqa: ANN001
    if raw == "all":
        if spec.scope == "instrument":
            raise fail("scope", f"{metric} needs an instrument scope (symbol or id), not 'all'")
        return L.SCOPE_ALL, "all"
    if spec.scope == "all":
        raise fail("scope", f"{metric} is portfolio-wide: scope must be 'all', got {raw!r}")
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise fail("scope", f"must be 'all', a symbol or an instrument id, got {raw!r}")
    if isinstance(raw, int):
        if raw < 0 or (instruments is not None and raw not in instruments):
            known = [] if instruments is None else [int(i) for i in instruments.ids]
            raise fail("scope", f"unknown instrument id {raw}; known ids: {known}")
        return raw, str(raw)
    if instruments is None:
        raise fail("scope", f"{raw!r} names an instrument but no InstrumentTable was given; "
                            f"pass instruments= to load_rulebook or use the numeric id")
    symbols = [i.symbol for i in instruments]
    if raw not in symbols:
        raise fail("scope", f"unknown instrument symbol {raw!r}{_hint(raw, symbols)}; known: {symbols}")
    return int(instruments.by_symbol(raw).id), raw


def _params(raw, spec: MetricSpec, metric: str, thr: float, fail) -> dict[str, float]:  # noqa: ANN001
    if not isinstance(raw, dict):
        raise fail("params", f"must be a table, e.g. params = {{ k = 1 }}, got {raw!r}")
    names = [p for p, _ in spec.params]
    for key in raw:
        if key not in names:
            raise fail("params", f"unknown parameter {key!r} for {metric}{_hint(key, names)}; "
                                 f"{metric} takes {names or 'none'}")
    out: dict[str, float] = {}
    for name, default in spec.params:
        v = raw.get(name, thr if default is None else default)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise fail("params", f"{name} must be a number, got {v!r}")
        v = float(v)
        ok, need = {
            "lambda": (0 < v < 1, "in (0, 1)"), "floor": (math.isfinite(v) and v >= 0, "finite, >= 0"),
            "cap": (v > 0, "> 0 (inf: no cap)"), "burst": (math.isfinite(v) and v >= 1, "finite, >= 1"),
            "level": (0.5 < v < 1, "in (0.5, 1)"),
        }.get(name, (math.isfinite(v) and v == int(v) and 0 <= v <= 1e8
                     and (v >= 1 or name != "capacity"), "a whole number" +
                     (" in [1, 1e8]" if name == "capacity" else " in [0, 1e8]")))
        if not ok:
            raise fail("params", f"{name} must be {need}, got {v!r}")
        out[name] = v
    if metric == "price_collar_sigma" and out["floor"] > out["cap"]:
        raise fail("params", f"contradictory collar: floor {out['floor']!r} is above cap "
                             f"{out['cap']!r} (min/max inverted); swap them")
    return out


def _check_contradictions(rows: list[list[float]], names: list[dict]) -> None:
    ext = [n["id"] for n in names if n["metric"] == "external_kill"]
    if len(ext) > 1:
        raise RulebookError(f"rules {ext}: field 'metric': only one external_kill rule is allowed")
    kill = [(row, n) for row, n in zip(rows, names) if METRICS[n["metric"]].family == "kill"]
    for i, (ra, na) in enumerate(kill):
        for rb, nb in kill[i + 1:]:
            if (na["metric"], ra[L.R_SCOPE], ra[L.R_WINDOW], ra[L.R_P0:]) != (
                    nb["metric"], rb[L.R_SCOPE], rb[L.R_WINDOW], rb[L.R_P0:]):
                continue
            (mild, nm), (harsh, nh) = sorted([(ra, na), (rb, nb)], key=lambda p: p[0][L.R_ACTION])
            if mild[L.R_ACTION] < harsh[L.R_ACTION] and mild[L.R_THRESHOLD] >= harsh[L.R_THRESHOLD]:
                raise RulebookError(
                    f"rules {nm['id']!r} and {nh['id']!r}: field 'threshold': contradictory pair: "
                    f"{nm['action']} at {mild[L.R_THRESHOLD]:g} can never act before "
                    f"{nh['action']} at {harsh[L.R_THRESHOLD]:g} on {nm['metric']} (same scope and "
                    f"window); give the milder action the lower threshold")
