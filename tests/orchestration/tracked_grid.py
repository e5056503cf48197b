"""A grid's runs written into a real MLflow store, as the grid task would leave them, for table tests."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from mlflow.tracking import MlflowClient


@dataclass(frozen=True)
class ToyRun:
    cell: str
    labels: dict[str, str]
    seed: int
    status: str  # FINISHED, FAILED, RUNNING, or MISSING (asked, never started)
    metrics: dict[str, float] = field(default_factory=dict)
    diagnosis: str | None = None
    dataset: str = "tetrominoes"
    key: str | None = None  # the run_key; default <cell>-<seed>

    @property
    def run_key(self) -> str:
        return self.key or f"{self.cell}-{self.seed}"


def log_grid(uri: str, experiment: str, grid: str, runs: list[ToyRun], history_steps: int = 0) -> None:
    """Create the runs (all but MISSING ones) in ``experiment``, tagged as the grid task tags them."""
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    for toy in runs:
        if toy.status == "MISSING":
            continue
        tags = {"grid": grid, "run_key": toy.run_key, "cell_key": toy.cell, "seed": str(toy.seed)}
        tags.update({f"label.{axis}": value for axis, value in toy.labels.items()})
        if toy.diagnosis:
            tags["diagnosis"] = toy.diagnosis
        run_id = client.create_run(experiment_id, tags=tags).info.run_id
        client.log_param(run_id, "data.name", toy.dataset)
        for step in range(history_steps):
            client.log_metric(run_id, "train/nll", 100.0 / (step + 1), step=step)
        for name, value in toy.metrics.items():
            client.log_metric(run_id, name, value, step=history_steps)
        if toy.status != "RUNNING":
            client.set_terminated(run_id, toy.status)


def asked(runs: list[ToyRun]) -> pd.DataFrame:
    """The grid's asked runs, as ``orchestration.aggregate.asked_runs`` gives them from RunSpecs."""
    return pd.DataFrame(
        [
            {
                "run_key": toy.run_key,
                "cell_key": toy.cell,
                "seed": toy.seed,
                "dataset": toy.dataset,
                **toy.labels,
            }
            for toy in runs
        ]
    )
