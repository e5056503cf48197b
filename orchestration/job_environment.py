"""Where a submitit task runs: its rank and SLURM ids, and the torch.distributed variables of its job.

``emorl`` reads RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT from the environment, as ``torchrun``
exports them. Inside a multi-task SLURM job the task exports them itself, before training starts: derived by
``submitit.helpers.TorchDistributedEnvironment`` (master = the job's first host), with a port from the job id.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass

import submitit

MASTER_PORT_RANGE = (20_000, 32_767)  # below Linux's ephemeral ports (32768-60999), which clients borrow


@dataclass(frozen=True)
class TaskEnvironment:
    """This task's place in its job (a lone process outside submitit: rank 0 of 1, no job)."""

    global_rank: int = 0
    num_tasks: int = 1
    job_id: str | None = None
    hostnames: tuple[str, ...] = ()
    cluster: str | None = None


def task_environment() -> TaskEnvironment:
    """Rank, size and SLURM ids of this task."""
    try:
        env = submitit.JobEnvironment()
    except RuntimeError:
        return TaskEnvironment()
    return TaskEnvironment(env.global_rank, env.num_tasks, str(env.job_id), tuple(env.hostnames), env.cluster)


def master_port(job_id: str) -> int:
    """The rendezvous port of a job: stable across its tasks, spread over job ids, and outside the
    ephemeral range, where any outgoing connection on the node may hold the port for a while."""
    low, high = MASTER_PORT_RANGE
    return low + zlib.crc32(job_id.encode()) % (high - low + 1)


def export_distributed_environment() -> None:
    """Inside a multi-task job started by submitit, export the torch.distributed variables."""
    if "RANK" in os.environ or "SUBMITIT_EXECUTOR" not in os.environ:
        return
    job = submitit.JobEnvironment()
    if job.num_tasks <= 1:
        return
    environment = submitit.helpers.TorchDistributedEnvironment()
    if "MASTER_PORT" not in os.environ:  # submitit's own pick may fall in the ephemeral range
        environment.master_port = master_port(str(job.job_id))
    environment.export()
