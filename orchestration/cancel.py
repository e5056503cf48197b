"""Cancelling a grid, or some of its cells and seeds: its queued and running SLURM jobs are ``scancel``-ed,
its local jobs stopped (SIGINT to submitit's local controller, as ``LocalJob.cancel`` does), their runs
ended KILLED in MLflow, and each cancellation recorded in the ledger. A later submission of the grid
resumes the runs from their checkpoints.
"""

from __future__ import annotations

import contextlib
import datetime
import getpass
import os
import shutil
import signal
import subprocess
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace

from orchestration.failures import END_REASON_TAG, FAILURE_KIND_TAG, FailureKind
from orchestration.ledger import CANCELLED, append_ledger
from orchestration.reconcile import GridState
from orchestration.run_spec import RunSpec


@dataclass
class Cancelled:
    """What a cancellation did."""

    jobs: list[str] = field(default_factory=list)  # job ids stopped
    runs: list[str] = field(default_factory=list)  # run names whose MLflow run was ended KILLED
    not_running: list[str] = field(default_factory=list)  # selected runs with no live job

    def summary(self) -> str:
        jobs = ", ".join(self.jobs) or "none"
        lines = [f"cancelled {len(self.jobs)} jobs ({jobs}); {len(self.runs)} runs ended KILLED"]
        if self.not_running:
            lines.append(f"{len(self.not_running)} selected runs had no queued or running job")
        lines.append("submit the grid again to resume them from their checkpoints")
        return "\n".join(lines)


def select(
    specs: Sequence[RunSpec], cells: Collection[str] | None = None, seeds: Collection[int] | None = None
) -> list[RunSpec]:
    """The runs of the given cells (as status shows them, or their cell_key) and seeds (None: all)."""
    chosen = [
        spec
        for spec in specs
        if (not cells or spec.cell_label in cells or spec.cell_key in cells)
        and (not seeds or spec.seed in seeds)
    ]
    if cells:
        unknown = set(cells) - {spec.cell_label for spec in specs} - {spec.cell_key for spec in specs}
        if unknown:
            known = ", ".join(sorted({spec.cell_label for spec in specs}))
            raise ValueError(f"no cell {sorted(unknown)} in grid {specs[0].grid} (cells: {known})")
    return chosen


def scancel(job_ids: Sequence[str]) -> None:
    """Cancel SLURM jobs (array elements as ``<array>_<task>``)."""
    if not job_ids:
        return
    if shutil.which("scancel") is None:
        raise RuntimeError("scancel is not on PATH: cannot cancel SLURM jobs from this machine")
    done = subprocess.run(["scancel", *job_ids], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"scancel failed ({done.returncode}): {done.stderr.strip()}")


def cancel(specs: Sequence[RunSpec], state: GridState) -> Cancelled:
    """Stop the live jobs of ``specs``, end their MLflow runs KILLED, and record it in the ledger."""
    from orchestration.tracking.runs import end_run

    result = Cancelled()
    live = [
        spec
        for spec in specs
        if spec.run_key in state.ledger and state.ledger[spec.run_key].job_id in state.live_jobs
    ]
    result.not_running = [spec.name for spec in specs if spec not in live]
    if not live:
        return result
    entries = [state.ledger[spec.run_key] for spec in live]
    scancel(sorted({entry.job_id for entry in entries if entry.launcher == "slurm"}))
    for entry in entries:
        if entry.launcher == "local":
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                os.kill(int(entry.job_id), signal.SIGINT)
    result.jobs = sorted({entry.job_id for entry in entries})
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    reason = f"cancelled by {getpass.getuser()} at {now}"
    for spec in live:
        run = state.tracked.get(spec.run_key)
        if run is not None and run.status == "RUNNING":
            end_run(
                spec.tracking.uri,
                run.run_id,
                "KILLED",
                {END_REASON_TAG: reason, FAILURE_KIND_TAG: FailureKind.CANCELLED.value},
            )
            result.runs.append(spec.name)
    append_ledger(
        specs[0].output_root,
        specs[0].grid,
        [replace(entry, event=CANCELLED, submitted_at=now) for entry in entries],
    )
    return result
