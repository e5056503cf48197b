"""A grid's runs from MLflow into one tidy frame (``collect``), and per cell the mean and std over seeds
with every seed that is not in them named (``aggregate``).

``collect`` gives one row per run: its ids, cell and seed, MLflow status, the collapse check's diagnosis,
the axis labels, the dataset, the evaluation metrics and the wall-clock hours. ``aggregate`` gives one row
per cell: how many seeds were asked, finished and averaged; mean and std (ddof=1) of each metric; the
seeds missing (never started), failed, running or collapsed; and the run ids behind the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from emorl.eval.results import DIAGNOSIS_TAG
from orchestration.run_spec import RunSpec
from orchestration.tracking.grid_runs import TrackedRun, tracked_runs

LABEL_TAG = "label."  # tags label.<axis> = value name a run's cell in words
DATASET_PARAM = "data.name"
WALL_CLOCK = "wall_clock_h"  # start to end of the MLflow run (training and evaluation), hours
RUN_COLUMNS = ("run_id", "run_key", "cell_key", "seed", "status", "end_time", DIAGNOSIS_TAG, "dataset")
SEED_LISTS = ("missing", "failed", "running", "collapsed")
FAILED = ("FAILED", "KILLED")
COLLAPSED = "collapsed"


def _is_metric(name: str) -> bool:
    return name.startswith("eval/") and not name.endswith("_std")


def run_row(run: TrackedRun) -> dict[str, object]:
    """One run as a row of the tidy frame."""
    labels = {key[len(LABEL_TAG) :]: value for key, value in run.tags.items() if key.startswith(LABEL_TAG)}
    row: dict[str, object] = {
        "run_id": run.run_id,
        "run_key": run.run_key,
        "cell_key": run.tags.get("cell_key"),
        "seed": int(run.tags.get("seed", -1)),
        "status": run.status,
        "end_time": run.end_time,
        DIAGNOSIS_TAG: run.tags.get(DIAGNOSIS_TAG),
        "dataset": run.params.get(DATASET_PARAM),
        **labels,
    }
    row.update({name: value for name, value in run.metrics.items() if _is_metric(name)})
    if run.status == "FINISHED" and run.start_time and run.end_time:
        row[WALL_CLOCK] = (run.end_time - run.start_time) / 3.6e6
    return row


def collect(uri: str, experiment: str, grid: str) -> pd.DataFrame:
    """Every run of ``grid`` (all statuses) in one paged MLflow search, one row each, oldest first."""
    rows = [run_row(run) for run in tracked_runs(uri, experiment, grid).values()]
    return pd.DataFrame(rows, columns=None if rows else list(RUN_COLUMNS))


def asked_runs(specs: Sequence[RunSpec]) -> pd.DataFrame:
    """The runs a grid asks for (cell, seed, labels, dataset), to tell missing seeds from absent cells."""
    rows = [
        {
            "run_key": spec.run_key,
            "cell_key": spec.cell_key,
            "seed": spec.seed,
            "dataset": spec.config.data.name,
            **spec.labels,
        }
        for spec in specs
    ]
    return pd.DataFrame(rows, columns=None if rows else ["run_key", "cell_key", "seed", "dataset"])


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """The metric columns of a tidy frame, in a stable order."""
    return [c for c in frame.columns if _is_metric(c) or c == WALL_CLOCK]


def label_columns(frame: pd.DataFrame) -> list[str]:
    """The columns that name a cell in words: the grid's axes, and the dataset."""
    fixed = {*RUN_COLUMNS, *metric_columns(frame)}
    return [c for c in frame.columns if c not in fixed] + (["dataset"] if "dataset" in frame else [])


def aggregate(
    runs: pd.DataFrame,
    asked: pd.DataFrame | None = None,
    include_collapsed: bool = True,
    bootstrap: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per cell (the grid's order): ``asked``, ``finished``, ``n`` (seeds in the mean), per metric
    ``<metric>:mean`` and ``<metric>:std`` (ddof=1; NaN for one seed), with ``bootstrap`` resamples also
    ``<metric>:ci_low``/``:ci_high`` (95 %); the seeds ``missing``, ``failed``, ``running`` and
    ``collapsed`` as lists; ``run_ids`` of the runs averaged. Without ``asked``, the runs found are asked."""
    metrics = metric_columns(runs)
    if asked is None:
        asked = runs[["run_key", "cell_key", "seed", *label_columns(runs)]]
    runs = runs.drop_duplicates("run_key", keep="last").set_index("run_key")
    labels = [c for c in label_columns(asked) if asked[c].notna().any()]
    rng = np.random.default_rng(seed)
    rows = []
    for cell_key, seeds in asked.groupby("cell_key", sort=False):
        row: dict[str, object] = {"cell_key": cell_key, **seeds.iloc[0][labels].to_dict()}
        lists: dict[str, list[int]] = {name: [] for name in SEED_LISTS}
        included = []
        for run_key, seed_number in zip(seeds["run_key"], seeds["seed"], strict=True):
            run = runs.loc[run_key] if run_key in runs.index else None
            if run is None:
                lists["missing"].append(int(seed_number))
            elif run["status"] in FAILED:
                lists["failed"].append(int(seed_number))
            elif run["status"] != "FINISHED":
                lists["running"].append(int(seed_number))
            else:
                collapsed = run.get(DIAGNOSIS_TAG) == COLLAPSED
                if collapsed:
                    lists["collapsed"].append(int(seed_number))
                if include_collapsed or not collapsed:
                    included.append(run)
        finished = len(seeds) - len(lists["missing"]) - len(lists["failed"]) - len(lists["running"])
        row.update(asked=len(seeds), finished=finished, n=len(included), **lists)
        row["run_ids"] = [run["run_id"] for run in included]
        for metric in metrics:
            values = np.array([run.get(metric, np.nan) for run in included], dtype=float)
            values = values[np.isfinite(values)]
            row[f"{metric}:mean"] = values.mean() if values.size else np.nan
            row[f"{metric}:std"] = values.std(ddof=1) if values.size > 1 else np.nan
            if bootstrap and values.size:
                means = rng.choice(values, size=(bootstrap, values.size)).mean(axis=1)
                row[f"{metric}:ci_low"], row[f"{metric}:ci_high"] = np.percentile(means, [2.5, 97.5])
        rows.append(row)
    return pd.DataFrame(rows)
