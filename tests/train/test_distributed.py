"""Two real gloo processes on CPU train exactly like one process with the same global batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from emorl.train.checkpoint import load_checkpoint
from tests.train.conftest import toy_config

RANK_SCRIPT = """
import json, sys
from emorl.config import ExperimentConfig
from emorl.train import train
result = train(ExperimentConfig.from_dict(json.loads(sys.argv[1])), progress=False)
print("RESULT " + json.dumps({"metrics": result.metrics, "step": result.final_step}), flush=True)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_ranks(config: dict, world_size: int) -> list[dict]:
    """Start ``world_size`` training processes the way torchrun would (env vars) and collect results."""
    port = free_port()
    children = []
    for rank in range(world_size):
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world_size),
            "LOCAL_WORLD_SIZE": str(world_size),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1",
        }
        children.append(
            subprocess.Popen(
                [sys.executable, "-c", RANK_SCRIPT, json.dumps(config)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for child in children:
        stdout, stderr = child.communicate(timeout=600)
        assert child.returncode == 0, stderr[-3000:]
        line = next(line for line in stdout.splitlines() if line.startswith("RESULT "))
        results.append(json.loads(line.removeprefix("RESULT ")))
    return results


def _train(
    tetrominoes_root: Path, out: Path, refinement_batch_size: int, world_size: int
) -> tuple[dict, list]:
    """Train the toy config with refinement on ``world_size`` gloo ranks: (final checkpoint, rank results)."""
    config = toy_config(tetrominoes_root, out, iters=6, refinement_curriculum=[[-1, 2]])
    config["model"]["refinement_batch_size"] = refinement_batch_size
    ranks = run_ranks(config, world_size=world_size)
    return load_checkpoint(out / "checkpoints" / "step-00000006.pt"), ranks


def _assert_same_training(one: dict, two: dict) -> None:
    assert two["world_size"] == 2
    for name, value in one["model"].items():
        torch.testing.assert_close(two["model"][name], value, rtol=1e-4, atol=1e-5, msg=name)
    torch.testing.assert_close(two["geco"]["C_ema"], one["geco"]["C_ema"], rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(two["geco"]["beta"], one["geco"]["beta"], rtol=1e-6, atol=1e-7)


def test_two_gloo_ranks_match_one_process_with_the_per_gpu_refinement_constant(
    tetrominoes_root: Path, tmp_path: Path
):
    # model.refinement_batch_size = the per-rank batch (2 of the global 4), as the reference's runs use:
    # 1 process and 2 ranks refine by the same constant, so they train alike.
    one, _ = _train(tetrominoes_root, tmp_path / "single", refinement_batch_size=2, world_size=1)
    two, ranks = _train(tetrominoes_root, tmp_path / "double", refinement_batch_size=2, world_size=2)
    _assert_same_training(one, two)
    geco_keys = ("train/geco_beta", "train/geco_C_ema")
    assert [ranks[0]["metrics"][key] for key in geco_keys] == [ranks[1]["metrics"][key] for key in geco_keys]
    assert ranks[0]["metrics"]["train/geco_beta"] != 0.55, "GECO should have stepped within the run"


def test_the_global_batch_as_refinement_constant_is_the_old_behaviour_and_differs(
    tetrominoes_root: Path, tmp_path: Path
):
    # refinement_batch_size = the global batch (4) is what the trainer did before the constant existed:
    # ranks still match one process, and the constant measurably changes training.
    one, _ = _train(tetrominoes_root, tmp_path / "single", refinement_batch_size=4, world_size=1)
    two, _ = _train(tetrominoes_root, tmp_path / "double", refinement_batch_size=4, world_size=2)
    _assert_same_training(one, two)
    per_gpu, _ = _train(tetrominoes_root, tmp_path / "per_gpu", refinement_batch_size=2, world_size=1)
    refinement = [name for name in one["model"] if name.startswith("refinement.")]
    differences = [(per_gpu["model"][name] - one["model"][name]).abs().max().item() for name in refinement]
    assert max(differences) > 1e-6
