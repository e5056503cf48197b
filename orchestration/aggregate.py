"""Finished runs of a grid, from MLflow, into one tidy frame and a mean ± std (n) per cell."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from emorl.eval.results import DIAGNOSIS_TAG
from orchestration.tracking.grid_runs import tracked_runs

METRICS = ("eval/fg_ari", "eval/mse", "eval/kl")
LABEL_TAG = "label."  # tags label.<axis> = value name a run's cell in words


def grid_results(uri: str, experiment: str, grid: str, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """One row per FINISHED run of ``grid``: cell_key, seed, diagnosis, the axis labels and the metrics."""
    rows = []
    for run in tracked_runs(uri, experiment, grid).values():
        if run.status != "FINISHED":
            continue
        tags = run.tags.items()
        labels = {key[len(LABEL_TAG) :]: value for key, value in tags if key.startswith(LABEL_TAG)}
        row = {"cell_key": run.tags.get("cell_key"), "seed": int(run.tags.get("seed", -1)), **labels}
        row["diagnosis"] = run.tags.get(DIAGNOSIS_TAG)
        row.update({metric: run.metrics.get(metric, float("nan")) for metric in metrics})
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else ["cell_key", "seed", "diagnosis", *metrics])


def summarize(results: pd.DataFrame, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Mean, std (ddof=1, 0 for one seed) and n per cell; rows keep the cells' first-seen order."""
    if results.empty:
        return pd.DataFrame(columns=["cell_key", "n"])
    label_columns = [c for c in results.columns if c not in ("cell_key", "seed", "diagnosis", *metrics)]
    results = results.assign(collapsed=results.get("diagnosis") == "collapsed")
    grouped = results.groupby("cell_key", sort=False)
    summary = grouped[label_columns].first() if label_columns else pd.DataFrame(index=grouped.size().index)
    summary["n"] = grouped.size()
    summary["collapsed"] = grouped["collapsed"].sum().astype(int)
    for metric in metrics:
        if metric in results:
            summary[f"{metric}:mean"] = grouped[metric].mean()
            summary[f"{metric}:std"] = grouped[metric].std(ddof=1).fillna(0.0)
    return summary.reset_index()
