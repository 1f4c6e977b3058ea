"""Learned direction signals (SVM, MLP) fitted walk-forward, as :class:`SignalStrategy` plugins.

For each test block of a :class:`~tickguard.strategies.walkforward.WalkForward` split of one
instrument's stream, a fresh clone of a scikit-learn classifier is fitted on the block's purged
training rows (features from :mod:`tickguard.strategies.features`, dead-zone labels with label 0
and rows with a missing feature dropped) and scores every test row:

* ``score`` = ``decision_function`` when the model has one (SVMs), else ``2 * P(up) - 1`` (MLP);
  positive means "up".
* target = ``+lot`` if ``score > threshold``, ``-lot`` if ``score < -threshold``, else 0 (units).
* NaN ("no opinion": the engine leaves the position alone) before the first test block, on rows
  with a missing feature and on rows of other instruments; 0 (flat) for a block whose training set
  holds fewer than two classes.

Every training label ends before its test block starts, so the target at event i depends on
events 0..i only (tests prove it by prefix invariance).

Diagnostics per fold, on test rows whose label is known and non-zero (``pred = sign(score)``,
ties to -1): accuracy, balanced accuracy, ROC AUC of ``score`` (NaN if one class), the 2x2
confusion matrix for labels (-1, +1), whether the fit converged (scikit-learn's
``ConvergenceWarning`` is caught and reported here instead of raised). :meth:`fold_report` gives
them as a DataFrame; :attr:`WalkForwardClassifier.oos_` holds every scored row.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, roc_auc_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC

from tickguard.engine.strategy import SignalStrategy

from .features import FeatureConfig, direction_labels, stream_features, stream_index
from .walkforward import WalkForward

__all__ = ["WalkForwardClassifier", "mlp_pipeline", "mlp_trend", "svm_pipeline", "svm_trend"]

_REPORT_COLUMNS = [
    "fold", "train_start", "train_stop", "test_start", "test_stop", "n_train", "n_eval", "accuracy",
    "balanced_accuracy", "auc", "tn", "fp", "fn", "tp", "long_frac", "short_frac", "converged",
    "status", "fit_s",
]


def svm_pipeline(*, linear: bool = False, C: float = 1.0, gamma: str | float = "scale",
                 random_state: int = 0) -> Pipeline:
    """StandardScaler + SVC (RBF kernel) or LinearSVC."""
    model = (LinearSVC(C=C, random_state=random_state, max_iter=5000) if linear
             else SVC(C=C, kernel="rbf", gamma=gamma, random_state=random_state))
    return Pipeline([("scale", StandardScaler()), ("svm", model)])


def mlp_pipeline(*, hidden: tuple[int, ...] = (16,), alpha: float = 1e-3, max_iter: int = 300,
                 random_state: int = 0) -> Pipeline:
    """StandardScaler + MLPClassifier (adam, relu)."""
    model = MLPClassifier(hidden_layer_sizes=tuple(hidden), alpha=alpha, max_iter=max_iter,
                          random_state=random_state)
    return Pipeline([("scale", StandardScaler()), ("mlp", model)])


@dataclass
class WalkForwardClassifier:
    """The target function: ``clf(events) -> float64[n_events]`` (see the module docstring).

    Labels look ``splitter.horizon`` stream events ahead, the same horizon the splitter purges.

    Diagnostics of the latest call live on the object: :meth:`fold_report`, :attr:`oos_`,
    :attr:`confusion_` (one 2x2 array per fold).
    """

    estimator: Any
    splitter: WalkForward
    features: FeatureConfig = field(default_factory=FeatureConfig)
    label_threshold: float | None = None  #: dead zone in price units; None = half the spread
    threshold: float = 0.0  #: |score| a position needs
    lot: float = 1.0  #: position size [units]
    instrument: int = 0
    verbose: bool = False  #: one progress line on stderr per fold
    name: str = "walk_forward"
    folds_: list[dict[str, Any]] = field(default_factory=list, init=False, repr=False)
    confusion_: list[np.ndarray] = field(default_factory=list, init=False, repr=False)
    oos_: pd.DataFrame = field(default_factory=pd.DataFrame, init=False, repr=False)

    def __post_init__(self) -> None:
        if not hasattr(self.estimator, "fit"):
            raise TypeError(f"estimator must be a scikit-learn classifier (with fit), "
                            f"got {type(self.estimator).__name__}")
        if not isinstance(self.splitter, WalkForward):
            raise TypeError(f"splitter must be a WalkForward, got {type(self.splitter).__name__}")
        if self.splitter.horizon < 1:
            raise ValueError(f"splitter.horizon is the label horizon and must be >= 1 event, "
                             f"got {self.splitter.horizon!r}")
        if not (np.isfinite(self.threshold) and self.threshold >= 0):
            raise ValueError(f"threshold must be finite and >= 0, got {self.threshold!r}")
        if not (np.isfinite(self.lot) and self.lot > 0):
            raise ValueError(f"lot must be a finite position size > 0 (units), got {self.lot!r}")

    def _score(self, model: Any, X: np.ndarray) -> np.ndarray:
        if hasattr(model, "decision_function"):
            return np.asarray(model.decision_function(X), dtype=np.float64)
        proba = model.predict_proba(X)
        return 2.0 * proba[:, list(model.classes_).index(1)] - 1.0

    def __call__(self, events: np.ndarray) -> np.ndarray:
        idx = stream_index(events, self.instrument)
        feats = stream_features(events[idx], self.features)
        X = np.column_stack(list(feats.values()))
        y = direction_labels(events[idx], self.splitter.horizon, self.instrument, self.label_threshold)
        x_ok = np.isfinite(X).all(axis=1)
        y_ok = np.isfinite(y) & (y != 0)
        out = np.full(len(idx), np.nan)
        self.folds_, self.confusion_, oos = [], [], []
        n_splits = self.splitter.get_n_splits(len(idx))
        for k, (train, test) in enumerate(self.splitter.split(len(idx))):
            if self.verbose:
                print(f"\r{self.name}: fold {k + 1}/{n_splits}", end="", file=sys.stderr, flush=True)
            rows = train[x_ok[train] & y_ok[train]]
            rec: dict[str, Any] = {"fold": k, "train_start": int(train[0]) if len(train) else 0,
                                   "train_stop": int(train[-1]) + 1 if len(train) else 0,
                                   "test_start": int(test[0]), "test_stop": int(test[-1]) + 1,
                                   "n_train": len(rows)}
            if len(np.unique(y[rows])) < 2:
                out[test] = 0.0
                self.folds_.append({**rec, "status": "one_class", "n_eval": 0, "converged": True})
                self.confusion_.append(np.zeros((2, 2), dtype=np.int64))
                continue
            t0 = time.perf_counter()
            model = clone(self.estimator)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                model.fit(X[rows], y[rows])
            for w in caught:  # hand back anything that is not a convergence note
                if not issubclass(w.category, ConvergenceWarning):
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            rec["fit_s"] = time.perf_counter() - t0
            rec["converged"] = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
            live = test[x_ok[test]]
            score = self._score(model, X[live]) if len(live) else np.zeros(0)
            out[live] = np.where(score > self.threshold, self.lot,
                                 np.where(score < -self.threshold, -self.lot, 0.0))
            rec["long_frac"] = float(np.mean(score > self.threshold)) if len(live) else np.nan
            rec["short_frac"] = float(np.mean(score < -self.threshold)) if len(live) else np.nan
            ev = y_ok[live]
            rec.update(self._metrics(y[live][ev], score[ev]))
            self.folds_.append({**rec, "status": "ok"})
            oos.append(pd.DataFrame({"event": idx[live], "row": live, "fold": k, "label": y[live],
                                     "score": score, "pred": np.where(score > 0, 1.0, -1.0)}))
        if self.verbose and n_splits:
            print(file=sys.stderr)
        self.oos_ = (pd.concat(oos, ignore_index=True) if oos else
                     pd.DataFrame(columns=["event", "row", "fold", "label", "score", "pred"]))
        target = np.full(len(events), np.nan)
        target[idx] = out
        return target

    def _metrics(self, label: np.ndarray, score: np.ndarray) -> dict[str, Any]:
        pred = np.where(score > 0, 1.0, -1.0)
        cm = confusion_matrix(label, pred, labels=[-1.0, 1.0]) if len(label) else np.zeros((2, 2), int)
        self.confusion_.append(cm)
        both = len(np.unique(label)) == 2
        return {
            "n_eval": len(label),
            "accuracy": accuracy_score(label, pred) if len(label) else np.nan,
            "balanced_accuracy": balanced_accuracy_score(label, pred) if both else np.nan,
            "auc": roc_auc_score(label, score) if both else np.nan,
            "tn": int(cm[0, 0]), "fp": int(cm[0, 1]), "fn": int(cm[1, 0]), "tp": int(cm[1, 1]),
        }

    def fold_report(self) -> pd.DataFrame:
        """One row per fold (rows are stream positions; == event indices for one instrument)."""
        return pd.DataFrame(self.folds_, columns=_REPORT_COLUMNS)


def _strategy(clf: WalkForwardClassifier, lot_size: float) -> SignalStrategy:
    return SignalStrategy(target=clf, instrument=clf.instrument, lot_size=lot_size, name=clf.name)


def _common(instrument: int, lot: float, horizon: int, train_size: int, test_size: int, embargo: int,
            expanding: bool, threshold: float, label_threshold: float | None,
            features: FeatureConfig | None, verbose: bool, name: str, estimator: Any,
            lot_size: float) -> SignalStrategy:
    clf = WalkForwardClassifier(
        estimator=estimator,
        splitter=WalkForward(train_size, test_size, horizon, embargo, expanding),
        features=features or FeatureConfig(), label_threshold=label_threshold, threshold=threshold,
        lot=lot, instrument=instrument, verbose=verbose, name=name,
    )
    return _strategy(clf, lot_size)


def svm_trend(instrument: int = 0, lot: float = 1.0, horizon: int = 20, train_size: int = 3000,
              test_size: int = 1000, embargo: int = 0, expanding: bool = False, linear: bool = False,
              C: float = 1.0, gamma: str | float = "scale", threshold: float = 0.0,
              label_threshold: float | None = None, features: FeatureConfig | None = None,
              random_state: int = 0, verbose: bool = False, lot_size: float = 1.0) -> SignalStrategy:
    """SVM direction signal, walk-forward. ``strategy.target`` is the :class:`WalkForwardClassifier`
    (its ``fold_report()`` is filled by a run). Sizes in stream events; ``lot`` in units."""
    kind = "linear" if linear else "rbf"
    return _common(instrument, lot, horizon, train_size, test_size, embargo, expanding, threshold,
                   label_threshold, features, verbose, f"svm_trend({kind},h={horizon})",
                   svm_pipeline(linear=linear, C=C, gamma=gamma, random_state=random_state), lot_size)


def mlp_trend(instrument: int = 0, lot: float = 1.0, horizon: int = 20, train_size: int = 3000,
              test_size: int = 1000, embargo: int = 0, expanding: bool = False,
              hidden: tuple[int, ...] = (16,), alpha: float = 1e-3, max_iter: int = 300,
              threshold: float = 0.0, label_threshold: float | None = None,
              features: FeatureConfig | None = None, random_state: int = 0, verbose: bool = False,
              lot_size: float = 1.0) -> SignalStrategy:
    """MLP direction signal, walk-forward; score ``2 P(up) - 1``. See :func:`svm_trend`."""
    return _common(instrument, lot, horizon, train_size, test_size, embargo, expanding, threshold,
                   label_threshold, features, verbose, f"mlp_trend({'x'.join(map(str, hidden))},h={horizon})",
                   mlp_pipeline(hidden=hidden, alpha=alpha, max_iter=max_iter, random_state=random_state),
                   lot_size)
