"""Time ``status.py``'s work on a large grid against a real ``mlflow server`` (goal: ≤ 3 s for 256 runs).

    python benchmarks/status_grid.py                 # 256 runs: 3 of 4 finished, 1 of 4 running
    python benchmarks/status_grid.py --seeds 8       # 512

The grid is ``benchmarks/submit_grid.py``'s (Tetrominoes × z_size × lr × seeds) composed from the shipped
Hydra tree. Its MLflow runs are written straight into the server's SQLite store before the server starts
(finished ones with FG-ARI and a diagnosis, running ones with 50 steps of training loss); then the stages of
``experiments/status.py`` are timed in this process: expand + validate, read the grid back (one paged search,
the ledger, the scheduler), and the per-cell table; then ``python experiments/status.py`` itself, with the
grid in a folder of its own (``hydra.searchpath``), start-up included.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from submit_grid import large_grid  # noqa: E402

from orchestration.compose import Composer  # noqa: E402
from orchestration.grid import expand_grid  # noqa: E402
from orchestration.reconcile import grid_state  # noqa: E402
from orchestration.run_spec import RunSpec  # noqa: E402
from orchestration.status import format_status, grid_status  # noqa: E402


def create_runs(store_uri: str, specs: list[RunSpec]) -> None:
    """Every run of ``specs`` in the store: three in four FINISHED (FG-ARI, diagnosis), the rest RUNNING."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store_uri)
    experiment_id = client.create_experiment(specs[0].experiment)
    now = int(time.time() * 1000)
    for index, spec in enumerate(specs):
        tags = {"grid": spec.grid, "run_key": spec.run_key, "cell_key": spec.cell_key, "seed": str(spec.seed)}
        if index % 4:
            tags["diagnosis"] = "collapsed" if index % 10 == 3 else "segmenting"
        run_id = client.create_run(experiment_id, tags=tags, run_name=spec.name).info.run_id
        if index % 4:
            client.log_batch(run_id, metrics=[Metric("eval/fg_ari", 0.5 + index % 7 / 20, now, 100)])
            client.set_terminated(run_id, "FINISHED")
        else:
            metrics = [Metric("train/nll", 1000.0 - step, now, step) for step in range(0, 500, 10)]
            client.log_batch(run_id, metrics=metrics)


def time_cli(grid: dict, overrides: list[str], work: Path, repeats: int = 3) -> str:
    """Wall-clock seconds of the status command on this grid, each of ``repeats`` runs."""
    (work / "conf" / "grid").mkdir(parents=True, exist_ok=True)
    (work / "conf" / "grid" / "bench.yaml").write_text(yaml.safe_dump(grid))
    command = [
        sys.executable,
        str(REPO / "experiments" / "status.py"),
        "grid=bench",
        f"hydra.searchpath=[file://{work / 'conf'}]",
        *overrides,
    ]
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=REPO)
        seconds.append(time.perf_counter() - start)
    return " | ".join(f"{value:.2f}" for value in seconds) + " s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-per-axis", type=int, nargs=3, default=[8, 8, 1], metavar=("Z", "LR", "K"))
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from tests.fixtures.mlflow_server import MlflowServer

    with tempfile.TemporaryDirectory() as work:
        server = MlflowServer(Path(work) / "server")
        server.root.mkdir(parents=True)
        overrides = [
            "launcher=local",
            f"output_root={work}",
            "grid.name=bench",
            "tracking=server",
            f"tracking.uri={server.uri}",
        ]
        grid = large_grid(args.runs_per_axis, args.seeds)
        specs = expand_grid(grid, Composer("ablation_grid", overrides))
        with contextlib.redirect_stdout(io.StringIO()):
            create_runs(server.backend_store_uri, specs)
        server.start()
        try:
            rows = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                specs = expand_grid(grid, Composer("ablation_grid", overrides))
                expanded = time.perf_counter()
                state = grid_state(specs[0])
                read = time.perf_counter()
                cells = grid_status(specs, state.tracked, state.ledger, state.live_jobs)
                table = format_status(specs[0].grid, cells)
                done = time.perf_counter()
                rows.append((expanded - start, read - expanded, done - read, done - start))
            print(table.splitlines()[0])
            print(f"{len(specs)} runs ({len(state.tracked)} in MLflow), server {server.uri}")
            print("expand + validate | read back (MLflow, ledger, queue) | table | total   (seconds)")
            for row in rows:
                print(" | ".join(f"{value:.2f}" for value in row))
            best = min(row[-1] for row in rows)
            print(f"best total in process {best:.2f} s (goal ≤ 3 s)")
            print(f"python experiments/status.py, start-up included: {time_cli(grid, overrides, Path(work))}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
