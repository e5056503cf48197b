"""Reading a grid back, and bringing MLflow up to date with the scheduler first.

A run still RUNNING in MLflow whose last job is neither queued nor running any more (killed with SIGKILL,
by the OOM killer, a node failure, ``scancel``, or dead at start-up) is ended with the status its job's
end deserves, and tagged with why (``orchestration.failures``); what each ended job cost is logged
(``orchestration.costs``). This runs whenever a grid is looked at (``status.py``) or submitted again, so
MLflow never shows a dead run as running.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from orchestration.failures import END_REASON_TAG, FAILURE_KIND_TAG, GONE_JOB_STATES, FailureKind
from orchestration.ledger import CANCELLED, Submission, read_history
from orchestration.run_spec import RunSpec
from orchestration.scheduler import live_jobs, slurm_job_records
from orchestration.tracking.grid_runs import TrackedRun


@dataclass(frozen=True)
class GoneRun:
    """A RUNNING run whose job has ended: the status to give it, and why."""

    run_key: str
    run_id: str
    status: str  # FAILED or KILLED
    kind: FailureKind
    reason: str


def gone_runs(
    tracked: Mapping[str, TrackedRun], ledger: Mapping[str, Submission], live: Mapping[str, str]
) -> list[GoneRun]:
    """The RUNNING runs whose last job (SLURM's by sacct, a local one by its process) has ended."""
    candidates = [
        (run, ledger[key])
        for key, run in tracked.items()
        if run.status == "RUNNING"
        and key in ledger
        and ledger[key].launcher in ("slurm", "local")
        and ledger[key].job_id not in live
    ]
    records = slurm_job_records(entry.job_id for _, entry in candidates if entry.launcher == "slurm")
    gone = []
    for run, entry in candidates:
        if entry.launcher == "local":
            gone.append(
                GoneRun(
                    run.run_key,
                    run.run_id,
                    "FAILED",
                    FailureKind.INFRASTRUCTURE,
                    f"local job {entry.job_id} ended without ending its run (killed?)",
                )
            )
            continue
        record = records.get(entry.job_id)
        if record is None or record.state not in GONE_JOB_STATES:
            continue  # still starting, or COMPLETED with records left to deliver (its spool)
        status, kind = GONE_JOB_STATES[record.state]
        if entry.event == CANCELLED:
            kind = FailureKind.CANCELLED
        signal = f", signal {record.signal}" if record.signal else ""
        reason = f"SLURM job {entry.job_id} ended {record.state} (exit {record.exit_code}{signal})"
        gone.append(GoneRun(run.run_key, run.run_id, status, kind, reason))
    return gone


def mark_gone_runs(
    uri: str,
    tracked: Mapping[str, TrackedRun],
    ledger: Mapping[str, Submission],
    live: Mapping[str, str],
) -> dict[str, TrackedRun]:
    """End every gone run in MLflow (status and reason tags); returns ``tracked`` as it now stands."""
    updated = dict(tracked)
    gone_ones = gone_runs(tracked, ledger, live)
    if gone_ones:
        from orchestration.tracking.runs import end_run  # mlflow, loaded only when a run must be ended
    for gone in gone_ones:
        tags = {END_REASON_TAG: gone.reason, FAILURE_KIND_TAG: gone.kind.value}
        end_run(uri, gone.run_id, gone.status, tags)
        run = updated[gone.run_key]
        updated[gone.run_key] = dataclasses.replace(run, status=gone.status, tags={**run.tags, **tags})
    return updated


@dataclass(frozen=True)
class GridState:
    """Where a grid stands now: its MLflow runs by run_key (gone ones already ended), its ledger, its
    live jobs."""

    tracked: dict[str, TrackedRun]
    ledger: dict[str, Submission]
    live_jobs: dict[str, str]


def grid_state(spec: RunSpec, update: bool = True) -> GridState:
    """Read the grid of ``spec`` back (MLflow, ledger, scheduler); with ``update``, end the runs whose job
    is gone and log what ended jobs cost (``orchestration.costs``) first. A dry run does not update."""
    from orchestration.costs import record_costs
    from orchestration.tracking.grid_runs import tracked_runs
    from orchestration.tracking.store import store_exists

    uri = spec.tracking.uri
    history = read_history(spec.output_root, spec.grid)
    ledger = {key: entries[-1] for key, entries in history.items()}
    live = live_jobs(ledger)
    tracked = tracked_runs(uri, spec.experiment, spec.grid) if update or store_exists(uri) else {}
    if update:
        tracked = record_costs(uri, mark_gone_runs(uri, tracked, ledger, live), history)
    return GridState(tracked, ledger, live)
