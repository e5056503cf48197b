"""Asking the scheduler: which of a ledger's jobs still live (squeue; a local job's process), how the
ended ones ended and what they used (sacct), and how large a job array may be (scontrol).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestration.ledger import Submission

DEFAULT_MAX_ARRAY_SIZE = 1001  # SLURM's default MaxArraySize
LOCAL_CONTROLLER = "submitit.local._local"  # the module a local job's process runs
# final states of a job (sacct), and squeue's states of jobs whose task is over (shown while cleaned up)
ENDED_STATES = frozenset(
    {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}
)
ENDING_STATES = ENDED_STATES | {"COMPLETING"}


@dataclass(frozen=True)
class JobRecord:
    """How one SLURM job (array element) ended, from ``sacct``."""

    job_id: str
    state: str  # COMPLETED, FAILED, CANCELLED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, ... (or RUNNING, PENDING)
    exit_code: str  # "<code>:<signal>"
    elapsed_s: int
    gpus: int  # allocated, over all its nodes

    @property
    def signal(self) -> int:
        """The signal that ended the job's script (0: none)."""
        _, _, signal = self.exit_code.partition(":")
        return int(signal) if signal.isdigit() else 0


def _allocated_gpus(tres: str) -> int:
    """GPUs in sacct's AllocTRES, e.g. ``billing=8,cpu=8,gres/gpu=4,mem=64G,node=1`` -> 4."""
    match = re.search(r"gres/gpu=(\d+)", tres)
    return int(match.group(1)) if match else 0


def _sacct(job_ids: Iterable[str], *options: str) -> list[JobRecord]:
    ids = sorted(set(job_ids))
    if not ids or shutil.which("sacct") is None:
        return []
    fields = "JobID,State,ExitCode,ElapsedRaw,AllocTRES"
    result = subprocess.run(
        ["sacct", "-n", "-P", "-X", *options, "-j", ",".join(ids), "-o", fields],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"sacct failed ({result.returncode}): {result.stderr.strip()}")
    records = []
    for line in result.stdout.splitlines():
        parts = line.split("|")
        if len(parts) == 5:
            job_id, state, exit_code, elapsed, tres = parts
            records.append(
                JobRecord(job_id, state.split()[0], exit_code, int(elapsed or 0), _allocated_gpus(tres))
            )
    return records


def slurm_job_records(job_ids: Iterable[str]) -> dict[str, JobRecord]:
    """sacct's record of each job (array elements as ``<array>_<task>``); unknown jobs are left out."""
    return {record.job_id: record for record in _sacct(job_ids)}


def slurm_job_pieces(job_ids: Iterable[str]) -> dict[str, list[JobRecord]]:
    """Every run of each job, oldest first (``sacct --duplicates``: a requeued job ran more than once)."""
    pieces: dict[str, list[JobRecord]] = {}
    for record in _sacct(job_ids, "--duplicates"):
        pieces.setdefault(record.job_id, []).append(record)
    return pieces


def live_slurm_jobs() -> dict[str, str]:
    """This user's queued or running SLURM jobs, one entry per array element: job id -> state.

    Jobs whose task has ended (COMPLETING and final states) are left out: their MLflow run tells the rest.
    """
    if shutil.which("squeue") is None:
        return {}
    result = subprocess.run(
        ["squeue", "--me", "-h", "-r", "-o", "%i|%T"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"squeue failed ({result.returncode}): {result.stderr.strip()}")
    jobs = dict(line.split("|", 1) for line in result.stdout.split() if "|" in line)
    return {job_id: state for job_id, state in jobs.items() if state not in ENDING_STATES}


def live_local_jobs(ledger: Mapping[str, Submission]) -> dict[str, str]:
    """The ledger's local jobs whose process still runs: job id (the controller's PID) -> "RUNNING".

    A PID counts only while its command line is submitit's local controller, so a reused PID is not taken
    for a live job.
    """
    live = {}
    for entry in ledger.values():
        if entry.launcher != "local" or not entry.job_id.isdigit():
            continue
        try:
            command = Path(f"/proc/{entry.job_id}/cmdline").read_bytes()
        except OSError:
            continue
        if LOCAL_CONTROLLER.encode() in command:
            live[entry.job_id] = "RUNNING"
    return live


def live_jobs(ledger: Mapping[str, Submission]) -> dict[str, str]:
    """The ledger's jobs still queued or running: SLURM's (asked only when it holds any) and local ones."""
    on_slurm = any(entry.launcher == "slurm" for entry in ledger.values())
    return {**(live_slurm_jobs() if on_slurm else {}), **live_local_jobs(ledger)}


def cluster_max_array_size() -> int:
    """MaxArraySize of the cluster (from `scontrol show config`), or SLURM's default."""
    if shutil.which("scontrol") is None:
        return DEFAULT_MAX_ARRAY_SIZE
    result = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, check=False)
    match = re.search(r"^MaxArraySize\s*=\s*(\d+)", result.stdout, re.MULTILINE)
    return int(match.group(1)) if match else DEFAULT_MAX_ARRAY_SIZE
