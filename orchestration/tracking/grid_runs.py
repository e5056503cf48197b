"""A grid's runs read back from MLflow (by run_key, in the order they were created), and the grid's own
table run.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow.entities import RunData
from mlflow.tracking import MlflowClient

from orchestration.tracking.store import ensure_experiment

PROGRESS_METRICS = ("train/total_loss", "train/nll")  # the step of the latest of these is the run's step


@dataclass(frozen=True)
class TrackedRun:
    """The MLflow side of one run, found by its run_key tag."""

    run_id: str
    run_key: str
    status: str  # MLflow: RUNNING, SCHEDULED, FINISHED, FAILED, KILLED
    metrics: dict[str, float]
    tags: dict[str, str]
    step: int | None = None  # the latest logged training step (of the progress metric)


def tracked_runs(uri: str, experiment: str, grid: str) -> dict[str, TrackedRun]:
    """All MLflow runs of ``grid`` in ``experiment`` by run_key, oldest first (empty for a new experiment)."""
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return {}
    runs: dict[str, TrackedRun] = {}
    token = None
    while True:
        page = client.search_runs(
            [found.experiment_id],
            filter_string=f"tags.grid = '{grid}'",
            max_results=5000,
            order_by=["attributes.start_time ASC"],  # creation order: the grid's order of submission
            page_token=token,
        )
        for run in page:
            key = run.data.tags.get("run_key")
            if key:
                runs[key] = TrackedRun(
                    run.info.run_id, key, run.info.status, run.data.metrics, run.data.tags, _step(run.data)
                )
        token = page.token
        if not token:
            return runs


def _step(data: RunData) -> int | None:
    """The step of the progress metric: MLflow keeps each metric's value at its highest step."""
    steps = {metric.key: metric.step for metric in data.to_proto().metrics}
    return next((steps[name] for name in PROGRESS_METRICS if name in steps), None)


def log_table(uri: str, experiment: str, grid: str, table: str, fmt: str) -> str:
    """Attach the table to the grid's own MLflow run (tag ``grid_table``; no run_key, so never aggregated)."""
    client = MlflowClient(tracking_uri=uri)
    experiment_id = ensure_experiment(uri, experiment, client)
    runs = client.search_runs([experiment_id], filter_string=f"tags.grid_table = '{grid}'", max_results=1)
    run_id = (
        runs[0].info.run_id
        if runs
        else client.create_run(
            experiment_id, run_name=f"{grid} (table)", tags={"grid_table": grid}
        ).info.run_id
    )
    extension = {"markdown": "md", "latex": "tex", "csv": "csv"}[fmt]
    client.log_text(run_id, table + "\n", f"tables/{grid}.{extension}")
    client.set_terminated(run_id, "FINISHED")
    return run_id
