"""Executor behaviour on the real SLURM test cluster."""

from __future__ import annotations

import time

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


def test_a_rank_that_dies_ends_the_whole_job(slurm_cluster, tmp_path):
    launcher = LauncherConfig.from_dict(
        {
            "name": "slurm",
            "folder": str(tmp_path / "%j"),
            "max_num_timeout": 0,
            "max_retries": 0,
            "partition": "multi",
            "account": None,
            "qos": None,
            "constraint": None,
            "nodes": 2,
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
            "snapshot": False,
            "hold": False,
            "profile": None,
        }
    )
    job = make_executor(launcher, "kill-on-bad-exit").submit(rank_one_crashes)
    started = time.monotonic()
    while not job.done() and time.monotonic() - started < 120:
        time.sleep(2)
    assert job.done(), "the surviving rank kept the job alive"
    assert job.state in ("FAILED", "CANCELLED") or job.state.startswith("CANCELLED")
