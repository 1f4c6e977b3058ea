"""Walk-forward splits with purging and embargo for labels that look ``horizon`` rows ahead.

Rows are positions in one instrument's stream (0..n-1). Test blocks are laid out from the start:
the first begins at ``first_test = train_size + horizon + embargo`` and each covers ``test_size``
rows (the last may be shorter). For the block starting at ``s`` the training rows are
``[start, s - horizon - embargo)`` with ``start = 0`` (expanding) or ``s - horizon - embargo -
train_size`` (rolling).

Purge: the label of row ``t`` uses the mid at ``t + horizon``; the last training row is
``s - horizon - embargo - 1``, so every training label's horizon ``[t, t + horizon]`` ends before
``s - embargo``: no label reaches into the test block, and ``embargo`` extra rows separate them
(a guard against serial correlation between the last training labels and the first test rows).
Since a block's split depends only on its start, the splits of a prefix are the splits of the
whole series cut at the prefix: predictions made this way are causal.

The layout matches :class:`sklearn.model_selection.TimeSeriesSplit` with ``gap = horizon +
embargo`` (and ``max_train_size = train_size`` when rolling) whenever ``n - first_test`` is a
multiple of ``test_size``; TimeSeriesSplit anchors its blocks at the end of the data instead,
which would make earlier folds depend on later data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

__all__ = ["WalkForward"]


@dataclass(frozen=True)
class WalkForward:
    """Walk-forward splitter (all sizes in rows of the stream; see the module docstring)."""

    train_size: int
    test_size: int
    horizon: int
    embargo: int = 0
    expanding: bool = False

    def __post_init__(self) -> None:
        for name, low in (("train_size", 1), ("test_size", 1), ("horizon", 0), ("embargo", 0)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < low:
                raise ValueError(f"WalkForward.{name} must be an int >= {low}, got {v!r}")
        if not isinstance(self.expanding, bool):
            raise TypeError(f"WalkForward.expanding must be a bool, got {self.expanding!r}")

    @property
    def first_test(self) -> int:
        """Row where the first test block starts (no prediction before it)."""
        return self.train_size + self.horizon + self.embargo

    def test_starts(self, n: int) -> np.ndarray:
        """Start row of every test block for a stream of ``n`` rows."""
        return np.arange(self.first_test, max(self._n(n), self.first_test), self.test_size, dtype=np.int64)

    def get_n_splits(self, n: int) -> int:
        return len(self.test_starts(n))

    def train_range(self, test_start: int) -> tuple[int, int]:
        """``(start, stop)`` of the training rows for the block starting at ``test_start``."""
        stop = int(test_start) - self.horizon - self.embargo
        return (0 if self.expanding else max(0, stop - self.train_size)), stop

    def split(self, n: int | np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train_idx, test_idx)`` int64 arrays; ``n`` is a row count or an array of rows."""
        n = self._n(n)
        for s in self.test_starts(n):
            a, b = self.train_range(int(s))
            yield np.arange(a, b, dtype=np.int64), np.arange(s, min(s + self.test_size, n), dtype=np.int64)

    @staticmethod
    def _n(n: int | np.ndarray) -> int:
        if hasattr(n, "__len__"):
            return len(n)  # type: ignore[arg-type]
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a row count >= 0 or an array, got {n!r}")
        return int(n)
