"""``tickguard bench --suite quick|full [--out DIR] [--json | --quiet]``: run the benchmark suite.

Writes ``bench-<suite>-<UTC time>.json`` (machine, versions, every figure) and the same name
``.md`` (the tables) into ``--out`` (default ``./tickguard_bench``), and prints the tables (with
``--json``: the JSON instead; with ``--quiet``: nothing, the files are still written). Progress
goes to stderr, silenced by ``--quiet``. Exit code 0 whatever the goals say (they are PASS / MISS
lines, not assertions); 2 for bad usage.

Also ``python -m tickguard.benchmarks.cli ...`` with the same arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from tickguard.benchmarks._measure import format_bytes
from tickguard.data.cli_common import add_output_flags, notice

__all__ = ["add_bench_parser", "main", "render_markdown", "run_bench_command"]


def add_bench_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``bench`` command to a ``parser.add_subparsers()`` object; returns its parser."""
    b = subparsers.add_parser("bench", help="benchmark suite: throughput, memory, compile time, peers",
                              description=__doc__.splitlines()[0])
    b.add_argument("--suite", choices=("quick", "full"), default="quick",
                   help="quick: under a minute, small sizes; full: every workload, 10**5..10**8 (default quick)")
    b.add_argument("--out", default="tickguard_bench",
                   help="folder for the JSON and markdown (default ./tickguard_bench)")
    add_output_flags(b)
    b.add_argument("--workdir", default=None,
                   help="cache folder for the generated Parquet files, kept between runs (default: a temporary folder)")
    b.add_argument("--peers", default=None,
                   help="comma-separated peers to run (hftbacktest,vectorbt,backtesting,backtrader), 'none' for "
                        "none (default: all)")
    return b


def _m(x: float | None) -> str:
    return "-" if x is None else f"{x / 1e6:.2f}"


def _s(x: float | None, nd: int = 3) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown pipe table: first and last columns left-aligned (text), the rest right-aligned."""
    cells = [[str(c).replace("|", "/") for c in r] for r in rows]
    align = ["---"] + ["--:"] * (len(headers) - 2) + ["---"]  # the last column is text
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join(lines)


def render_markdown(res: dict[str, Any]) -> str:
    """The suite's result as markdown: goals, then one table per section."""
    m, v = res["machine"], res["versions"]
    peers_v = ", ".join(f"{k} {v[k]}" for k in ("hftbacktest", "vectorbt", "backtesting", "backtrader") if v.get(k))
    out = [f"# tickguard benchmark suite: {res['suite']}",
           f"{res['started_utc']}, {res['wall_s']:.0f} s. Machine: {m['platform']}, {m['cpu_count']} CPUs "
           f"({m['cpu_usable']} usable), {format_bytes(m['mem_total_bytes'])}; Python {m['python']}, numpy "
           f"{m['numpy']}, numba {m['numba']}, pyarrow {m['pyarrow']}; peers: {peers_v or 'none installed'}.",
           *(f"- {n}" for n in res["notes"]), "", "## Goals"]
    for g in res["goals"]:
        meas = g["measured"]
        shown = "-" if meas is None else (f"{meas / 1e6:.1f} M/s" if meas > 100 else f"{meas:.3g}")
        out.append(f"- {g['status']}: {g['goal']} ({g['target']}): {shown}; {g['detail']}")
    out += ["", "## Workloads (in memory, M events/s)", _table(
        ["workload", "strategy", "events", "kernel M/s", "wall M/s", "orders", "fills", "status"],
        [[r["workload"], r["label"], r["events"], _m(r.get("events_per_s")), _m(r.get("wall_events_per_s")),
          r.get("orders", "-"), r.get("fills", "-"), r["status"]] for r in res["workloads"]])]
    ref = res["reference"]
    b, e, z, py = ref["bare_loop"], ref["engine"], ref["engine_zero_latency"], ref["python_loop"]
    out += ["", f"## Reference loops (l1_quotes, EMA 50/200, {ref['events']} events, same process)", _table(
        ["loop", "M events/s", "ratio to bare", "trades", "final position", "note"],
        [["bare numba loop", _m(b["events_per_s"]), "1.000", b["trades"], b["final_position"], "fills at the touch"],
         [e["loop"], _m(e["events_per_s"]), _s(ref["ratio_engine_to_bare"]), e["fills"], "-",
          f"wall {_m(e['wall_events_per_s'])} M/s"],
         ["tickguard engine (zero latency)", "-", "-", z["fills"], z["final_position"],
          f"agrees with bare: {z['agrees_with_bare']}"],
         [py["loop"], _m(py["events_per_s"]), _s(ref["ratio_python_to_bare"], 4), py["trades"], py["final_position"],
          f"{py['note']} (~{_s(py.get('extrapolated_seconds'), 1)} s for {ref['events']}); agrees with bare "
          f"on that prefix: {py['agrees_with_bare']}"]])]
    sc = res["scaling"]
    base = {r["strategy"]: r["peak_rss_bytes"] for r in sc if r["events"] == 10**6}
    out += ["", "## Scaling (l1_quotes streamed from Parquet, fresh process per size)", _table(
        ["strategy", "events", "file", "run s", "kernel M/s", "stream s", "stream M/s", "peak RSS", "vs 10^6",
         "fills"],
        [[r["strategy"], f"{r['events']:.0e}", format_bytes(r["file_bytes"]), _s(r["run_s"]), _m(r["events_per_s"]),
          _s(r["stream_s"]), _m(r["stream_events_per_s"]), format_bytes(r["peak_rss_bytes"]),
          _s(r["peak_rss_bytes"] / base[r["strategy"]], 2) if r["strategy"] in base else "-", r["fills"]]
         for r in sc])]
    c = res["compile"]
    out += ["", "## Compile time (fresh interpreter, strategy (b))",
            f"- cold (empty caches): {_s(c['cold_s'], 2)} s compile, {_s(c['cold_start_to_result_s'], 2)} s "
            "imports to result" if c["cold_s"] is not None else "- cold: not measured in this suite (full only)",
            f"- a second strategy (microprice) once the engine's kernels are cached: "
            f"{_s(c.get('new_strategy_s'), 2)} s compile" if c.get("new_strategy_s") is not None
            else "- a second strategy: not measured in this suite (full only)",
            f"- cached ({c['cache']}): {_s(c['cached_s'], 2)} s compile, {_s(c['cached_start_to_result_s'], 2)} s "
            "imports to result"]
    if res["peers"]:
        rows = []
        for r in res["peers"]:
            rows.append([r["peer"], r.get("version") or "-", r["events"], _s(r.get("setup_s"), 2),
                         _s(r.get("run_s")), _m(r.get("events_per_s")), _m(r["tickguard_wall_events_per_s"]),
                         f"{r.get('orders', '-')}/{r.get('fills', '-')}", r["bare_trades"],
                         {True: "yes", False: "NO", None: "-"}[r["trades_agree"]],
                         r["status"] if r["status"] != "ok" else "; ".join([r["convention"], *r["caveats"]])])
        out += ["", "## Peers (l1_quotes prefix, EMA 50/200 +-1; tickguard with zero latency on the same prefix)",
                _table(["peer", "version", "events", "setup s", "run s", "M events/s", "tickguard wall M/s",
                        "orders/fills", "bare trades", "trades agree", "conventions and caveats"], rows),
                "setup (import, data conversion aside, numba compilation in a warm-up) is not in run s; "
                "'trades agree': orders = bare-loop trades = tickguard fills, and every order filled or "
                "still pending when the data ended."]
    return "\n".join(out) + "\n"


def run_bench_command(ns: argparse.Namespace) -> int:
    """Run ``tickguard bench`` from parsed arguments; returns the exit code."""
    from tickguard.benchmarks.peers import PEERS
    from tickguard.benchmarks.suite import FULL, QUICK, run_suite

    peers: tuple[str, ...] | None = None
    if ns.peers is not None:
        peers = () if ns.peers.strip().lower() == "none" else tuple(p.strip() for p in ns.peers.split(",") if p.strip())
        unknown = sorted(set(peers) - set(PEERS))
        if unknown:
            print(f"tickguard bench: --peers: unknown {unknown}; use names from {sorted(PEERS)} or 'none'",
                  file=sys.stderr)
            return 2
    res = run_suite(FULL if ns.suite == "full" else QUICK, workdir=ns.workdir, peers=peers,
                    progress=lambda msg: notice(ns, msg))
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"bench-{ns.suite}-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
    text = json.dumps(res, indent=2, default=str)
    md = render_markdown(res)
    (out / f"{stem}.json").write_text(text + "\n")
    (out / f"{stem}.md").write_text(md)
    if not ns.quiet:
        print(text if ns.json else md)  # the very text of the files just written
    notice(ns, f"wrote {out / stem}.json and .md")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tickguard.benchmarks.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    add_bench_parser(sub)
    return run_bench_command(parser.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    sys.exit(main())
