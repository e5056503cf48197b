"""MLflow tracking: run identity by ``run_key`` and a Logger that never blocks or crashes training.

``MLflowLogger`` implements ``emorl.logging.Logger``. Calls only enqueue; one background thread sends
metrics with ``MlflowClient.log_batch`` (a synchronous ``log_metric`` costs ~70 ms through a server), and
params, images and artifacts as they come. When the server is unreachable the thread keeps everything
queued and retries; if it is still unreachable at ``close``, the undelivered records are written to a
local spool file (JSON lines) that ``replay_spool`` delivers later. Nothing is lost, nothing raises.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# The background thread does its own retrying; MLflow's default HTTP retries (7, exponential) would only
# hide an outage from it for minutes. Set before mlflow builds its HTTP sessions; explicit values win.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")

from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

MAX_METRICS_PER_BATCH = 1000  # MLflow's log_batch limits
MAX_PARAMS_PER_BATCH = 100
MAX_PARAM_LENGTH = 6000
STATUSES = ("FINISHED", "FAILED", "KILLED")


def local_tracking_uri(root: str | Path) -> str:
    """The embedded SQLite store ``<root>/mlflow.db`` as a URI (mlflow 3 refuses plain file stores)."""
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}"


class TrackingUnavailable(RuntimeError):
    """The tracking store cannot be reached; the message says which and how to fix it."""


def ensure_experiment(tracking_uri: str, name: str, client: MlflowClient | None = None) -> str:
    """The experiment's id, creating it if needed. Safe when a grid's jobs start together. With an embedded
    SQLite store its artifacts go next to the database file (``<root>/mlartifacts``), not into ``./mlruns``
    of whatever the working directory is."""
    client = client or MlflowClient(tracking_uri)
    try:
        experiment = client.get_experiment_by_name(name)
    except MlflowException as exc:
        reason = str(exc).splitlines()[0][:300]
        raise TrackingUnavailable(
            f"the MLflow tracking store {tracking_uri} cannot be reached ({reason}); start the server "
            "(docker/docker-compose.yml, or `mlflow server --host 127.0.0.1`) or use tracking=local"
        ) from exc
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if tracking_uri.startswith("sqlite:///"):
        location = (Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:
        # Jobs of one grid start together: another may have created the experiment since the lookup.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def find_run(run_key: str, experiment: str, tracking_uri: str | None = None) -> str | None:
    """The id of the newest run in ``experiment`` tagged ``run_key``, or None."""
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = client.search_runs(
        [found.experiment_id],
        filter_string=f"tags.run_key = '{run_key}'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return runs[0].info.run_id if runs else None


RUN_RECORD = "mlflow_run.json"  # in a run's output folder: which MLflow run it reports to


def recorded_run(output_dir: str | Path, tracking_uri: str) -> str | None:
    """The run id recorded in ``output_dir`` for this tracking store, or None."""
    try:
        record = json.loads((Path(output_dir) / RUN_RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record.get("run_id") if record.get("tracking_uri") == tracking_uri else None


def open_run(
    tracking_uri: str,
    experiment_name: str,
    run_key: str,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    output_dir: str | Path | None = None,
) -> str:
    """The run of this training: the one recorded in ``output_dir`` (a resume, even with a longer
    ``training.iters``), else the one tagged ``run_key``, else a new one. A found run is set RUNNING
    again; the choice is recorded in ``output_dir``. Returns the run id."""
    client = MlflowClient(tracking_uri)
    experiment_id = ensure_experiment(tracking_uri, experiment_name, client)
    all_tags = {"run_key": run_key, **{key: str(value) for key, value in (tags or {}).items()}}
    run_id = (output_dir and recorded_run(output_dir, tracking_uri)) or find_run(
        run_key, experiment_name, tracking_uri
    )
    if run_id is None:
        run_id = client.create_run(experiment_id, tags=all_tags, run_name=run_name).info.run_id
    else:
        client.update_run(run_id, status="RUNNING")
        for key, value in all_tags.items():
            client.set_tag(run_id, key, value)
    if output_dir is not None:
        record = {"tracking_uri": tracking_uri, "experiment": experiment_name, "run_id": run_id}
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        temporary = Path(output_dir) / f".{RUN_RECORD}.tmp"
        temporary.write_text(json.dumps(record, indent=2))
        temporary.replace(Path(output_dir) / RUN_RECORD)
    return run_id


@dataclass
class _Pending:
    """Records not yet accepted by the server, in the order they were logged."""

    metrics: list[Metric] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    tags: list[RunTag] = field(default_factory=list)
    artifacts: list[tuple[str, str | None]] = field(default_factory=list)
    status: str | None = None

    def empty(self) -> bool:
        return not (self.metrics or self.params or self.tags or self.artifacts or self.status)


class MLflowLogger:
    """Batched, non-blocking MLflow logging for one run (create it on rank 0 only)."""

    def __init__(
        self,
        tracking_uri: str,
        run_id: str,
        *,
        spool_dir: str | Path | None = None,
        flush_interval_s: float = 2.0,
        retry_interval_s: float = 5.0,
    ):
        self.tracking_uri, self.run_id = tracking_uri, run_id
        self.spool_dir = Path(spool_dir) if spool_dir else None
        self.flush_interval_s, self.retry_interval_s = flush_interval_s, retry_interval_s
        self._client = MlflowClient(tracking_uri)
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._pending = _Pending()
        self._logged_params: set[str] = set()
        self._image_dir = Path(tempfile.mkdtemp(prefix="emorl-mlflow-images-"))
        self._closed = False
        self._lock = threading.Lock()  # one of delivery or spooling touches the pending records at a time
        self._abandoned = threading.Event()
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="mlflow-logger", daemon=True)
        self._thread.start()

    # -- Logger protocol: every call only enqueues ------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        fresh = {key: value for key, value in params.items() if key not in self._logged_params}
        self._logged_params.update(fresh)
        records = [Param(key, str(value)[:MAX_PARAM_LENGTH]) for key, value in fresh.items()]
        self._queue.put(("params", records))

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        self._queue.put(("metrics", [Metric(key, float(value), now, step) for key, value in metrics.items()]))

    def log_image(self, key: str, image: np.ndarray, step: int) -> None:
        from PIL import Image

        path = self._image_dir / f"{key.replace('/', '_')}_{step:08d}.png"
        Image.fromarray(image).save(path)
        self._queue.put(("artifacts", [(str(path), f"images/{key.rsplit('/', 1)[0]}")]))

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._queue.put(("tags", [RunTag(key, str(value)) for key, value in tags.items()]))

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self._queue.put(("artifacts", [(str(path), artifact_path)]))

    def close(self, status: str = "FINISHED", timeout_s: float = 120.0) -> None:
        """Deliver everything (waiting up to ``timeout_s``), then end the run with ``status``."""
        if status not in STATUSES:
            raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
        if self._closed:
            return
        self._closed = True
        self._queue.put(("status", status))
        self._queue.put(("stop", None))
        self._thread.join(timeout_s)
        if self._thread.is_alive() or not self._pending.empty():
            self._abandoned.set()
            with self._lock:
                self._spool()

    # -- background delivery ----------------------------------------------------------------------
    def _run(self) -> None:
        stopping = False
        while True:
            deadline = time.monotonic() + self.flush_interval_s
            while True:
                try:
                    kind, payload = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if kind == "stop":
                    stopping = True
                    break
                self._take(kind, payload)
            with self._lock:
                if self._abandoned.is_set():
                    return
                delivered = self._deliver()
            if stopping and delivered:
                return
            if not delivered:
                self._abandoned.wait(self.retry_interval_s)

    def _take(self, kind: str, payload: Any) -> None:
        if kind == "metrics":
            self._pending.metrics.extend(payload)
        elif kind == "params":
            self._pending.params.extend(payload)
        elif kind == "tags":
            self._pending.tags.extend(payload)
        elif kind == "artifacts":
            self._pending.artifacts.extend(payload)
        elif kind == "status":
            self._pending.status = payload

    def _deliver(self) -> bool:
        """Send what is pending, oldest first; keep whatever the server did not take. True if all went."""
        pending = self._pending
        try:
            while pending.params:
                self._send_params(pending.params[:MAX_PARAMS_PER_BATCH])
                del pending.params[:MAX_PARAMS_PER_BATCH]
            while pending.metrics:
                self._client.log_batch(self.run_id, metrics=pending.metrics[:MAX_METRICS_PER_BATCH])
                del pending.metrics[:MAX_METRICS_PER_BATCH]
            while pending.tags:
                self._client.log_batch(self.run_id, tags=pending.tags[:MAX_PARAMS_PER_BATCH])
                del pending.tags[:MAX_PARAMS_PER_BATCH]
            while pending.artifacts:
                local_path, artifact_path = pending.artifacts[0]
                if Path(local_path).is_dir():
                    self._client.log_artifacts(self.run_id, local_path, artifact_path)
                else:
                    self._client.log_artifact(self.run_id, local_path, artifact_path)
                pending.artifacts.pop(0)
                if Path(local_path).parent == self._image_dir:
                    Path(local_path).unlink(missing_ok=True)
            if pending.status is not None:
                self._client.set_terminated(self.run_id, status=pending.status)
                pending.status = None
        except Exception as exc:  # the server is down or refused: keep the records and retry later
            if self.last_error is None:
                print(f"MLflow unreachable ({type(exc).__name__}); buffering and retrying", file=sys.stderr)
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False
        if self.last_error is not None:
            print("MLflow reachable again; buffered records delivered", file=sys.stderr)
            self.last_error = None
        return True

    def _send_params(self, params: list[Param]) -> None:
        """Params are write-once in MLflow: on a resumed run, a changed value (e.g. ``training.iters``)
        is refused (HTTP 400); the others are still sent one by one, and the refused ones reported."""
        try:
            self._client.log_batch(self.run_id, params=params)
            return
        except MlflowException as exc:
            if not _refused(exc):
                raise
        for param in params:
            try:
                self._client.log_batch(self.run_id, params=[param])
            except MlflowException as exc:
                if not _refused(exc):
                    raise
                print(
                    f"MLflow kept the earlier value of param {param.key!r} ({exc.message})", file=sys.stderr
                )

    def _spool(self) -> None:
        """Write what could not be delivered to ``<spool_dir>/<run_id>.jsonl`` for ``replay_spool``."""
        while True:
            try:
                kind, payload = self._queue.get_nowait()
            except queue.Empty:
                break
            if kind != "stop":
                self._take(kind, payload)
        directory = self.spool_dir or Path(tempfile.gettempdir()) / "emorl-mlflow-spool"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.run_id}.jsonl"
        pending = self._pending
        with path.open("a") as spool:
            for metric in pending.metrics:
                record = {"metric": metric.key, "value": metric.value, "timestamp": metric.timestamp}
                spool.write(json.dumps({**record, "step": metric.step}) + "\n")
            for param in pending.params:
                spool.write(json.dumps({"param": param.key, "value": param.value}) + "\n")
            for tag in pending.tags:
                spool.write(json.dumps({"tag": tag.key, "value": tag.value}) + "\n")
            for local_path, artifact_path in pending.artifacts:
                spool.write(json.dumps({"artifact": local_path, "artifact_path": artifact_path}) + "\n")
            if pending.status is not None:
                spool.write(json.dumps({"status": pending.status}) + "\n")
        print(
            f"MLflow at {self.tracking_uri} unreachable ({self.last_error}); undelivered records saved to "
            f"{path}; deliver them later with `python -m orchestration.tracking replay {path} "
            f"--tracking-uri {self.tracking_uri}`",
            file=sys.stderr,
        )


def _refused(exc: MlflowException) -> bool:
    """The server answered and said no (4xx): retrying would not help, unlike an outage."""
    return 400 <= exc.get_http_status_code() < 500


def replay_spool(path: str | Path, tracking_uri: str) -> int:
    """Deliver a spool file written by ``MLflowLogger`` to its run; returns the number of records sent."""
    path = Path(path)
    run_id = path.stem
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    client = MlflowClient(tracking_uri)
    metrics = [Metric(r["metric"], r["value"], r["timestamp"], r["step"]) for r in records if "metric" in r]
    params = [Param(r["param"], r["value"]) for r in records if "param" in r]
    tags = [RunTag(r["tag"], r["value"]) for r in records if "tag" in r]
    for start in range(0, len(params), MAX_PARAMS_PER_BATCH):
        client.log_batch(run_id, params=params[start : start + MAX_PARAMS_PER_BATCH])
    for start in range(0, len(tags), MAX_PARAMS_PER_BATCH):
        client.log_batch(run_id, tags=tags[start : start + MAX_PARAMS_PER_BATCH])
    for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + MAX_METRICS_PER_BATCH])
    for record in records:
        if "artifact" in record:
            client.log_artifact(run_id, record["artifact"], record["artifact_path"])
        if "status" in record:
            client.set_terminated(run_id, status=record["status"])
    path.rename(path.with_suffix(".jsonl.delivered"))
    return len(records)


def run_status(run_id: str, tracking_uri: str) -> str:
    """The run's status as MLflow reports it (RUNNING, FINISHED, FAILED, KILLED, ...)."""
    status = MlflowClient(tracking_uri).get_run(run_id).info.status
    return status if isinstance(status, str) else RunStatus.to_string(status)


def main(argv: list[str] | None = None) -> int:
    """``python -m orchestration.tracking replay SPOOL.jsonl --tracking-uri URI``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m orchestration.tracking")
    commands = parser.add_subparsers(dest="command", required=True)
    replay = commands.add_parser("replay", help="deliver a spool file of undelivered records")
    replay.add_argument("spool", type=Path)
    replay.add_argument("--tracking-uri", required=True)
    args = parser.parse_args(argv)
    sent = replay_spool(args.spool, args.tracking_uri)
    print(f"delivered {sent} records from {args.spool}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
