"""Walk-forward ML benchmark: LinearSVC and MLP direction signals on synthetic ticks.

    python -m tickguard.benchmarks.ml_walkforward [--events N] [--train-size R] [--test-size R]

For each model the :class:`~tickguard.strategies.ml.WalkForwardClassifier` behind the
``svm_trend`` (``linear=True``: scaled LinearSVC) and ``mlp_trend`` plugins scores every test
block of a rolling walk-forward split of ``--events`` synthetic events (``synthesize(N,
seed=--seed)``, one instrument). Its ``verbose`` option draws the fold progress on stderr.

Printed per model: wall time of the whole call [s] (features, labels, every fit and every
scoring), the sum of the fit times, and per fold the training/evaluation rows, fit time [s],
accuracy and ROC AUC on the test rows whose label is known and non-zero. The summary pools those
rows over all folds: accuracy of ``sign(score)`` (ties to -1), balanced accuracy, AUC of the score,
and the base rate (share of the more frequent label: what always guessing it would score), so an
accuracy can be read against chance. Times are one run each, not best-of-k: a fold's fit is
seconds long and its noise is small beside that.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

__all__ = ["MODELS", "bench_model", "main", "pooled_summary", "run_benchmark"]

MODELS = ("svm", "mlp")  #: svm = scaled LinearSVC, mlp = scaled MLPClassifier(16 relu units)
_FOLD_COLUMNS = ["fold", "n_train", "n_eval", "fit_s", "accuracy", "auc", "converged"]


def _classifier(model: str, *, horizon: int, train_size: int, test_size: int, seed: int,
                progress: bool) -> Any:
    from tickguard.strategies.ml import mlp_trend, svm_trend

    common = dict(horizon=horizon, train_size=train_size, test_size=test_size,
                  random_state=seed, verbose=progress)
    if model == "svm":
        return svm_trend(linear=True, C=0.1, **common).target
    if model == "mlp":
        return mlp_trend(hidden=(16,), max_iter=200, **common).target
    raise ValueError(f"model must be one of {MODELS}, got {model!r}")


def pooled_summary(oos: pd.DataFrame) -> dict[str, float]:
    """Accuracy figures over every scored test row with a known non-zero label (see the module
    docstring); NaN where undefined (no rows, or one class only for balanced accuracy / AUC)."""
    rows = oos[np.isfinite(oos["label"]) & (oos["label"] != 0)]
    label, score = rows["label"].to_numpy(), rows["score"].to_numpy()
    pred = np.where(score > 0, 1.0, -1.0)
    both = len(np.unique(label)) == 2
    return {
        "n_eval": float(len(rows)),
        "accuracy": float(np.mean(pred == label)) if len(rows) else np.nan,
        "balanced_accuracy": float(balanced_accuracy_score(label, pred)) if both else np.nan,
        "auc": float(roc_auc_score(label, score)) if both else np.nan,
        "base_rate": float(max(np.mean(label > 0), np.mean(label < 0))) if len(rows) else np.nan,
    }


def bench_model(model: str, events: np.ndarray, *, horizon: int = 20, train_size: int = 20_000,
                test_size: int = 50_000, seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Run one model walk-forward over ``events``: ``{"model", "wall_s", "fit_s", "folds"
    (DataFrame, one row per fold), "summary" (see :func:`pooled_summary`)}``."""
    clf = _classifier(model, horizon=horizon, train_size=train_size, test_size=test_size,
                      seed=seed, progress=progress)
    t0 = time.perf_counter()
    clf(events)
    wall = time.perf_counter() - t0
    folds = clf.fold_report()
    return {"model": model, "wall_s": wall, "fit_s": float(folds["fit_s"].sum()),
            "folds": folds.reindex(columns=_FOLD_COLUMNS), "summary": pooled_summary(clf.oos_)}


def run_benchmark(n_events: int, *, seed: int = 0, horizon: int = 20, train_size: int = 20_000,
                  test_size: int = 50_000, models: Sequence[str] = MODELS,
                  progress: bool = True) -> dict[str, Any]:
    """Synthesize ``n_events`` (seeded) and run :func:`bench_model` for each model."""
    from tickguard.data.synth import synthesize

    if isinstance(n_events, bool) or not isinstance(n_events, (int, np.integer)) or n_events < 1:
        raise ValueError(f"n_events must be an int >= 1, got {n_events!r}")
    t0 = time.perf_counter()
    events, _ = synthesize(int(n_events), seed=seed)
    synth_s = time.perf_counter() - t0
    results = [bench_model(m, events, horizon=horizon, train_size=train_size, test_size=test_size,
                           seed=seed, progress=progress) for m in models]
    return {"events": int(n_events), "synth_s": synth_s, "results": results}


def _print(report: dict[str, Any]) -> None:
    print(f"ml walk-forward: {report['events']} synthetic events "
          f"(synthesized in {report['synth_s']:.1f} s)")
    for res in report["results"]:
        folds = res["folds"]
        print(f"\n== {res['model']}: wall {res['wall_s']:.2f} s, fits {res['fit_s']:.2f} s "
              f"over {len(folds)} folds")
        with pd.option_context("display.width", 120, "display.max_rows", 500):
            print(folds.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        s = res["summary"]
        print(f"pooled: n_eval={int(s['n_eval'])} accuracy={s['accuracy']:.4f} "
              f"balanced={s['balanced_accuracy']:.4f} auc={s['auc']:.4f} "
              f"base_rate={s['base_rate']:.4f}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tickguard.benchmarks.ml_walkforward",
                                description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000, help="synthetic events (default 10**6)")
    p.add_argument("--seed", type=int, default=0, help="synthesizer and model seed (default 0)")
    p.add_argument("--horizon", type=int, default=20, help="label horizon [events] (default 20)")
    p.add_argument("--train-size", type=int, default=20_000, help="rows per training window")
    p.add_argument("--test-size", type=int, default=50_000, help="rows per test block")
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    p.add_argument("--no-progress", action="store_true", help="no fold progress on stderr")
    ns = p.parse_args(argv)
    try:
        report = run_benchmark(ns.events, seed=ns.seed, horizon=ns.horizon, train_size=ns.train_size,
                               test_size=ns.test_size, models=ns.models, progress=not ns.no_progress)
    except ValueError as exc:
        print(f"ml_walkforward: {exc}", file=sys.stderr)
        return 2
    _print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
