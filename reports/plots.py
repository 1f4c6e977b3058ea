"""Figures of the HTML tear sheet, rendered to inline SVG that needs nothing from the network.

Each ``*_figure`` function takes plain arrays (times int64 ns UTC, money in the quote currency)
and returns a :class:`matplotlib.figure.Figure` built without pyplot, so no global figure state
is touched. :func:`render_svg` turns a figure into an ``<svg>`` element for embedding in HTML:

* text is drawn as paths (``svg.fonttype = "path"``), so the page needs no fonts;
* ``svg.hashsalt`` and the metadata are fixed, so the same inputs give byte-identical output;
* every ``id`` (and every reference to it) gets a per-figure prefix, so several figures on one
  page never share an id.

Lines with more than ``MAX_POINTS`` samples are thinned by keeping each bucket's first, minimum,
maximum and last sample, so extremes (the drawdown trough) survive and pages stay small.
"""

from __future__ import annotations

import io
import re
from typing import Any, Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = [
    "MAX_POINTS",
    "diagnostics_figure",
    "equity_figure",
    "exposure_figure",
    "fills_figure",
    "killswitch_figure",
    "pnl_histogram_figure",
    "render_svg",
    "rolling_var_figure",
    "stress_heatmap_figure",
]

MAX_POINTS = 4000
_BUY, _SELL, _LOSS, _LINE = "#1a9850", "#d73027", "#d73027", "#2c7bb6"
_STATES = {"ACTIVE": 0, "REDUCING": 1, "HALTED": 2}
_ID = re.compile(r'(\bid="|href="#|url\(#)')


def _dt(ts: Any) -> np.ndarray:
    return np.asarray(ts, dtype=np.int64).astype("datetime64[ns]")


def _thin(n: int, y: np.ndarray) -> np.ndarray:
    """Indices to plot: all of them, or per bucket the first, min, max and last (sorted)."""
    if n <= MAX_POINTS:
        return np.arange(n)
    edges = np.linspace(0, n, MAX_POINTS // 4 + 1).astype(np.int64)
    keep = [np.array([0, n - 1])]
    for a, b in zip(edges[:-1], edges[1:]):
        if b > a:
            seg = y[a:b]
            keep.append(np.array([a, b - 1, a + int(np.argmin(seg)), a + int(np.argmax(seg))]))
    return np.unique(np.concatenate(keep))


def _fig(rows: int = 1, height: float = 3.2, ratios: Sequence[float] | None = None) -> tuple[Figure, Any]:
    fig = Figure(figsize=(10, height), layout="constrained")
    FigureCanvasSVG(fig)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": ratios} if ratios else None)[:, 0]
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, axes


def render_svg(fig: Figure, key: str) -> str:
    """The figure as an inline ``<svg>`` element; ``key`` (letters, digits, '-') prefixes its ids."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", key):
        raise ValueError(f"key: got {key!r}; use letters, digits and '-' starting with a letter")
    buf = io.StringIO()
    with mpl.rc_context({"svg.hashsalt": f"tickguard-{key}", "svg.fonttype": "path",
                         "svg.image_inline": True}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "tickguard"})
    text = buf.getvalue()
    text = text[text.index("<svg"):]  # drop the XML declaration and DOCTYPE: not valid inside HTML
    return _ID.sub(lambda m: f"{m.group(1)}{key}-", text)


def equity_figure(ts: Any, equity: Any, initial: float) -> Figure:
    """Equity (currency) and drawdown (% below the running peak, initial cash included)."""
    t, v = np.asarray(ts, dtype=np.int64), np.asarray(equity, dtype=float)
    peak = np.maximum.accumulate(np.concatenate([[initial], v]))[1:]
    dd = np.divide(v, peak, out=np.ones_like(v), where=peak > 0) * 100.0 - 100.0
    fig, (a1, a2) = _fig(2, 4.2, (2.2, 1))
    i = _thin(len(v), v)
    a1.plot(_dt(t[i]), v[i], color=_LINE, lw=1)
    a1.axhline(initial, color="grey", lw=0.8, ls="--", label="initial cash")
    a1.set_ylabel("equity")
    a1.legend(loc="best", fontsize=8)
    j = _thin(len(dd), dd)
    a2.fill_between(_dt(t[j]), dd[j], 0.0, color=_LOSS, alpha=0.4, step="post", lw=0)
    a2.set_ylabel("drawdown %")
    a2.set_xlabel("time (UTC)")
    return fig


def exposure_figure(eq_ts: Any, gross: Any, net: Any, fill_ts: Any, fill_inst: Any,
                    fill_pos: Any) -> Figure:
    """Position (units, per instrument, after each fill) and gross/net exposure (currency)."""
    t = np.asarray(eq_ts, dtype=np.int64)
    g, n = np.asarray(gross, dtype=float), np.asarray(net, dtype=float)
    ft, fi, fp = (np.asarray(fill_ts, dtype=np.int64), np.asarray(fill_inst, dtype=np.int64),
                  np.asarray(fill_pos, dtype=float))
    fig, (a1, a2) = _fig(2, 4.2)
    span = np.concatenate([t, ft])
    if not len(span):
        raise ValueError("exposure_figure: no equity samples and no fills; nothing to draw")
    t0, t1 = int(span.min()), int(span.max())
    for k in np.unique(fi):
        m = fi == k
        x = np.concatenate([[t0], ft[m], [t1]])
        y = np.concatenate([[0.0], fp[m], [fp[m][-1]]])
        i = _thin(len(y), y)
        a1.step(_dt(x[i]), y[i], where="post", lw=1, label=f"instrument {int(k)}")
    if len(fi):
        a1.legend(loc="best", fontsize=8)
    a1.set_ylabel("position (units)")
    for y, label, c in ((g, "gross", "#756bb1"), (n, "net", "#fd8d3c")):
        i = _thin(len(y), y)
        a2.plot(_dt(t[i]), y[i], lw=1, label=label, color=c)
    a2.legend(loc="best", fontsize=8)
    a2.set_ylabel("exposure")
    a2.set_xlabel("time (UTC)")
    return fig


def pnl_histogram_figure(pnl: Any, var: float, es: float, level: float, bar: str) -> Figure:
    """Histogram of per-bar PnL (gains positive) with -VaR and -ES (positive losses) marked."""
    x = np.asarray(pnl, dtype=float)
    fig, (ax,) = _fig(1, 3.2)
    ax.hist(x, bins=min(100, max(10, int(np.sqrt(len(x))))), color=_LINE, alpha=0.75)
    ax.axvline(-var, color="#e6550d", lw=1.5, label=f"-VaR {level:.2%} = {-var:.6g}")
    ax.axvline(-es, color=_LOSS, lw=1.5, ls="--", label=f"-ES {level:.2%} = {-es:.6g}")
    ax.set_xlabel(f"PnL per {bar} bar (currency, gains positive)")
    ax.set_ylabel("bars")
    ax.legend(loc="best", fontsize=8)
    return fig


def rolling_var_figure(ts: Any, pnl: Any, var: Any, exceptions: Any) -> Figure:
    """Realized per-bar PnL against the rolling -VaR forecast; exceptions (PnL < -VaR) in red."""
    t, x, v = _dt(ts), np.asarray(pnl, dtype=float), np.asarray(var, dtype=float)
    hit = np.asarray(exceptions, dtype=bool)
    fig, (ax,) = _fig(1, 3.4)
    ax.plot(t, x, ".", ms=2, color="grey", label="realized PnL")
    ax.step(t, -v, where="mid", color="#e6550d", lw=1, label="-VaR forecast")
    ax.plot(t[hit], x[hit], "o", ms=4, color=_LOSS, label=f"exceptions ({int(hit.sum())})")
    ax.set_ylabel("PnL per bar")
    ax.set_xlabel("bar end (UTC)")
    ax.legend(loc="best", fontsize=8)
    return fig


def killswitch_figure(ts: Any, kind: Sequence[str], state: Sequence[str], t0: int, t1: int) -> Figure:
    """Kill-switch state over ``[t0, t1]`` (ns) from transitions/resets, denials as ticks below."""
    t = np.asarray(ts, dtype=np.int64)
    kinds, states = np.asarray(kind, dtype=object), np.asarray(state, dtype=object)
    fig, (ax,) = _fig(1, 2.6)
    moves = np.isin(kinds, ("transition", "reset"))
    lvl = np.array([_STATES.get(str(s), np.nan) for s in states[moves]], dtype=float)
    x = np.concatenate([[min(t0, t.min(initial=t0))], t[moves], [max(t1, t.max(initial=t1))]])
    y = np.concatenate([[0.0], lvl, [lvl[-1] if len(lvl) else 0.0]])
    ax.step(_dt(x), y, where="post", color=_LOSS, lw=1.5, label="kill-switch state")
    den = t[kinds == "denial"]
    if len(den):
        ax.plot(_dt(den), np.full(len(den), -0.6), "|", ms=8, color="black",
                label=f"denials ({len(den)})")
    ax.set_yticks([-0.6, 0, 1, 2], ["denial", "ACTIVE", "REDUCING", "HALTED"])
    ax.set_ylim(-1.0, 2.4)
    ax.set_xlabel("time (UTC)")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def fills_figure(ts: Any, mid: Any, price: Any, side: Any) -> Figure:
    """Fills at their price (buys green ^, sells red v) over the exchange mid at fill time."""
    t, m, p = _dt(ts), np.asarray(mid, dtype=float), np.asarray(price, dtype=float)
    s = np.asarray(side)
    fig, (ax,) = _fig(1, 3.4)
    ax.step(t, m, where="post", color="grey", lw=1, label="mid at fill time")
    ax.plot(t[s > 0], p[s > 0], "^", ms=5, color=_BUY, label=f"buys ({int((s > 0).sum())})")
    ax.plot(t[s < 0], p[s < 0], "v", ms=5, color=_SELL, label=f"sells ({int((s < 0).sum())})")
    ax.set_ylabel("price")
    ax.set_xlabel("exchange time (UTC)")
    ax.legend(loc="best", fontsize=8)
    return fig


def diagnostics_figure(fold: Any, metrics: dict[str, Any]) -> Figure:
    """Per-fold out-of-sample scores (accuracy as bars, others as markers) against chance (0.5)."""
    f = np.asarray(fold)
    fig, (ax,) = _fig(1, 3.0)
    ax.bar(f, np.asarray(metrics["accuracy"], dtype=float), color=_LINE, alpha=0.7, label="accuracy")
    for name, marker in (("balanced_accuracy", "o"), ("auc", "s")):
        if name in metrics:
            ax.plot(f, np.asarray(metrics[name], dtype=float), marker, color="black", ms=4, label=name)
    ax.axhline(0.5, color="grey", ls="--", lw=1, label="chance")
    ax.set_ylim(0.0, 1.0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("walk-forward fold")
    ax.set_ylabel("out-of-sample score")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def stress_heatmap_figure(values: Any, rows: Sequence[str], cols: Sequence[str]) -> Figure:
    """Heat map of PnL (currency) by scenario (rows) x strategy/params (columns); 0 is white."""
    z = np.asarray(values, dtype=float)
    span = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 0.0
    span = span if span > 0 else 1.0
    fig = Figure(figsize=(max(6.0, 1.1 * len(cols) + 3), max(2.5, 0.45 * len(rows) + 1.8)),
                 layout="constrained")
    FigureCanvasSVG(fig)
    ax = fig.subplots()
    mesh = ax.pcolormesh(np.ma.masked_invalid(z), cmap="RdYlGn",
                         norm=TwoSlopeNorm(vcenter=0.0, vmin=-span, vmax=span))
    ax.set_xticks(np.arange(len(cols)) + 0.5, list(cols), rotation=30, ha="right", fontsize=8)
    ax.set_yticks(np.arange(len(rows)) + 0.5, list(rows), fontsize=8)
    ax.invert_yaxis()
    if z.size <= 400:
        for (r, c), val in np.ndenumerate(z):
            if np.isfinite(val):
                ax.text(c + 0.5, r + 0.5, f"{val:.4g}", ha="center", va="center", fontsize=7,
                        color="white" if abs(val) > 0.6 * span else "black")  # readable on dark
    fig.colorbar(mesh, ax=ax, label="PnL")
    return fig
