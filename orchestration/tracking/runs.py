"""One training's MLflow run: found by its run_key (or the record in its output folder), opened again on
every (re)start, paused when preempted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, RunStatus, RunTag
from mlflow.tracking import MlflowClient

from orchestration.tracking.store import ensure_experiment

ATTEMPT_TAG = "attempt"
RUN_RECORD = "mlflow_run.json"  # in a run's output folder: which MLflow run it reports to


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
    again; the choice is recorded in ``output_dir``. Every (re)start is an attempt (tag ``attempt``: 0,
    then one more per requeue, retry or resubmission). Returns the run id."""
    client = MlflowClient(tracking_uri)
    experiment_id = ensure_experiment(tracking_uri, experiment_name, client)
    all_tags = {"run_key": run_key, **{key: str(value) for key, value in (tags or {}).items()}}
    run_id = (output_dir and recorded_run(output_dir, tracking_uri)) or find_run(
        run_key, experiment_name, tracking_uri
    )
    if run_id is None:
        all_tags[ATTEMPT_TAG] = "0"
        run_id = client.create_run(experiment_id, tags=all_tags, run_name=run_name).info.run_id
    else:
        previous = client.get_run(run_id).data.tags.get(ATTEMPT_TAG, "-1")
        all_tags[ATTEMPT_TAG] = str(int(previous) + 1 if previous.lstrip("-").isdigit() else 0)
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


@dataclass(frozen=True)
class RunOpening:
    """Everything ``open_run`` needs, kept for later: a job that starts while the tracking server is down
    trains anyway, and its logger opens (finds or creates) the run once the server answers, or a spool
    replay does (the opening is the spool's first record)."""

    experiment: str
    run_key: str
    run_name: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    output_dir: str | None = None

    def open(self, tracking_uri: str) -> tuple[str, dict[str, int]]:
        """Open the run; returns its id and the last step each of its metrics already has."""
        run_id = open_run(
            tracking_uri, self.experiment, self.run_key, self.run_name, self.tags, self.output_dir
        )
        return run_id, logged_steps(tracking_uri, run_id)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tags": dict(self.tags)}


def logged_steps(tracking_uri: str, run_id: str) -> dict[str, int]:
    """The last step each metric of the run has (MLflow keeps each key's value at its highest step)."""
    data = MlflowClient(tracking_uri).get_run(run_id).data.to_proto()
    return {metric.key: metric.step for metric in data.metrics}


def run_status(run_id: str, tracking_uri: str) -> str:
    """The run's status as MLflow reports it (RUNNING, FINISHED, FAILED, KILLED, ...)."""
    status = MlflowClient(tracking_uri).get_run(run_id).info.status
    return status if isinstance(status, str) else RunStatus.to_string(status)


def end_run(tracking_uri: str, run_id: str, status: str, tags: Mapping[str, str]) -> None:
    """End a run from outside its job (which is gone): tag why, then set its final status."""
    tag_run(tracking_uri, run_id, tags)
    MlflowClient(tracking_uri).set_terminated(run_id, status=status)


def tag_run(tracking_uri: str, run_id: str, tags: Mapping[str, str]) -> None:
    """Set tags on a run from outside its job."""
    client = MlflowClient(tracking_uri)
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


def log_cost(
    tracking_uri: str,
    run_id: str,
    per_job: Sequence[tuple[int, Mapping[str, float]]],
    totals: Mapping[str, float],
    step: int,
    tags: Mapping[str, str],
) -> None:
    """Log what a run's ended jobs cost: per-job metrics at their index, the totals at ``step``."""
    now = int(time.time() * 1000)
    metrics = [Metric(key, value, now, index) for index, values in per_job for key, value in values.items()]
    metrics += [Metric(key, value, now, step) for key, value in totals.items()]
    MlflowClient(tracking_uri).log_batch(
        run_id, metrics=metrics, tags=[RunTag(key, value) for key, value in tags.items()]
    )


def pause_run(tracking_uri: str, run_id: str, step: int) -> None:
    """A preempted run stays RUNNING for its requeued job to continue, tagged with the step it reached."""
    client = MlflowClient(tracking_uri)
    client.set_tag(run_id, "preempted_at_step", str(step))
    client.update_run(run_id, status="RUNNING")
