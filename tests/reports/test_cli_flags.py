"""``--quiet`` and ``--json`` on every ``tickguard`` command: silence, one JSON document, exit codes.

Each JSON answer is checked against an independent source: the file the command wrote (read back
with pyarrow or from disk), the rows we wrote ourselves, or the installed entry points.
"""

from __future__ import annotations

import argparse
import json
from importlib.metadata import entry_points

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tickguard.data.cli_common import JSON_HELP, QUIET_HELP
from tickguard.data.parquet_io import read_parquet, write_parquet
from tickguard.data.synth import synthesize, synthesize_to_parquet
from tickguard.reports.cli import build_parser, main

QUOTES = "time,bid,ask,bid_size,ask_size\n"
N_QUOTES = 5


def _quotes(path, bad_row=None):
    rows = [f"2024-01-02T14:30:0{i}Z,100.0{i},100.1{i},5,7\n" for i in range(N_QUOTES)]
    if bad_row is not None:
        rows[bad_row] = f"2024-01-02T14:30:0{bad_row}Z,100.50,100.10,5,7\n"  # crossed: bid > ask
    path.write_text(QUOTES + "".join(rows))
    return path


def _leaf_parsers(parser, path=()):
    """(command path, parser) of every command that takes no further subcommand."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for name, child in subs[0].choices.items():
        yield from _leaf_parsers(child, (*path, name))


@pytest.fixture(scope="module")
def events_file(tmp_path_factory):
    events, table = synthesize(20_000, seed=5)
    return write_parquet(tmp_path_factory.mktemp("ev") / "ev.parquet", events, table)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, events_file):
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(["run", "--data", str(events_file), "--out", str(out), "--quiet", "--no-report"]) == 0
    return out


@pytest.fixture(scope="module")
def pnl_csv(tmp_path_factory):
    x = np.random.default_rng(3).standard_t(4, 300) * 0.01
    x[7] = np.nan  # dropped and counted: a note on stderr that --quiet silences
    path = tmp_path_factory.mktemp("pnl") / "pnl.csv"
    pd.DataFrame({"pnl": x}).to_csv(path, index=False)
    return path


def test_every_command_has_both_flags_with_the_shared_help():
    leaves = dict(_leaf_parsers(build_parser()))
    assert {("data", "validate"), ("data", "convert"), ("data", "synth"), ("run",), ("report",),
            ("risk", "var"), ("risk", "backtest"), ("stress",), ("bench",), ("strategies",)} == set(leaves)
    for path, parser in leaves.items():
        helps = {o: a.help for a in parser._actions for o in a.option_strings if o in ("--quiet", "--json")}
        assert helps == {"--quiet": QUIET_HELP, "--json": JSON_HELP}, path


@pytest.mark.parametrize("argv", [
    ["data", "validate"], ["data", "convert", "a.csv", "b.parquet"], ["data", "synth", "--events", "1", "--out", "s.parquet"],
    ["run"], ["report", "runs"], ["risk", "var", "p.csv"], ["risk", "backtest", "p.csv"], ["stress", "g.toml"],
    ["bench"], ["strategies"],
])
def test_quiet_with_json_is_a_usage_error(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--quiet", "--json"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # refused before doing anything


@pytest.mark.parametrize("argv", [["stress", "g.toml"], ["bench", "--suite", "full"]])
def test_stress_and_bench_parse_each_flag(argv):
    quiet = build_parser().parse_args([*argv, "--quiet"])
    as_json = build_parser().parse_args([*argv, "--json"])
    assert (quiet.quiet, quiet.json, as_json.quiet, as_json.json) == (True, False, False, True)


def test_validate_quiet_prints_nothing_and_keeps_the_exit_code(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    good, bad = _quotes(tmp_path / "good.csv"), _quotes(tmp_path / "bad.csv", bad_row=2)
    opts = ["--preset", "quotes", "--instrument", "0", "--quiet"]
    assert main(["data", "validate", str(good), *opts]) == 0
    assert main(["data", "validate", str(bad), *opts]) == 1
    assert capsys.readouterr().out == ""
    assert len((tmp_path / "bad.csv.quarantine.csv").read_text().splitlines()) == 2  # header + row 3


def test_convert_quiet_json_and_text(tmp_path, capsys):
    src = _quotes(tmp_path / "q.csv")
    opts = ["--preset", "quotes", "--instrument", "0"]
    assert main(["data", "convert", str(src), str(tmp_path / "a.parquet"), *opts, "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert pq.ParquetFile(tmp_path / "a.parquet").metadata.num_rows == N_QUOTES
    dst = tmp_path / "b.parquet"
    assert main(["data", "convert", str(src), str(dst), *opts, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["src"], doc["dst"]) == (str(src), str(dst))
    assert doc["rows"] == doc["rows_in"] == pq.ParquetFile(dst).metadata.num_rows == N_QUOTES
    assert doc["rows_quarantined"] == 0 and doc["ok"] is True and doc["mode"] == "strict"


def test_convert_in_quarantine_mode_reports_the_rows_set_aside(tmp_path, capsys):
    src, side = _quotes(tmp_path / "q.csv", bad_row=1), tmp_path / "side.csv"
    argv = ["data", "convert", str(src), str(tmp_path / "q.parquet"), "--preset", "quotes", "--instrument",
            "0", "--mode", "quarantine", "--quarantine", str(side)]
    assert main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["rows"] == pq.ParquetFile(tmp_path / "q.parquet").metadata.num_rows == N_QUOTES - 1
    assert doc["rows_quarantined"] == len(side.read_text().splitlines()) - 1 == 1
    assert doc["counts_by_code"] == {"crossed_quote": 1} and doc["quarantine_path"] == str(side)


def test_convert_text_names_the_quarantined_rows(tmp_path, capsys):
    src, side = _quotes(tmp_path / "q.csv", bad_row=1), tmp_path / "side.csv"
    assert main(["data", "convert", str(src), str(tmp_path / "q.parquet"), "--preset", "quotes",
                 "--instrument", "0", "--mode", "quarantine", "--quarantine", str(side)]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == f"wrote {N_QUOTES - 1} events to {tmp_path / 'q.parquet'}; 1 row(s) quarantined to {side}"


def test_synth_quiet_and_json_match_the_file_written(tmp_path, capsys):
    quiet, loud = tmp_path / "q.parquet", tmp_path / "j.parquet"
    assert main(["data", "synth", "--events", "2000", "--out", str(quiet), "--seed", "4", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")
    assert pq.ParquetFile(quiet).metadata.num_rows == 2000
    assert main(["data", "synth", "--events", "2000", "--out", str(loud), "--seed", "4", "--instruments",
                 "2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"out": str(loud), "events": 2000, "seed": 4, "instruments": 2, "depth": 0}
    assert pq.ParquetFile(loud).metadata.num_rows == 2000
    assert sorted(set(read_parquet(loud)["instrument"].tolist())) == [0, 1]


def test_synth_streams_the_same_events_as_the_library_and_reports_progress(tmp_path, capsys):
    out = tmp_path / "s.parquet"
    assert main(["data", "synth", "--events", "1800", "--out", str(out), "--seed", "9", "--chunk-rows", "500"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"wrote 1800 synthetic events (seed 9) to {out}"
    assert [line.split(": ")[1] for line in captured.err.splitlines()] == [
        f"{n} of 1800 events written" for n in (500, 1000, 1500)]
    ref = synthesize_to_parquet(tmp_path / "ref.parquet", 1800, seed=9, chunk_rows=500)
    assert read_parquet(out).tobytes() == read_parquet(ref).tobytes()
    assert pq.ParquetFile(out).metadata.num_row_groups == 4  # one row group per streamed chunk
    assert main(["data", "synth", "--events", "1800", "--out", str(tmp_path / "t.parquet"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_synth_bad_seed_is_a_usage_error_not_a_traceback(tmp_path, capsys):
    assert main(["data", "synth", "--events", "10", "--out", str(tmp_path / "s.parquet"), "--seed", "-1"]) == 2
    assert "seed must be an int >= 0, got -1" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_run_quiet_is_silent_and_json_is_the_summary_file(events_file, tmp_path, capsys):
    quiet, loud = tmp_path / "q", tmp_path / "j"
    assert main(["run", "--data", str(events_file), "--out", str(quiet), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")
    assert (quiet / "summary.json").exists() and (quiet / "report.html").exists()
    assert main(["run", "--data", str(events_file), "--out", str(loud), "--json", "--no-report"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads((loud / "summary.json").read_text())


def test_report_quiet_and_json(run_dir, tmp_path, capsys):
    quiet = tmp_path / "q.html"
    assert main(["report", str(run_dir), "--out", str(quiet), "--quiet"]) == 0
    assert capsys.readouterr().out == "" and quiet.stat().st_size > 0
    page = tmp_path / "j.html"
    assert main(["report", str(run_dir), "--out", str(page), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"report": str(page), "run_dir": str(run_dir), "bytes": page.stat().st_size}
    assert page.read_text().lstrip().lower().startswith("<!doctype html")


@pytest.mark.parametrize("command", ["var", "backtest"])
def test_risk_quiet_prints_nothing_not_even_the_dropped_rows_note(command, pnl_csv, capsys):
    assert main(["risk", command, str(pnl_csv), "--window", "100", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")
    assert main(["risk", command, str(pnl_csv), "--window", "100"]) == 0
    assert "dropped 1 row(s) with NaN/inf" in capsys.readouterr().err  # the note silenced above


@pytest.mark.parametrize("command, count_key, expected", [("var", "n_obs", 100), ("backtest", "n_forecasts", 199)])
def test_risk_json_counts_match_the_rows_written(command, count_key, expected, pnl_csv, capsys):
    # 300 rows, one NaN: var uses the last 100; backtest forecasts every row after the first window
    assert main(["risk", command, str(pnl_csv), "--window", "100", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc[count_key] == expected and doc["dropped_nan"] == 1 and doc["window"] == 100
    assert pd.read_csv(pnl_csv)["pnl"].notna().sum() == 299


def test_strategies_json_is_the_entry_points_and_quiet_is_silent(capsys):
    assert main(["strategies", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == {ep.name: ep.value for ep in entry_points(group="tickguard.strategies")}
    assert doc["ema_crossover"] == "tickguard.strategies.ema_crossover:ema_crossover"
    assert main(["strategies", "--quiet"]) == 0
    assert capsys.readouterr().out == ""


def test_bench_quiet_writes_the_files_and_prints_nothing(tmp_path, monkeypatch, capsys):
    from tickguard.benchmarks import cli as bench_cli
    from tickguard.benchmarks import suite

    def fake_suite(params, *, workdir=None, peers=None, progress=None):  # the suite itself is slow
        progress("a progress line")
        return {"suite": "stand-in", "figure": 1.5}

    monkeypatch.setattr(suite, "run_suite", fake_suite)
    monkeypatch.setattr(bench_cli, "render_markdown", lambda res: f"# {res['suite']}\n")
    out = tmp_path / "b"
    assert main(["bench", "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")
    (js,) = out.glob("bench-quick-*.json")
    assert json.loads(js.read_text()) == {"suite": "stand-in", "figure": 1.5}
    assert js.with_suffix(".md").read_text() == "# stand-in\n"
    assert main(["bench", "--out", str(tmp_path / "c"), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"suite": "stand-in", "figure": 1.5}
    assert "a progress line" in captured.err and "wrote" in captured.err
