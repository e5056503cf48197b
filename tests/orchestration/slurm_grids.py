"""Small grids for the tests on the real SLURM test cluster: toy-size runs, their plan, the job count."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from orchestration.compose import Composer
from orchestration.grid import expand_grid
from orchestration.ledger import read_ledger
from orchestration.plan import Plan, decide, make_plan
from orchestration.scheduler import live_slurm_jobs
from orchestration.tracking.grid_runs import tracked_runs

REPO = Path(__file__).resolve().parents[2]

# Toy size: a few steps of a small model on generated Tetrominoes, evaluated on 8 images.
TINY = {
    "dataset": "tetrominoes",
    "data.root": "${output_root}/data",
    "data.generate_if_missing": True,
    "data.generate_train": 64,
    "data.generate_test": 16,
    "data.num_workers": 0,
    "model.z_size": 8,
    "training.batch_size": 4,
    "training.iters": 10,
    "training.warmup_steps": 2,
    "training.refinement_curriculum": [[-1, 1]],
    "training.log_every": 5,
    "eval.num_images": 8,
    "eval.batch_size": 8,
    "eval.refinement_steps": 1,
    "launcher.timeout_min": 20,
}


def expand(name: str, root: Path, base: dict | None = None, axes: list | None = None, seeds=(1,)) -> list:
    grid = {"name": name, "base": {**TINY, **(base or {})}, "axes": axes or [], "seeds": list(seeds)}
    composer = Composer("ablation_grid", ["launcher=slurm", f"output_root={root}", f"grid.name={name}"])
    return expand_grid(grid, composer)


def plan_for(specs: list) -> Plan:
    first = specs[0]
    uri = first.tracking.uri
    statuses = {key: run.status for key, run in tracked_runs(uri, first.experiment, first.grid).items()}
    decisions = decide(specs, statuses, read_ledger(first.output_root, first.grid), live_slurm_jobs())
    return make_plan(specs, decisions, max_array_size=1001)


def job_count(cluster) -> int:
    return len(cluster.run("sacct", "-X", "-n", "-P", "-o", "JobID", "-S", "2020-01-01").split())


def run_entry_point(*overrides: str, script: str = "ablation_grid.py") -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(REPO / "experiments" / script), *overrides],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
