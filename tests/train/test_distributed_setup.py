"""Device mapping and the single-process path of the distributed set-up."""

import pytest
import torch

from emorl.train.distributed import cuda_index, setup_distributed


def test_each_rank_takes_its_own_gpu_when_all_are_visible():
    assert [cuda_index(rank, 4, visible=4) for rank in range(4)] == [0, 1, 2, 3]


def test_narrowed_visible_devices_map_every_task_to_cuda_0():
    assert cuda_index(3, 4, visible=1) == 0


def test_more_ranks_than_gpus_is_refused():
    with pytest.raises(RuntimeError, match="one process per GPU"):
        cuda_index(0, 4, visible=2)


def test_no_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="CUDA_VISIBLE_DEVICES"):
        cuda_index(0, 1, visible=0)


def test_single_process_needs_no_process_group(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SUBMITIT_EXECUTOR"):
        monkeypatch.delenv(name, raising=False)
    context = setup_distributed("cpu")
    assert (context.rank, context.world_size, context.device) == (0, 1, torch.device("cpu"))
    assert context.is_main and not context.distributed
    assert not torch.distributed.is_initialized()


def test_world_size_without_master_address_names_the_launchers(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(RuntimeError, match="MASTER_ADDR is not set; launch with torchrun or submitit"):
        setup_distributed("cpu")
