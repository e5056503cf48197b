"""A grid's runs read back from MLflow (by run_key, in the order they were created), and the grid's own
table run.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestration.tracking import rest
from orchestration.tracking.store import ensure_experiment, find_experiment

if TYPE_CHECKING:  # imported where used: status.py reads a server's runs without the mlflow package
    from mlflow.tracking import MlflowClient

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
    """All MLflow runs of ``grid`` in ``experiment`` by run_key, oldest first (empty for a new experiment).
    A server is searched over its REST API directly where it can be (``rest``), else through mlflow."""
    filter_string = f"tags.grid = '{grid}'"
    order_by = ["attributes.start_time ASC"]  # creation order: the grid's order of submission
    found = None
    if rest.serves(uri):
        with contextlib.suppress(rest.RestUnavailable):  # the mlflow client tries again, and says why
            found = list(rest.search_runs(uri, experiment, filter_string, order_by))
    if found is None:
        found = list(_search_with_client(uri, experiment, filter_string, order_by))
    runs = [_from_json(run) for run in found]
    return {run.run_key: run for run in runs if run.run_key}


def _search_with_client(uri: str, experiment: str, filter_string: str, order_by: list[str]) -> Iterator[Any]:
    """``rest.search_runs`` through the mlflow client: the same runs, as the same REST API JSON."""
    from mlflow.tracking import MlflowClient
    from mlflow.utils.proto_json_utils import message_to_json

    client = MlflowClient(tracking_uri=uri)
    experiment_found = find_experiment(uri, experiment, client)
    if experiment_found is None:
        return
    token = None
    while True:
        page = client.search_runs(
            [experiment_found.experiment_id],
            filter_string=filter_string,
            max_results=5000,
            order_by=order_by,
            page_token=token,
        )
        for run in page:
            yield json.loads(message_to_json(run.to_proto()))
        token = page.token
        if not token:
            return


def _from_json(run: dict[str, Any]) -> TrackedRun:
    """A run as the REST API's JSON gives it (int64 fields may come as strings, NaN as "NaN")."""
    info, data = run["info"], run.get("data", {})
    metrics = data.get("metrics", [])
    tags = {tag["key"]: tag.get("value", "") for tag in data.get("tags", [])}

    def moment(name: str) -> int | None:
        return int(info[name]) if info.get(name) not in (None, "") else None

    return TrackedRun(
        info["run_id"],
        tags.get("run_key", ""),
        info["status"],
        {metric["key"]: float(metric["value"]) for metric in metrics},
        tags,
        {param["key"]: param.get("value", "") for param in data.get("params", [])},
        moment("start_time"),
        moment("end_time"),
        step=_step({metric["key"]: int(metric.get("step", 0)) for metric in metrics}),
    )


def _step(steps: dict[str, int]) -> int | None:
    """The step of the progress metric (MLflow keeps each metric's value at its highest step)."""
    return next((steps[name] for name in PROGRESS_METRICS if name in steps), None)


History = dict[str, list[tuple[int, float]]]  # metric -> [(step, value)] in step order


def metric_histories(
    uri: str, runs: Iterable[tuple[str, int | None]], keys: Sequence[str], cache_dir: str | Path | None = None
) -> dict[str, History]:
    """The history of each of ``keys`` (empty where not logged) of each ``(run_id, end_time)``, by run id.
    A run that has ended is read once: its histories are kept in ``cache_dir`` under its run id and end
    time, so a run that changes (resumed, ended again) is read again."""
    cache = Path(cache_dir) if cache_dir is not None else None
    clients: list[MlflowClient] = []  # made on the first read that the cache cannot answer
    making = threading.Lock()

    def client() -> MlflowClient:
        with making:
            if not clients:
                from mlflow.tracking import MlflowClient

                clients.append(MlflowClient(tracking_uri=uri))
        return clients[0]

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
            key: sorted((m.step, m.value) for m in client().get_metric_history(run_id, key))
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


SETTLE_S = 2.0  # longer than a create_run request takes: a run stamped earlier has landed by then


def grid_table_run(uri: str, experiment: str, grid: str, client: MlflowClient | None = None) -> str:
    """The id of ``grid``'s table run (tag ``grid_table``), created once even when many processes ask at
    once: each creates one if it finds none, and all keep the oldest (by its client-side start time), the
    others deleting their own. A run stamped earlier may land later, so the oldest is only trusted once it
    is ``SETTLE_S`` old."""
    from mlflow.tracking import MlflowClient

    client = client or MlflowClient(tracking_uri=uri)
    experiment_id = ensure_experiment(uri, table_experiment(experiment), client)

    def oldest() -> tuple[str, int] | None:
        runs = client.search_runs(
            [experiment_id], filter_string=f"tags.grid_table = '{grid}'", max_results=100
        )
        ranked = sorted(runs, key=lambda run: (run.info.start_time, run.info.run_id))
        return (ranked[0].info.run_id, ranked[0].info.start_time) if ranked else None

    found = oldest()
    mine = None
    if found is None:
        mine = client.create_run(experiment_id, run_name=f"{grid} · tables", tags={"grid_table": grid})
        found = (mine.info.run_id, mine.info.start_time)
    age = time.time() - found[1] / 1000
    if age < SETTLE_S:
        time.sleep(SETTLE_S - age)
        found = oldest() or found
    if mine is not None and found[0] != mine.info.run_id:
        client.delete_run(mine.info.run_id)
    return found[0]


@dataclass(frozen=True)
class TableRun:
    """The grid's table run: its id, and where to open it (the UI's page for a server, else the id)."""

    run_id: str
    where: str


def log_tables(
    uri: str, experiment: str, grid: str, folder: str | Path, summary: str | None = None
) -> TableRun:
    """Attach every file in ``folder`` to the grid's table run (artifacts ``tables/``) and, with a Markdown
    ``summary``, show it (and a link to that run) as the description of the grid's experiment."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    run_id = grid_table_run(uri, experiment, grid, client)
    client.log_artifacts(run_id, str(folder), "tables")
    client.set_terminated(run_id, "FINISHED")
    table_id = client.get_run(run_id).info.experiment_id
    where = f"{uri.rstrip('/')}/#/experiments/{table_id}/runs/{run_id}" if uri.startswith("http") else run_id
    if summary is not None:
        experiment_id = ensure_experiment(uri, experiment, client)
        note = f"{summary}\n\nAll formats and plots: the table run [{grid} · tables]({where}).\n"
        client.set_experiment_tag(experiment_id, "mlflow.note.content", note)
    return TableRun(run_id, where)
