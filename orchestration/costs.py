"""What runs cost: per job (one attempt, or several when SLURM requeued it), the elapsed time and GPU hours
(elapsed × allocated GPUs) as ``sacct`` reports them, logged into the run's MLflow run once the job has
ended, and summed over the run's attempts.

Metrics: ``cost/attempt_elapsed_hours`` and ``cost/attempt_gpu_hours`` (step: the job's index among the
run's costed jobs), ``cost/elapsed_hours`` and ``cost/gpu_hours`` (the totals so far). The tag
``cost_jobs`` lists the jobs already counted, so looking at a grid again never counts a job twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from orchestration.ledger import Submission
from orchestration.scheduler import ENDED_STATES, slurm_job_pieces
from orchestration.tracking.grid_runs import TrackedRun

ELAPSED_HOURS = "cost/elapsed_hours"
GPU_HOURS = "cost/gpu_hours"
ATTEMPT_ELAPSED_HOURS = "cost/attempt_elapsed_hours"
ATTEMPT_GPU_HOURS = "cost/attempt_gpu_hours"
COSTED_TAG = "cost_jobs"


def record_costs(
    uri: str, tracked: Mapping[str, TrackedRun], history: Mapping[str, Sequence[Submission]]
) -> dict[str, TrackedRun]:
    """Log the cost of every ended SLURM job of each run not counted yet; returns ``tracked`` updated."""
    jobs = {
        key: [entry.job_id for entry in entries if entry.launcher == "slurm" and entry.event == "submitted"]
        for key, entries in history.items()
        if key in tracked
    }
    counted = {key: set(filter(None, tracked[key].tags.get(COSTED_TAG, "").split(","))) for key in jobs}
    wanted = {job for key, ids in jobs.items() for job in ids if job not in counted[key]}
    pieces = slurm_job_pieces(wanted)
    updated = dict(tracked)
    for key, ids in jobs.items():
        run = tracked[key]
        fresh = [job for job in dict.fromkeys(ids) if job not in counted[key] and job in pieces]
        fresh = [job for job in fresh if pieces[job][-1].state in ENDED_STATES]
        if not fresh:
            continue
        elapsed = run.metrics.get(ELAPSED_HOURS, 0.0)
        gpu = run.metrics.get(GPU_HOURS, 0.0)
        index = len(counted[key])
        rows = []
        for job in fresh:
            hours = sum(piece.elapsed_s for piece in pieces[job]) / 3600
            gpu_hours = sum(piece.elapsed_s * piece.gpus for piece in pieces[job]) / 3600
            elapsed, gpu = elapsed + hours, gpu + gpu_hours
            rows.append((index, {ATTEMPT_ELAPSED_HOURS: hours, ATTEMPT_GPU_HOURS: gpu_hours}))
            index += 1
        totals = {ELAPSED_HOURS: elapsed, GPU_HOURS: gpu}
        tag = ",".join([*sorted(counted[key]), *fresh])
        from orchestration.tracking.runs import log_cost  # mlflow, loaded only when there is a cost to log

        log_cost(uri, run.run_id, rows, totals, index - 1, {COSTED_TAG: tag})
        updated[key] = dataclasses.replace(
            run, metrics={**run.metrics, **totals}, tags={**run.tags, COSTED_TAG: tag}
        )
    return updated
