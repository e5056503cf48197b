"""``MLflowLogger``: batched, non-blocking logging of one run that never blocks or crashes training.

It implements ``emorl.logging.Logger``. Calls only enqueue; one background thread sends metrics with
``MlflowClient.log_batch`` (a synchronous ``log_metric`` costs ~70 ms through a server), and params, images
and artifacts as they come. When the server is unreachable the thread keeps everything queued and retries;
if it is still unreachable at ``close``, the undelivered records go to a spool file (``spool``) that is
delivered later. A logger may also start without a run (the server was down when the job started): it then
opens the run itself once the server answers. Nothing is lost, nothing raises.
"""

from __future__ import annotations

import queue
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from orchestration.tracking.spool import MAX_METRICS_PER_BATCH, MAX_PARAMS_PER_BATCH, Pending, write_spool

if TYPE_CHECKING:
    from orchestration.tracking.runs import RunOpening

MAX_PARAM_LENGTH = 6000
STATUSES = ("FINISHED", "FAILED", "KILLED")


class MLflowLogger:
    """Batched, non-blocking MLflow logging for one run (create it on rank 0 only)."""

    def __init__(
        self,
        tracking_uri: str,
        run_id: str | None,
        *,
        opening: RunOpening | None = None,
        spool_dir: str | Path | None = None,
        flush_interval_s: float = 2.0,
        retry_interval_s: float = 5.0,
        logged_steps: Mapping[str, int] | None = None,
    ):
        """``logged_steps``: the last step each metric already has in the run (``runs.logged_steps``);
        metrics at or before it are dropped, so a run resumed from an older checkpoint (after a hard kill)
        never logs a step twice. ``run_id`` None: the run is opened with ``opening`` as soon as the server
        answers (then ``logged_steps`` come from the run itself)."""
        if run_id is None and opening is None:
            raise ValueError("MLflowLogger needs a run_id or an opening")
        self.tracking_uri, self.run_id, self.opening = tracking_uri, run_id, opening
        self._logged_steps = dict(logged_steps or {})
        self.spool_dir = Path(spool_dir) if spool_dir else None
        self.flush_interval_s, self.retry_interval_s = flush_interval_s, retry_interval_s
        self._client = MlflowClient(tracking_uri)
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._pending = Pending()
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
        fresh = [
            Metric(key, float(value), now, step)
            for key, value in metrics.items()
            if step > self._logged_steps.get(key, -1)
        ]
        if fresh:
            self._queue.put(("metrics", fresh))

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
            if self.run_id is None:
                self._attach()
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

    def _attach(self) -> None:
        """Open the run this logger was started without, and drop the steps it already has."""
        assert self.opening is not None
        run_id, steps = self.opening.open(self.tracking_uri)
        self._logged_steps = steps
        self._pending.metrics = [m for m in self._pending.metrics if m.step > steps.get(m.key, -1)]
        self.run_id = run_id
        print(f"MLflow reachable: training reports to run {run_id}", file=sys.stderr)

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
        """Write what could not be delivered to ``<spool_dir>/<run_id>.jsonl`` for ``replay_spool`` (named
        by run_key, headed by the opening, when the run was never opened)."""
        while True:
            try:
                kind, payload = self._queue.get_nowait()
            except queue.Empty:
                break
            if kind != "stop":
                self._take(kind, payload)
        directory = self.spool_dir or Path(tempfile.gettempdir()) / "emorl-mlflow-spool"
        if self.run_id is None:
            assert self.opening is not None
            path = directory / f"{self.opening.run_key}.jsonl"
            write_spool(path, self._pending, opening=self.opening.to_dict())
        else:
            path = directory / f"{self.run_id}.jsonl"
            write_spool(path, self._pending)
        print(
            f"MLflow at {self.tracking_uri} unreachable ({self.last_error}); undelivered records saved to "
            f"{path}; deliver them later with `python -m orchestration.tracking replay {path} "
            f"--tracking-uri {self.tracking_uri}`",
            file=sys.stderr,
        )


def _refused(exc: MlflowException) -> bool:
    """The server answered and said no (4xx): retrying would not help, unlike an outage."""
    return 400 <= exc.get_http_status_code() < 500
