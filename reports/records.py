"""Write a run's records (Parquet) and summary (JSON) atomically into one folder.

Each file is written under a temporary name and renamed, and ``summary.json`` is written last, so a
folder with a summary is complete: a crash never leaves a half-written result that looks whole.
"""

from __future__ import annotations

import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["write_run"]


def _atomic_parquet(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".partial")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def write_run(result: Any, out_dir: str | os.PathLike[str], *, inputs: dict[str, Any] | None = None) -> Path:
    """Write orders/fills/equity/risk_events Parquet files and summary.json; returns the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stale = out / "summary.json"
    stale.unlink(missing_ok=True)  # the folder is incomplete until the new summary lands
    _atomic_parquet(result.order_events_df(), out / "order_events.parquet")
    _atomic_parquet(result.fills_df(), out / "fills.parquet")
    _atomic_parquet(result.equity_df(), out / "equity.parquet")
    _atomic_parquet(result.risk_events_df(), out / "risk_events.parquet")
    try:
        tg_version = version("tickguard")
    except PackageNotFoundError:
        tg_version = "unknown"
    from tickguard.reports.metrics import compute_metrics

    summary = {
        **result.summary,
        "metrics": compute_metrics(result),
        "tickguard_version": tg_version,
        "inputs": inputs or {},
        "config": result.config.describe(),
    }
    tmp = out / "summary.json.partial"
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str))
    os.replace(tmp, out / "summary.json")
    return out
