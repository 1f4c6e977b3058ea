"""The placement-averaged benchmark: its summary by hand, its refusals, and a small run end to end."""

from __future__ import annotations

import json

import pytest

from tickguard.benchmarks import placement


def _child(engine: list[float], rulebook: list[float]) -> dict:
    best = {f"engine/{k}": t for k, t in enumerate(engine)}
    best.update({f"rulebook/{k}": t for k, t in enumerate(rulebook)})
    return {"best_s": best, "orders": 10, "result_hash": {}}


def test_the_summary_is_the_median_over_copies_then_over_processes_by_hand() -> None:
    # process 1: engine copies 80, 82, 84 ms (median 82), rulebook 100, 98, 104 (median 100):
    # 1 - 82/100 = 18 % lost; copy by copy 1 - 80/100, 1 - 82/98, 1 - 84/104.
    # process 2: engine 90, 85, 88 (median 88), rulebook 110, 100, 105 (median 105): 1 - 88/105.
    children = [_child([0.080, 0.082, 0.084], [0.100, 0.098, 0.104]),
                _child([0.090, 0.085, 0.088], [0.110, 0.100, 0.105])]
    out = placement.summarize(children, ["engine", "rulebook"], 3)
    first, second = out["children"]
    assert first["median_s"] == {"engine": 0.082, "rulebook": 0.100}
    assert first["lost"]["rulebook"] == pytest.approx(0.18, rel=1e-12)
    assert first["lost_per_copy"]["rulebook"] == pytest.approx([0.2, 1 - 82 / 98, 1 - 84 / 104], rel=1e-12)
    assert second["lost"]["rulebook"] == pytest.approx(1 - 88 / 105, rel=1e-12)
    # two processes: the median is their mean
    assert out["lost"]["rulebook"] == pytest.approx({"median": (0.18 + 1 - 88 / 105) / 2,
                                                     "min": 1 - 88 / 105, "max": 0.18}, rel=1e-12)


def test_a_summary_without_the_engine_build_is_refused() -> None:
    with pytest.raises(ValueError, match=r"need the engine build and at least one other, got \['rulebook'\]"):
        placement.summarize([_child([0.1], [0.1])], ["rulebook"], 1)


@pytest.mark.parametrize("name,kwargs", [("copies", {"copies": 0}), ("processes", {"processes": 0}),
                                         ("repeat", {"repeat": 0}), ("events", {"events": 10})])
def test_counts_below_their_minimum_are_refused_by_name_before_anything_compiles(name, kwargs) -> None:
    with pytest.raises(ValueError, match=f"placement: {name} must be >= "):
        placement.run(**kwargs)


def test_an_unknown_build_is_named() -> None:
    with pytest.raises(ValueError, match=r"unknown builds \['gate'\]"):
        placement.compile_copies(1, ["engine", "gate"])


def test_a_small_run_times_every_copy_of_every_build_and_writes_json(tmp_path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "p.json"
    assert placement.main(["--events", "20000", "--copies", "2", "--processes", "1", "--repeat", "1",
                           "--json", str(out)]) == 0
    fig = json.loads(out.read_text())
    assert fig["builds"] == ["engine", "rulebook"] and fig["copies"] == 2
    (child,) = fig["children"]
    assert sorted(child["best_s"]) == ["engine/0", "engine/1", "rulebook/0", "rulebook/1"]
    assert all(t > 0 for t in child["best_s"].values())
    assert fig["orders"] > 50  # the canonical strategy trades in 20 000 events
    lost = fig["lost"]["rulebook"]
    assert lost["min"] == lost["median"] == lost["max"] == child["lost"]["rulebook"]
    assert "of the engine's throughput lost (median of 1;" in capsys.readouterr().out


class _FakeRun:
    def __init__(self, result_hash: str, orders: int) -> None:
        self.result_hash, self.orders, self.timings = result_hash, [0] * orders, {"run": 0.1}


@pytest.mark.parametrize("fake,message", [
    # copy 1 of the rulebook build computes something else: not a copy
    (lambda risk, k: _FakeRun(f"{risk is None}{k if risk is not None else 0}", 5),
     r"copy \d of the rulebook build gave result hash .*copies must run the same code"),
    # the rulebook denies an order: it would time other work
    (lambda risk, k: _FakeRun(str(risk is None), 5 if risk is None else 4),
     r"the builds sent different orders \{'engine': 5, 'rulebook': 4\}"),
])
def test_copies_that_disagree_and_builds_that_send_other_orders_are_refused(monkeypatch, fake, message) -> None:  # noqa: ANN001
    from tickguard.benchmarks import engine

    monkeypatch.setattr(engine, "quote_workload", lambda n: None)
    monkeypatch.setattr(engine, "_engine_once", lambda ev, table, risk, code_copy=0: fake(risk, code_copy))
    with pytest.raises(RuntimeError, match=message):
        placement.time_copies(1000, 2, 1, ["engine", "rulebook"])
