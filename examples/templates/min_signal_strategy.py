"""The smallest signal strategy: long 1 unit while the mid is above its 500-event mean, else short.

    python examples/templates/min_signal_strategy.py     # runs on the bundled sample

``target(events)`` returns one target position [units] per event; it must be causal (row i may
use rows 0..i only) and NaN means "no opinion yet" (the engine leaves the position alone).
"""
from importlib.resources import files

import numpy as np
import pandas as pd

from tickguard.engine.strategy import SignalStrategy


def above_mean(events: np.ndarray) -> np.ndarray:
    mid = pd.Series((events["bid_px"] + events["ask_px"]) / 2.0).ffill()  # trades carry no quote
    mean = mid.rolling(500).mean()  # rows i-499..i: causal
    return np.sign(mid - mean).to_numpy()  # +1 / -1, NaN while warming up


if __name__ == "__main__":
    from tickguard.engine.backtest import run

    sample = str(files("tickguard.data.samples") / "synthetic_l1.parquet")
    result = run(sample, SignalStrategy(above_mean, name="above_mean"))
    for key, value in result.summary.items():
        print(f"{key:>14}: {value}")
