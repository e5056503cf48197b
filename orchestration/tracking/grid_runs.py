"""A grid's runs read back from MLflow (by run_key, in the order they were created), and the grid's own
table run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

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
    params: dict[str, str] = field(default_factory=dict)
    start_time: int | None = None  # ms since the epoch
    end_time: int | None = None  # ms since the epoch; None while the run is open
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
                info, data = run.info, run.data
                runs[key] = TrackedRun(
                    info.run_id,
                    key,
                    info.status,
                    data.metrics,
                    data.tags,
                    data.params,
                    info.start_time,
                    info.end_time,
                    step=_step(data),
                )
        token = page.token
        if not token:
            return runs


def _step(data: RunData) -> int | None:
    """The step of the progress metric: MLflow keeps each metric's value at its highest step."""
    steps = {metric.key: metric.step for metric in data.to_proto().metrics}
    return next((steps[name] for name in PROGRESS_METRICS if name in steps), None)


History = dict[str, list[tuple[int, float]]]  # metric -> [(step, value)] in step order


def metric_histories(
    uri: str, runs: Iterable[tuple[str, int | None]], keys: Sequence[str], cache_dir: str | Path | None = None
) -> dict[str, History]:
    """The history of each of ``keys`` (empty where not logged) of each ``(run_id, end_time)``, by run id.
    A run that has ended is read once: its histories are kept in ``cache_dir`` under its run id and end
    time, so a run that changes (resumed, ended again) is read again."""
    client = MlflowClient(tracking_uri=uri)
    cache = Path(cache_dir) if cache_dir is not None else None

    def one(run: tuple[str, int | None]) -> tuple[str, History]:
        run_id, end_time = run
        path = cache / f"{run_id}-{end_time}.json" if cache is not None and end_time else None
        cached: History = {}
        if path is not None and path.is_file():
            cached = {
                key: [(int(s), float(v)) for s, v in points]
                for key, points in json.loads(path.read_text()).items()
            }
        fresh = {
            key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
            for key in keys
            if key not in cached
        }
        if path is not None and fresh:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.tmp")
            temporary.write_text(json.dumps({**cached, **fresh}))
            temporary.replace(path)
        merged = {**cached, **fresh}
        return run_id, {key: merged[key] for key in keys}

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(one, list(runs)))


def table_experiment(experiment: str) -> str:
    """The experiment of a grid's table runs: beside the training runs', so that comparing a grid's runs in
    the MLflow UI selects training runs only."""
    return f"{experiment}-tables"


def grid_table_run(uri: str, experiment: str, grid: str, client: MlflowClient | None = None) -> str:
    """The id of ``grid``'s table run (tag ``grid_table``), created once even when many processes ask at
    once: each creates one if it finds none, then all keep the oldest and the others delete their own."""
    client = client or MlflowClient(tracking_uri=uri)
    experiment_id = ensure_experiment(uri, table_experiment(experiment), client)

    def oldest() -> str | None:
        runs = client.search_runs(
            [experiment_id], filter_string=f"tags.grid_table = '{grid}'", max_results=100
        )
        ranked = sorted(runs, key=lambda run: (run.info.start_time, run.info.run_id))
        return ranked[0].info.run_id if ranked else None

    found = oldest()
    if found is not None:
        return found
    mine = client.create_run(
        experiment_id, run_name=f"{grid} · tables", tags={"grid_table": grid}
    ).info.run_id
    winner = oldest() or mine
    if winner != mine:
        client.delete_run(mine)
    return winner


def log_tables(uri: str, experiment: str, grid: str, folder: str | Path, summary: str | None = None) -> str:
    """Attach every file in ``folder`` to the grid's table run (artifacts ``tables/``) and, with a Markdown
    ``summary``, show it (and a link to that run) as the description of the grid's experiment."""
    client = MlflowClient(tracking_uri=uri)
    run_id = grid_table_run(uri, experiment, grid, client)
    client.log_artifacts(run_id, str(folder), "tables")
    client.set_terminated(run_id, "FINISHED")
    if summary is not None:
        experiment_id = ensure_experiment(uri, experiment, client)
        table_id = client.get_run(run_id).info.experiment_id
        where = (
            f"{uri.rstrip('/')}/#/experiments/{table_id}/runs/{run_id}" if uri.startswith("http") else run_id
        )
        note = f"{summary}\n\nAll formats and plots: the table run [{grid} · tables]({where}).\n"
        client.set_experiment_tag(experiment_id, "mlflow.note.content", note)
    return run_id
