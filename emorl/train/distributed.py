"""One distributed set-up for a single process, ``torchrun`` and SLURM tasks started by submitit.

The rank, world size and rendezvous address come from the environment: ``torchrun`` exports
RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT, and a task of a multi-task SLURM job exports the same
before training starts (``orchestration.job_environment``). Nothing is hard-coded. Backend: NCCL on GPU,
gloo on CPU; one process per GPU.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the job."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 logs and writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def cuda_index(local_rank: int, local_world_size: int, visible: int) -> int:
    """The visible GPU this rank uses: its local rank, or 0 when the scheduler has narrowed
    CUDA_VISIBLE_DEVICES to one GPU per task (so every task sees its own GPU as ``cuda:0``)."""
    if visible == 0:
        raise RuntimeError("training.device asks for a GPU but none is visible (check CUDA_VISIBLE_DEVICES)")
    if visible == 1:
        return 0
    if local_world_size > visible:
        raise RuntimeError(
            f"{local_world_size} ranks on this node but only {visible} visible GPUs; "
            "start one process per GPU"
        )
    return local_rank


def _select_device(preference: str, local_rank: int, local_world_size: int) -> torch.device:
    """``auto`` picks a GPU when one is visible, else the CPU; any other value is used as given."""
    if preference not in ("auto", "cuda", "cpu"):
        return torch.device(preference)
    if preference == "cpu" or (preference == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", cuda_index(local_rank, local_world_size, torch.cuda.device_count()))


def setup_distributed(device: str = "auto") -> DistributedContext:
    """Read the job layout from the environment, pick the device and join the process group if needed."""
    rank = int(os.environ.get("RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("SLURM_NTASKS_PER_NODE", "1")))
    selected = _select_device(device, local_rank, local_world_size)
    if selected.type == "cuda":
        torch.cuda.set_device(selected)
    if world_size > 1 and not dist.is_initialized():
        for name in ("MASTER_ADDR", "MASTER_PORT"):
            if name not in os.environ:
                raise RuntimeError(
                    f"WORLD_SIZE={world_size} but {name} is not set; launch with torchrun or submitit"
                )
        dist.init_process_group(
            backend="nccl" if selected.type == "cuda" else "gloo",
            init_method="env://",
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(minutes=30),
            device_id=selected if selected.type == "cuda" else None,
        )
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, device=selected)


def teardown_distributed() -> None:
    """Leave the process group (if this process joined one)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place (a no-op in a single process)."""
    if context.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_parameters(module: torch.nn.Module, context: DistributedContext) -> None:
    """Make every rank start from rank 0's parameters and buffers."""
    if not context.distributed:
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)
