"""Executor behaviour on the real SLURM test cluster."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
import submitit

from orchestration.config import LauncherConfig
from orchestration.submit import make_executor

pytestmark = pytest.mark.slurm


def rank_one_crashes() -> str:
    if submitit.JobEnvironment().global_rank == 1:
        raise RuntimeError("rank 1 fails at start")
    time.sleep(300)  # rank 0 would wait in the rendezvous for as long as its timeout
    return "rank 0 was never stopped"


def slurm_launcher(folder: Path, **changes: object) -> LauncherConfig:
    """A launcher for the test cluster with ``changes`` on top."""
    keys = {
        "name": "slurm",
        "folder": str(folder / "%j"),
        "max_num_timeout": 0,
        "max_retries": 0,
        "partition": "debug",
        "account": None,
        "qos": None,
        "constraint": None,
        "nodes": 1,
        "tasks_per_node": 1,
        "gpus_per_node": 0,
        "cpus_per_task": 1,
        "mem_gb": 1,
        "timeout_min": 10,
        "expected_hours": None,
        "signal_delay_s": 30,
        "array_parallelism": 1,
        "max_array_size": None,
        "setup": [],
        "python": None,
        "snapshot": False,
        "hold": False,
        "profile": None,
    }
    return LauncherConfig.from_dict({**keys, **changes})


def wrapped() -> str | None:
    return os.environ.get("EMORL_WRAPPED")


def test_a_job_starts_python_with_the_launchers_command(slurm_cluster, tmp_path):
    # as `apptainer exec IMAGE python` would: a command around the interpreter
    launcher = slurm_launcher(tmp_path, python=f"env EMORL_WRAPPED=yes {sys.executable}")
    job = make_executor(launcher, "wrapped-python").submit(wrapped)
    assert job.result() == "yes"


def test_a_rank_that_dies_ends_the_whole_job(slurm_cluster, tmp_path):
    launcher = slurm_launcher(tmp_path, partition="multi", nodes=2)
    job = make_executor(launcher, "kill-on-bad-exit").submit(rank_one_crashes)
    started = time.monotonic()
    while not job.done() and time.monotonic() - started < 120:
        time.sleep(2)
    assert job.done(), "the surviving rank kept the job alive"
    assert job.state in ("FAILED", "CANCELLED") or job.state.startswith("CANCELLED")
