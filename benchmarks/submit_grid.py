"""Time to expand + validate, plan, and submit a large grid (the paper's scale and beyond).

    python benchmarks/submit_grid.py             # 2000 runs; submitted to a DebugExecutor (pickling only)
    python benchmarks/submit_grid.py --slurm     # real sbatch to $SLURM_CONF's cluster (held, then cancelled)
    python benchmarks/submit_grid.py --demo-cli  # `ablation_grid.py grid=demo launcher=slurm` itself, 4 runs,
                                                 # against a real mlflow server, its data already there

The grid is Tetrominoes × (z_size, lr, K) × seeds composed from the shipped Hydra tree. With --slurm the jobs
go to the cluster of $SLURM_CONF held (`launcher.hold=true`) and are cancelled right after, so nothing runs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from orchestration.compose import Composer
from orchestration.grid import expand_grid
from orchestration.plan import Decision, format_plan, make_plan
from orchestration.submit import submit


def large_grid(sizes: list[int], seeds: int) -> dict:
    z, lr, k = sizes
    return {
        "name": "bench",
        "base": {"dataset": "tetrominoes", "training.iters": 100},
        "axes": [
            {"product": {"model.z_size": [8 * (i + 1) for i in range(z)]}},
            {
                "product": {
                    "training.lr": [1e-4 * (i + 1) for i in range(lr)],
                    "model.K": [3 + i for i in range(k)],
                }
            },
        ],
        "seeds": list(range(1, seeds + 1)),
    }


def time_demo_cli(repeats: int = 3) -> None:
    """Seconds of the whole command submitting the 4-run demo grid (held, then cancelled), each into a new
    experiment of one real ``mlflow server``, after a first submission has generated the data."""
    repo = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(repo))
    from tests.fixtures.mlflow_server import MlflowServer

    with tempfile.TemporaryDirectory() as work:
        server = MlflowServer(Path(work) / "server")
        server.start()
        try:
            for attempt in range(repeats + 1):
                command = [
                    sys.executable,
                    str(repo / "experiments" / "ablation_grid.py"),
                    "grid=demo",
                    "launcher=slurm",
                    "launcher.hold=true",
                    "wait=false",
                    f"output_root={work}/out{attempt}",
                    f"data.root={work}/data",
                    "tracking=server",
                    f"tracking.uri={server.uri}",
                    f"grid.experiment=bench-demo-{attempt}",
                ]
                start = time.perf_counter()
                done = subprocess.run(command, capture_output=True, text=True, check=True)
                seconds = time.perf_counter() - start
                for line in done.stdout.splitlines():
                    if line.startswith("submitted"):
                        subprocess.run(["scancel", line.rsplit(" ", 1)[-1]], check=False)
                what = "first (generates the data)" if attempt == 0 else f"again ({attempt})"
                print(f"submit the 4-run demo grid, {what}: {seconds:.2f} s")
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs-per-axis", type=int, nargs=3, default=[10, 10, 5], metavar=("Z", "LR", "K"))
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--slurm", action="store_true", help="submit for real (held, then cancelled)")
    parser.add_argument("--demo-cli", action="store_true", help="time the command submitting the demo grid")
    args = parser.parse_args()
    if args.demo_cli:
        time_demo_cli()
        return

    with tempfile.TemporaryDirectory() as root:
        launcher = (
            ["launcher=slurm", "launcher.hold=true", "launcher.snapshot=false"]
            if args.slurm
            else ["launcher=debug"]
        )
        composer = Composer("ablation_grid", [*launcher, f"output_root={root}", "grid.name=bench"])
        start = time.perf_counter()
        specs = expand_grid(large_grid(args.runs_per_axis, args.seeds), composer)
        expanded = time.perf_counter()
        plan = make_plan(specs, {spec.run_key: Decision.NEW for spec in specs}, max_array_size=1001)
        table = format_plan(plan)
        planned = time.perf_counter()
        submissions, _ = submit(plan)
        submitted = time.perf_counter()
        if args.slurm:
            for job_id in sorted({entry.job_id.split("_")[0] for entry in submissions}):
                subprocess.run(["scancel", job_id], check=False)

    n = len(specs)
    print(table.splitlines()[0])
    print(f"expand + validate: {expanded - start:8.2f} s  ({1e3 * (expanded - start) / n:.2f} ms/run)")
    print(f"plan + dry-run table: {planned - expanded:5.2f} s")
    print(
        f"submit ({'sbatch, held' if args.slurm else 'DebugExecutor'}, {len(plan.arrays)} arrays): "
        f"{submitted - planned:.2f} s  ({1e3 * (submitted - planned) / n:.2f} ms/run)"
    )


if __name__ == "__main__":
    main()
