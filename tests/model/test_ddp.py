"""Under DistributedDataParallel (real gloo, 2 processes) the gradients are the mean of the ranks' gradients.

The model differentiates each iteration's loss inside ``forward``; DDP must still see exactly one gradient
per parameter, delivered by ``total_loss.backward()``. ``find_unused_parameters=True`` is needed because
the refinement network is idle when the curriculum sets I = 0.
"""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from emorl.model import EMORL
from tests.model.conftest import toy_config, toy_images

WORLD_SIZE = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _flat_grads(model: EMORL) -> torch.Tensor:
    return torch.cat(
        [torch.zeros(p.numel()) if p.grad is None else p.grad.flatten() for p in model.parameters()]
    )


def _rank(rank: int, port: int, results: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD_SIZE)
    torch.set_num_threads(1)
    cfg = toy_config()
    torch.manual_seed(0)
    model = EMORL(cfg)
    ddp = DistributedDataParallel(model, find_unused_parameters=True)
    images = toy_images(cfg, seed=rank)
    for steps in (2, 0):
        model.zero_grad()
        torch.manual_seed(10 + rank)
        model(images, refinement_steps=steps).total_loss.backward()
        expected = _flat_grads(model)
        dist.all_reduce(expected)
        expected /= WORLD_SIZE
        model.zero_grad()
        torch.manual_seed(10 + rank)
        ddp(images, refinement_steps=steps).total_loss.backward()
        results[(rank, steps)] = torch.allclose(_flat_grads(model), expected, atol=1e-6)
    dist.destroy_process_group()


def test_ddp_gradients_are_the_mean_over_ranks():
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_rank, args=(_free_port(), results), nprocs=WORLD_SIZE)
        assert dict(results) == {(rank, steps): True for rank in range(WORLD_SIZE) for steps in (2, 0)}
