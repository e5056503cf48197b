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


def test_two_gloo_ranks_match_one_process_with_the_same_global_batch(tetrominoes_root: Path, tmp_path: Path):
    # With refinement: each rank's refinement network sees the gradient of the *global* batch-mean loss
    # (the reference uses its local mean, so its ranks refine differently from one process).
    refinement = {"iters": 6, "refinement_curriculum": [[-1, 2]]}
    single = toy_config(tetrominoes_root, tmp_path / "single", **refinement)
    double = toy_config(tetrominoes_root, tmp_path / "double", **refinement)
    run_ranks(single, world_size=1)
    ranks = run_ranks(double, world_size=2)

    one = load_checkpoint(tmp_path / "single" / "checkpoints" / "step-00000006.pt")
    two = load_checkpoint(tmp_path / "double" / "checkpoints" / "step-00000006.pt")
    assert two["world_size"] == 2
    for name, value in one["model"].items():
        torch.testing.assert_close(two["model"][name], value, rtol=1e-4, atol=1e-5, msg=name)
    torch.testing.assert_close(two["geco"]["C_ema"], one["geco"]["C_ema"], rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(two["geco"]["beta"], one["geco"]["beta"], rtol=1e-6, atol=1e-7)

    geco_keys = ("train/geco_beta", "train/geco_C_ema")
    assert [ranks[0]["metrics"][key] for key in geco_keys] == [ranks[1]["metrics"][key] for key in geco_keys]
    assert ranks[0]["metrics"]["train/geco_beta"] != 0.55, "GECO should have stepped within the run"
