"""Where a grid stands: MLflow runs (by run_key) joined with the submission ledger and SLURM's queue.

Per cell: how many seeds are done, running, queued, failed, cancelled or not submitted; the step of each
running seed; the FG-ARI of the finished ones and the collapse check's diagnosis of each (its ``diagnosis``
tag); and why each failed seed ended (its ``end_reason`` tag) with the tail of its job's log.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from emorl.eval.results import DIAGNOSIS_TAG
from orchestration.costs import ELAPSED_HOURS, GPU_HOURS
from orchestration.failures import END_REASON_TAG, FAILURE_KIND_TAG
from orchestration.ledger import CANCELLED, Submission
from orchestration.plan import gpu_hours
from orchestration.run_spec import RunSpec
from orchestration.tracking.grid_runs import TrackedRun

FG_ARI = "eval/fg_ari"
PROGRESS_METRICS = ("train/total_loss", "train/nll")  # the step of the latest of these is the run's step
LIVE_RUNNING = ("RUNNING", "CONFIGURING", "SUSPENDED", "STOPPING")


class RunState(enum.StrEnum):
    DONE = "done"
    RUNNING = "running"
    QUEUED = "queued"
    FAILED = "failed"
    CANCELLED = "cancelled"
    NOT_SUBMITTED = "not submitted"


@dataclass
class CellStatus:
    """One table cell (all seeds of one config) and the state of each of its seeds."""

    cell_key: str
    label: str
    states: dict[int, RunState] = field(default_factory=dict)  # seed -> state
    reasons: dict[int, str] = field(default_factory=dict)  # failed seed -> its run's end_reason tag
    steps: dict[int, str] = field(default_factory=dict)  # running seed -> "step/iters"
    fg_ari: list[float] = field(default_factory=list)  # of finished seeds
    diagnoses: dict[int, str] = field(default_factory=dict)  # finished seed -> collapse check's label
    failures: dict[int, str] = field(default_factory=dict)  # failed seed -> log tail
    gpu_hours: float = 0.0  # spent so far (sacct, summed over attempts: orchestration.costs)
    elapsed_hours: float = 0.0
    estimated_gpu_hours: float = 0.0  # the dry run's estimate for all seeds

    def count(self, state: RunState) -> int:
        return sum(1 for value in self.states.values() if value == state)


def log_tail(submission: Submission, lines: int = 15) -> str:
    """The last lines of the job's stderr (tracebacks land there), else of its stdout."""
    for path in reversed(submission.log_paths()):
        path = Path(path)
        if path.is_file() and path.stat().st_size:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return f"(no log found under {submission.folder})"


def run_state(
    tracked: TrackedRun | None, submission: Submission | None, live_jobs: Mapping[str, str]
) -> RunState:
    """One run's state: MLflow says done or failed; the queue, queued or running; a vanished job failed."""
    job_state = live_jobs.get(submission.job_id) if submission else None
    status = tracked.status if tracked is not None else None
    if status == "FINISHED":
        return RunState.DONE
    if job_state is not None and job_state not in LIVE_RUNNING:
        return RunState.QUEUED  # also a resubmitted failed run, or a preempted one waiting to restart
    if submission is not None and submission.event == CANCELLED and job_state is None:
        return RunState.CANCELLED  # by the grid's cancel; the next submission resumes it
    if status in ("FAILED", "KILLED"):
        return RunState.FAILED  # its job may still be cleaning up
    if job_state is not None:
        return RunState.RUNNING
    if tracked is None and submission is None:
        return RunState.NOT_SUBMITTED
    if submission is not None and submission.launcher == "debug" and status == "RUNNING":
        return RunState.RUNNING  # runs inside the launcher's own process
    return RunState.FAILED


def grid_status(
    specs: Sequence[RunSpec],
    tracked: Mapping[str, TrackedRun],
    ledger: Mapping[str, Submission],
    live_jobs: Mapping[str, str],
    tail_lines: int = 15,
) -> list[CellStatus]:
    """Per-cell status of a grid in the grid's order."""
    cells: dict[str, CellStatus] = {}
    for spec in specs:
        cell = cells.setdefault(spec.cell_key, CellStatus(spec.cell_key, spec.cell_label))
        run = tracked.get(spec.run_key)
        submission = ledger.get(spec.run_key)
        state = run_state(run, submission, live_jobs)
        cell.states[spec.seed] = state
        cell.estimated_gpu_hours += gpu_hours(spec)
        if run is not None:
            cell.gpu_hours += run.metrics.get(GPU_HOURS, 0.0)
            cell.elapsed_hours += run.metrics.get(ELAPSED_HOURS, 0.0)
        if state == RunState.DONE and run is not None:
            if FG_ARI in run.metrics:
                cell.fg_ari.append(run.metrics[FG_ARI])
            if DIAGNOSIS_TAG in run.tags:
                cell.diagnoses[spec.seed] = run.tags[DIAGNOSIS_TAG]
        elif state == RunState.RUNNING and run is not None:
            step = "?" if run.step is None else run.step
            cell.steps[spec.seed] = f"{step}/{spec.config.training.iters}"
        elif state == RunState.FAILED:
            if run is not None and END_REASON_TAG in run.tags:
                cell.reasons[spec.seed] = (
                    f"{run.tags[END_REASON_TAG]} ({run.tags.get(FAILURE_KIND_TAG, '?')})"
                )
            cell.failures[spec.seed] = (
                log_tail(submission, tail_lines) if submission else "(not submitted by this ledger)"
            )
    return list(cells.values())


def diagnosis(cell: CellStatus) -> str:
    """The finished seeds' diagnoses, e.g. ``2 segmenting, collapsed: s3`` (collapsed seeds by name)."""
    if not cell.diagnoses:
        return "-"
    counts = Counter(cell.diagnoses.values())
    parts = [f"{count} {label}" for label, count in sorted(counts.items()) if label != "collapsed"]
    collapsed = [f"s{seed}" for seed, label in sorted(cell.diagnoses.items()) if label == "collapsed"]
    if collapsed:
        parts.append(f"collapsed: {', '.join(collapsed)}")
    return ", ".join(parts)


def format_status(grid: str, cells: Sequence[CellStatus]) -> str:
    """A plain-text report: one table row per cell, then the log tail of each failed seed."""
    from tabulate import tabulate

    rows = []
    for cell in cells:
        fg_ari = "-"
        if cell.fg_ari:
            mean = sum(cell.fg_ari) / len(cell.fg_ari)
            fg_ari = f"{100 * mean:.1f} (n={len(cell.fg_ari)})"
        steps = ", ".join(f"s{seed}: {step}" for seed, step in sorted(cell.steps.items())) or "-"
        cost = f"{cell.gpu_hours:.2f} / {cell.estimated_gpu_hours:.1f} ({cell.elapsed_hours:.2f} h)"
        states = [cell.count(state) for state in RunState]
        rows.append([cell.label, *states, steps, fg_ari, diagnosis(cell), cost])
    headers = [
        "cell",
        *(state.value for state in RunState),
        "running steps",
        "FG-ARI %",
        "diagnosis",
        "GPU-h / est. (elapsed)",
    ]
    spent = sum(cell.gpu_hours for cell in cells)
    estimate = sum(cell.estimated_gpu_hours for cell in cells)
    elapsed = sum(cell.elapsed_hours for cell in cells)
    lines = [
        f"grid {grid}",
        tabulate(rows, headers=headers, tablefmt="github"),
        f"spent {spent:.2f} GPU-h ({elapsed:.2f} h of jobs) of the estimated {estimate:.1f} GPU-h",
    ]
    for cell in cells:
        for seed, tail in sorted(cell.failures.items()):
            reason = f": {cell.reasons[seed]}" if seed in cell.reasons else ""
            lines += ["", f"--- failed: {cell.label} seed={seed}{reason} ---", tail]
    return "\n".join(lines)
