"""The command line end to end: exit codes, messages, files written."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tickguard.data.loader import load
from tickguard.data.parquet_io import read_parquet
from tickguard.reports.cli import main

QUOTES = "time,bid,ask,bid_size,ask_size\n"


def _write(path, rows):
    path.write_text(QUOTES + "".join(rows))
    return path


def _good_rows(n=5):
    return [f"2024-01-02T14:30:0{i}Z,100.0{i},100.1{i},5,7\n" for i in range(n)]


def test_validate_bundled_samples_is_clean(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["data", "validate"]) == 0
    out = capsys.readouterr().out
    assert out.count(": OK") == 2 and "rows in                  50000" in out


def test_validate_broken_file_exit_1_names_row_field_and_quarantines(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rows = _good_rows()
    rows[2] = "2024-01-02T14:30:02Z,100.50,100.10,5,7\n"  # crossed: bid > ask
    src = _write(tmp_path / "q.csv", rows)
    code = main(["data", "validate", str(src), "--preset", "quotes", "--instrument", "0", "--json"])
    assert code == 1
    report = json.loads(capsys.readouterr().out)[0]
    assert report["rows_in"] == 5 and report["rows_accepted"] == 4 and report["rows_quarantined"] == 1
    assert report["counts_by_code"] == {"crossed_quote": 1}
    quarantined = (tmp_path / "q.csv.quarantine.csv").read_text().splitlines()
    assert len(quarantined) == 2 and quarantined[1].startswith("3,crossed_quote")


def test_validate_strict_missing_file_exit_2(tmp_path, capsys):
    assert main(["data", "validate", str(tmp_path / "nope.csv"), "--mode", "strict"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_convert_round_trip_and_strict_failure(tmp_path, capsys):
    src = _write(tmp_path / "q.csv", _good_rows())
    dst = tmp_path / "q.parquet"
    assert main(["data", "convert", str(src), str(dst), "--preset", "quotes", "--instrument", "0"]) == 0
    expected = load(src, preset="quotes", instrument=0).events
    assert read_parquet(dst).tobytes() == expected.tobytes()  # bytewise: NaN fields compare equal
    bad = _write(tmp_path / "bad.csv", _good_rows(2) + ["2024-01-02T14:30:09Z,abc,100.1,5,7\n"])
    assert main(["data", "convert", str(bad), str(tmp_path / "bad.parquet"), "--preset", "quotes",
                 "--instrument", "0"]) == 1
    err = capsys.readouterr().err
    assert "row 3" in err and "'abc'" in err and not (tmp_path / "bad.parquet").exists()


def test_synth_writes_exact_count(tmp_path):
    out = tmp_path / "s.parquet"
    assert main(["data", "synth", "--events", "1234", "--out", str(out), "--seed", "3"]) == 0
    assert len(read_parquet(out)) == 1234


def test_strategies_lists_builtin(capsys):
    assert main(["strategies"]) == 0
    assert "ema_crossover" in capsys.readouterr().out


def test_run_writes_records_and_is_deterministic(tmp_path, capsys):
    from tickguard.data.synth import synthesize
    from tickguard.data.parquet_io import write_parquet

    events, table = synthesize(20_000, seed=5)
    data = write_parquet(tmp_path / "ev.parquet", events, table)
    hashes = []
    for name in ("a", "b"):
        assert main(["run", "--data", str(data), "--out", str(tmp_path / name), "--json", "--no-report"]) == 0
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        hashes.append(summary["result_hash"])
        assert summary["events"] == 20_000 and summary["config"]["seed"] == 0
        for rec in ("order_events", "fills", "equity", "risk_events"):
            assert (tmp_path / name / f"{rec}.parquet").exists()
    capsys.readouterr()
    assert hashes[0] == hashes[1]


def _risk_run(tmp_path, name, risk_table):
    from tickguard.data.parquet_io import write_parquet
    from tickguard.data.synth import synthesize

    if not (tmp_path / "ev.parquet").exists():
        events, table = synthesize(20_000, seed=5)
        write_parquet(tmp_path / "ev.parquet", events, table)
    cfg = tmp_path / f"{name}.toml"
    cfg.write_text(f'[data]\npath = "ev.parquet"\n[strategy]\nname = "ema_crossover"\n{risk_table}'
                   f'[output]\ndir = "{name}"\n')
    assert main(["run", str(cfg), "--json", "--no-report"]) == 0
    return json.loads((tmp_path / name / "summary.json").read_text())


def test_run_config_risk_table_puts_the_rulebook_in_the_loop(tmp_path, capsys):
    # one rule: no order above half a lot, so every order the strategy sends (one lot) is denied
    (tmp_path / "tiny.toml").write_text('[[rule]]\nid = "half-lot"\nmetric = "max_order_qty"\n'
                                        'scope = "all"\nthreshold = 0.5\naction = "deny"\n')
    free = _risk_run(tmp_path, "free", "")
    gated = _risk_run(tmp_path, "gated", '[risk]\nrulebook = "tiny.toml"\n')
    capsys.readouterr()
    fills = pd.read_parquet(tmp_path / "free" / "fills.parquet")
    assert len(fills) > 0  # unguarded, the strategy trades
    risk = pd.read_parquet(tmp_path / "gated" / "risk_events.parquet")
    assert len(pd.read_parquet(tmp_path / "gated" / "fills.parquet")) == 0
    assert len(risk) > 0 and set(risk["rule_id"]) == {"half-lot"} and set(risk["kind"]) == {"denial"}
    assert (risk["observed"] == 1.0).all() and (risk["threshold"] == 0.5).all()
    assert gated["inputs"]["risk"] == {"rulebook": "tiny.toml", "specialize": False}
    assert "risk" not in free["inputs"] and gated["result_hash"] != free["result_hash"]


def test_run_config_specialize_gives_the_same_run(tmp_path, capsys):
    plain = _risk_run(tmp_path, "plain", '[risk]\nrulebook = "default"\n')
    special = _risk_run(tmp_path, "special", '[risk]\nrulebook = "default"\nspecialize = true\n')
    capsys.readouterr()
    assert special["inputs"]["risk"] == {"rulebook": "default", "specialize": True}
    assert special["result_hash"] == plain["result_hash"]
    for rec in ("order_events", "fills", "risk_events"):
        a = pd.read_parquet(tmp_path / "plain" / f"{rec}.parquet")
        b = pd.read_parquet(tmp_path / "special" / f"{rec}.parquet")
        pd.testing.assert_frame_equal(a, b)


def test_unknown_strategy_did_you_mean():
    with pytest.raises(KeyError, match="did you mean 'ema_crossover'"):
        main(["run", "--strategy", "ema_crosover"])


def test_run_rulebook_flag_without_config_runs_what_the_config_runs(tmp_path, monkeypatch, capsys):
    (tmp_path / "tiny.toml").write_text('[[rule]]\nid = "half-lot"\nmetric = "max_order_qty"\n'
                                        'scope = "all"\nthreshold = 0.5\naction = "deny"\n')
    by_config = _risk_run(tmp_path, "cfg", '[risk]\nrulebook = "tiny.toml"\n')
    monkeypatch.chdir(tmp_path)  # the flag's path is relative to the working directory
    assert main(["run", "--data", "ev.parquet", "--rulebook", "tiny.toml", "--out", "flag", "--json",
                 "--no-report"]) == 0
    capsys.readouterr()
    by_flag = json.loads((tmp_path / "flag" / "summary.json").read_text())
    assert by_flag["inputs"]["risk"] == by_config["inputs"]["risk"] == {"rulebook": "tiny.toml",
                                                                       "specialize": False}
    risk = pd.read_parquet(tmp_path / "flag" / "risk_events.parquet")
    assert len(risk) > 0 and set(risk["rule_id"]) == {"half-lot"}
    for rec in ("order_events", "fills", "risk_events", "equity"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "flag" / f"{rec}.parquet"),
                                      pd.read_parquet(tmp_path / "cfg" / f"{rec}.parquet"))


def test_run_rulebook_flag_default_and_specialize_echoed(tmp_path, monkeypatch, capsys):
    from tickguard.data.parquet_io import write_parquet
    from tickguard.data.synth import synthesize

    events, table = synthesize(5_000, seed=3)
    write_parquet(tmp_path / "ev.parquet", events, table)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--data", "ev.parquet", "--rulebook", "default", "--specialize", "--out", "s",
                 "--json", "--no-report"]) == 0
    capsys.readouterr()
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["inputs"]["risk"] == {"rulebook": "default", "specialize": True}


@pytest.mark.parametrize(("argv", "needles"), [
    (["--rulebook", "missing.toml"], ["--rulebook 'missing.toml'", "no such file", "\"default\""]),
    (["--specialize"], ["--specialize needs --rulebook", "--rulebook default"]),
    (["--rulebook", "bad.toml"], ["--rulebook 'bad.toml'", "odd", "maximum_order_qty"]),
])
def test_run_rulebook_flag_errors_name_the_flag_and_the_fix(tmp_path, monkeypatch, capsys, argv, needles):
    (tmp_path / "bad.toml").write_text('[[rule]]\nid = "odd"\nmetric = "maximum_order_qty"\n'
                                       'scope = "all"\nthreshold = 1\naction = "deny"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["run", *argv, "--out", "o", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tickguard run: ")
    for needle in needles:
        assert needle in err
    assert not (tmp_path / "o").exists()  # refused before anything ran


def test_run_rulebook_flag_with_a_config_is_refused(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[strategy]\nname = "ema_crossover"\n')
    assert main(["run", str(cfg), "--rulebook", "default", "--specialize"]) == 2
    assert "--rulebook, --specialize cannot be combined with a config file" in capsys.readouterr().err
