"""The submission ledger of a grid: every job submitted for it (and every cancellation), one JSON line each.

It lives at ``<output_root>/<grid>/submissions.jsonl``; the latest line of a run_key names the job that
status, reruns and the waiting launcher look at.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import submitit

SUBMITTED, CANCELLED = "submitted", "cancelled"  # a ledger line's event


@dataclass(frozen=True)
class Submission:
    """One submitted job, as recorded in the grid's ledger."""

    run_key: str
    cell_key: str
    seed: int
    job_id: str
    folder: str  # submitit folder of the job (logs: <folder>/<job_id>_<task>_log.{out,err})
    launcher: str
    submitted_at: str  # when the event happened
    event: str = SUBMITTED  # or CANCELLED (the job was cancelled; a later submission resumes the run)

    def log_paths(self, task: int = 0) -> tuple[Path, Path]:
        """(stdout, stderr) of one task of the job."""
        paths = submitit.core.utils.JobPaths(self.folder, job_id=self.job_id, task_id=task)
        return paths.stdout, paths.stderr


def ledger_path(output_root: str | Path, grid: str) -> Path:
    """Where the grid's ledger lives."""
    return Path(output_root) / grid / "submissions.jsonl"


def read_history(output_root: str | Path, grid: str) -> dict[str, list[Submission]]:
    """Every line of the grid's ledger by run_key, oldest first (empty when nothing was submitted)."""
    path = ledger_path(output_root, grid)
    history: dict[str, list[Submission]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                entry = Submission(**json.loads(line))
                history.setdefault(entry.run_key, []).append(entry)
    return history


def read_ledger(output_root: str | Path, grid: str) -> dict[str, Submission]:
    """The latest submission of each run_key of the grid (empty when nothing was submitted)."""
    return {key: entries[-1] for key, entries in read_history(output_root, grid).items()}


def append_ledger(output_root: str | Path, grid: str, entries: Iterable[Submission]) -> None:
    """Record submitted jobs at the end of the grid's ledger."""
    path = ledger_path(output_root, grid)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as ledger:
        for entry in entries:
            ledger.write(json.dumps(asdict(entry)) + "\n")
