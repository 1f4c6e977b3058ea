"""`tickguard run CONFIG.toml`: validation messages, durations, and real runs from configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tickguard.reports.cli import main
from tickguard.reports.run_config import ConfigError, load_run_config, parse_duration_ns

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LOBSTER = Path(__file__).resolve().parents[3] / "shared" / "data" / "lobster"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, ns", [("100us", 100_000), ("1.5s", 1_500_000_000), ("5min", 300_000_000_000),
                                      ("250", None), (250, 250), ("2ms", 2_000_000), ("1h", 3_600_000_000_000)])
def test_durations(text, ns):
    if ns is None:
        with pytest.raises(ValueError, match="number and a unit"):
            parse_duration_ns(text)
    else:
        assert parse_duration_ns(text) == ns


def test_negative_duration_refused():
    with pytest.raises(ValueError, match=">= 0"):
        parse_duration_ns(-5)


@pytest.mark.parametrize("body, message", [
    ('[strategy]\nname = "ema_crossover"\n[engine]\nseeed = 1\n', r"\[engine\] unknown key 'seeed'; did you mean 'seed'\?"),
    ('[strategy]\nnam = "ema_crossover"\n', r"\[strategy\] unknown key 'nam'; did you mean 'name'\?"),
    ('[strategy]\nname = "ema_crossover"\n[engine.latency]\nentry = "5 parsecs"\n', r"engine.latency.entry: got '5 parsecs'"),
    ('[strategy]\nname = "ema_crossover"\n[engine]\nqueue_model = "optimistic"\n', r"\[engine\] EngineConfig.queue_model: got 'optimistic'"),
    ('[strategy]\nname = "ema_crossover"\n[engine]\nmax_requests_per_instant = 0\n',
     r"\[engine\] EngineConfig.max_requests_per_instant: got 0; use an int > 0"),
    ('[strategy]\nname = "ema_crossover"\n[data]\npath = "nowhere.parquet"\n', r"\[data\] path: .*nowhere.parquet does not exist"),
    ('[strategy]\nname = "ema_crossover"\n[data]\nsample = "x"\nsynth = {events = 5}\n', r"\[data\] give one source"),
    ('[strategy]\nname = "ema_crossover"\n[engine.fees]\ntaker_bsp = 1\n', r"\[engine.fees\] unknown key 'taker_bsp'; did you mean 'taker_bps'\?"),
    ('[strategy]\n', r"\[strategy\] name: missing"),
    ('[strategies]\nname = "x"\n', r"\[top level\] unknown key 'strategies'; did you mean 'strategy'\?"),
    ('[strategy\n', r"not valid TOML"),
])
def test_config_errors_name_the_key_and_the_fix(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message):
        load_run_config(_write(tmp_path, body))


def test_strategy_param_errors_are_config_errors(tmp_path):
    cfg = load_run_config(_write(tmp_path, '[strategy]\nname = "ema_crossover"\nparams = {fastt = 5}\n'))
    with pytest.raises(ConfigError, match=r"\[strategy\] params \{'fastt': 5\} do not fit 'ema_crossover'"):
        cfg.build_strategy()
    cfg = load_run_config(_write(tmp_path, '[strategy]\nname = "ema_crossover"\nparams = {fast = 300}\n'))
    with pytest.raises(ConfigError, match=r"need 0 < fast < slow, got fast=300"):
        cfg.build_strategy()
    cfg = load_run_config(_write(tmp_path, '[strategy]\nname = "ema_crosover"\n'))
    with pytest.raises(ConfigError, match=r"did you mean 'ema_crossover'"):
        cfg.build_strategy()


def test_engine_table_reaches_engine_config(tmp_path):
    cfg = load_run_config(_write(tmp_path, """
[strategy]
name = "ema_crossover"
[engine]
initial_cash = 5000
sample_dt = "250ms"
max_requests_per_instant = 500
latency = { entry = "30us", response = "70us", cancel = { entry = "10us", response = "20us" } }
fees = { maker_bps = -0.1, taker_bps = 0.25 }
[output]
dir = "out"
"""))
    e = cfg.engine
    assert e.initial_cash == 5000 and e.sample_dt_ns == 250_000_000
    assert e.max_requests_per_instant == 500
    assert (e.latency.submit.entry_ns, e.latency.submit.response_ns) == (30_000, 70_000)
    assert (e.latency.cancel.entry_ns, e.latency.cancel.response_ns) == (10_000, 20_000)
    assert e.latency.modify is None
    assert (e.fees.maker_bps, e.fees.taker_bps) == (-0.1, 0.25)
    assert cfg.out == tmp_path / "out"


def test_cli_refuses_flags_beside_a_config(tmp_path, capsys):
    assert main(["run", str(EXAMPLES / "ema_demo.toml"), "--seed", "3"]) == 2
    assert "--seed cannot be combined with a config file" in capsys.readouterr().err


def test_cli_bad_config_exit_2(tmp_path, capsys):
    assert main(["run", str(_write(tmp_path, "[strategy]\nnam = 1\n"))]) == 2
    assert "did you mean 'name'" in capsys.readouterr().err


def test_demo_config_runs_and_writes_metrics(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["run", str(EXAMPLES / "ema_demo.toml"), "--out", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert (out / "report.html").stat().st_size > 10_000  # the report is written by default
    summary = json.loads((out / "summary.json").read_text())
    assert summary["inputs"]["strategy_params"] == {"fast": 50, "slow": 200, "size": 1}
    assert summary["config"]["latency"]["submit"]["entry_ns"] == 100_000
    assert summary["metrics"]["n_fills"] == summary["fills"]
    # the same config run twice gives the same hash
    assert main(["run", str(EXAMPLES / "ema_demo.toml"), "--out", str(tmp_path / "again"), "--quiet",
                 "--no-report"]) == 0
    again = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert again["result_hash"] == summary["result_hash"]


@pytest.mark.skipif(not LOBSTER.exists(), reason="the shared LOBSTER sample is not beside the repository")
def test_lobster_config_runs_on_real_data(tmp_path, capsys):
    out = tmp_path / "lob"
    assert main(["run", str(EXAMPLES / "lobster_ema.toml"), "--out", str(out), "--json", "--no-report"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["events"] == 57_515  # every LOBSTER message row becomes one event
    assert summary["fills"] > 0 and summary["metrics"]["n_fills"] == summary["fills"]


def test_signal_strategy_runs_from_a_file_path(tmp_path, capsys):
    # a SignalStrategy needs the whole stream: the engine loads the file into memory for it
    out = tmp_path / "svm"
    assert main(["run", "--strategy", "svm_trend", "--out", str(out), "--quiet", "--no-report"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["strategy"].startswith("svm_trend") and summary["events"] == 50_000
    assert summary["fills"] > 0


def test_synth_source_runs(tmp_path):
    path = _write(tmp_path, '[data]\nsynth = { events = 3000, seed = 4 }\n[strategy]\nname = "ema_crossover"\n'
                  'params = { fast = 5, slow = 20 }\n[output]\ndir = "o"\n')
    assert main(["run", str(path), "--quiet", "--no-report"]) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["events"] == 3000 and summary["inputs"]["data"] == {"synth": {"events": 3000, "seed": 4}}


def test_risk_table_names_the_rulebook_and_refuses_what_cannot_run(tmp_path):
    from tickguard.risk.inloop import DEFAULT_RULEBOOK

    head = '[strategy]\nname = "ema_crossover"\n'
    cfg = load_run_config(_write(tmp_path, head))
    assert cfg.rulebook is None and cfg.build_risk() is None  # no [risk]: no gate
    cfg = load_run_config(_write(tmp_path, head + '[risk]\nrulebook = "default"\nspecialize = true\n'))
    assert cfg.rulebook == DEFAULT_RULEBOOK and cfg.specialize
    gate = cfg.build_risk()
    assert gate.specialize and gate.rulebook.ids[0] == "fat-finger-qty"
    (tmp_path / "mine.toml").write_text('[[rule]]\nid = "q"\nmetric = "max_order_qty"\nscope = "all"\n'
                                        'threshold = 3\naction = "deny"\n')
    cfg = load_run_config(_write(tmp_path, head + '[risk]\nrulebook = "mine.toml"\n'))
    assert cfg.rulebook == tmp_path / "mine.toml" and not cfg.specialize
    assert cfg.build_risk().rulebook.ids == ("q",)
    for body, message in [
        ('[risk]\nrulebok = "default"\n', r"\[risk\] unknown key 'rulebok'; did you mean 'rulebook'"),
        ('[risk]\nspecialize = true\n', r"\[risk\] rulebook: missing"),
        ('[risk]\nrulebook = "nowhere.toml"\n',
         r"\[risk\] rulebook: .*nowhere.toml does not exist; give \"default\" \(the shipped rulebook\) or the path"),
        ('[risk]\nrulebook = 3\n', r"\[risk\] rulebook: got 3; use \"default\" or a TOML path"),
        ('[risk]\nrulebook = "default"\nspecialize = "yes"\n', r"\[risk\] specialize: got 'yes'; use true or false"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_run_config(_write(tmp_path, head + body))
    # a rulebook that loads as a file but not as rules: refused when the gate is built, naming [risk]
    (tmp_path / "bad.toml").write_text('[[rule]]\nid = "x"\nmetric = "max_order_size"\nscope = "all"\n'
                                       'threshold = 3\naction = "deny"\n')
    cfg = load_run_config(_write(tmp_path, head + '[risk]\nrulebook = "bad.toml"\n'))
    with pytest.raises(ConfigError, match=r"\[risk\] rulebook 'bad.toml': .*max_order_size"):
        cfg.build_risk()


def test_the_risk_example_config_loads_its_rulebook():
    cfg = load_run_config(EXAMPLES / "ema_risk.toml")
    gate = cfg.build_risk()
    assert cfg.rulebook.name == "default.toml" and not cfg.specialize
    assert "fat-finger-qty" in gate.rulebook.ids and "operator-kill" in gate.rulebook.ids
