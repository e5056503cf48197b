"""The spool: records an unreachable server did not take, one JSON line each, and their later delivery.

    python -m orchestration.tracking replay SPOOL.jsonl --tracking-uri URI
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

MAX_METRICS_PER_BATCH = 1000  # MLflow's log_batch limits
MAX_PARAMS_PER_BATCH = 100


@dataclass
class Pending:
    """Records not yet accepted by the server, in the order they were logged."""

    metrics: list[Metric] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    tags: list[RunTag] = field(default_factory=list)
    artifacts: list[tuple[str, str | None]] = field(default_factory=list)
    status: str | None = None

    def empty(self) -> bool:
        return not (self.metrics or self.params or self.tags or self.artifacts or self.status)


def write_spool(path: Path, pending: Pending, opening: dict[str, Any] | None = None) -> None:
    """Append the pending records to the spool file ``path``: ``<run_id>.jsonl``, or, for a run not yet
    opened, ``<run_key>.jsonl`` whose first record is the ``RunOpening`` that opens it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as spool:
        if opening is not None and not path.stat().st_size:
            spool.write(json.dumps({"open": opening}) + "\n")
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


def replay_spool(path: str | Path, tracking_uri: str) -> int:
    """Deliver a spool file to its run (opening the run first when the spool starts with its opening);
    returns the number of records sent."""
    from orchestration.tracking.runs import RunOpening

    path = Path(path)
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    run_id = path.stem
    if records and "open" in records[0]:
        run_id, steps = RunOpening(**records.pop(0)["open"]).open(tracking_uri)
        records = [r for r in records if "metric" not in r or r["step"] > steps.get(r["metric"], -1)]
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


def deliver_spools(directory: str | Path, tracking_uri: str) -> int:
    """Deliver every spool file in ``directory`` (an earlier attempt's, oldest first); returns the records
    sent. A job calls it when it starts, so what an outage kept from the server arrives with the next
    attempt."""
    spools = sorted(Path(directory).glob("*.jsonl"), key=lambda path: path.stat().st_mtime)
    return sum(replay_spool(path, tracking_uri) for path in spools)


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
