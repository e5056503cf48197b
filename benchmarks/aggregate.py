"""Time a grid's tables on a large grid, against a real ``mlflow server`` (goal: ≤ 5 s warm for 1 000 runs).

    python benchmarks/aggregate.py                          # starts its own server on 127.0.0.1
    python benchmarks/aggregate.py --runs 200 --tracking-uri http://127.0.0.1:5000

Creates ``--runs`` FINISHED runs (``--seeds`` per cell; 5 metrics with ``--steps`` steps of history each;
one seed in ten collapsed; written straight into the server's SQLite store before it starts, which is much
faster than through its HTTP API on a loaded machine), then times collect (one paged search), aggregate,
layout + every format, and the plots: cold (histories read from the server) and warm (histories from the
local cache).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestration.aggregate import aggregate, collect  # noqa: E402
from orchestration.plots import write_plots  # noqa: E402
from orchestration.table_formats import FORMATS, render  # noqa: E402
from orchestration.tables import build_table  # noqa: E402

METRICS = ("train/nll", "train/kl", "eval/fg_ari", "eval/mse", "eval/kl")
GRID, EXPERIMENT = "bench", "emorl-bench-aggregate"


def create_runs(uri: str, runs: int, seeds: int, steps: int) -> pd.DataFrame:
    """The grid's runs in MLflow; returns the asked frame (run_key, cell_key, seed, labels)."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = found.experiment_id if found else client.create_experiment(EXPERIMENT)
    rng = np.random.default_rng(0)

    def one(index: int) -> dict[str, object]:
        cell, seed = divmod(index, seeds)
        labels = {"variant": f"v{cell:04d}", "model.prior": ("reversed_plusplus", "bottom_up")[cell % 2]}
        tags = {"grid": GRID, "run_key": f"r{index}", "cell_key": f"c{cell}", "seed": str(seed + 1)}
        tags.update({f"label.{axis}": value for axis, value in labels.items()})
        tags["diagnosis"] = "collapsed" if index % 10 == 3 else "segmenting"
        run_id = client.create_run(experiment_id, tags=tags).info.run_id
        now = int(time.time() * 1000)
        curve = np.linspace(1.0, 0.1, steps)
        metrics = [
            Metric(key, float(curve[step] * (1 + rng.random())), now, step)
            for key in METRICS
            for step in range(steps)
        ]
        for start in range(0, len(metrics), 1000):  # MLflow takes at most 1 000 metrics a batch
            params = [Param("data.name", "tetrominoes")] if start == 0 else []
            client.log_batch(
                run_id, metrics=metrics[start : start + 1000], params=params, tags=[RunTag("bench", "1")]
            )
        client.set_terminated(run_id, "FINISHED")
        return {
            "run_key": f"r{index}",
            "cell_key": f"c{cell}",
            "seed": seed + 1,
            "dataset": "tetrominoes",
            **labels,
        }

    workers = 1 if uri.startswith("sqlite") else 4  # SQLite takes one writer at a time
    with (
        ThreadPoolExecutor(max_workers=workers) as pool,
        contextlib.redirect_stdout(io.StringIO()),
    ):  # run links
        return pd.DataFrame(list(pool.map(one, range(runs))))


def timed_pass(uri: str, asked: pd.DataFrame, folder: Path) -> dict[str, float]:
    """Seconds of each stage of one full pass."""
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    runs = collect(uri, EXPERIMENT, GRID)
    seconds["collect"] = time.perf_counter() - start
    start = time.perf_counter()
    cells = aggregate(runs, asked, include_collapsed=False)
    seconds["aggregate"] = time.perf_counter() - start
    start = time.perf_counter()
    table = build_table(cells, GRID, "generic")
    for fmt in FORMATS:
        (folder / f"{GRID}.{FORMATS[fmt]}").write_text(render(fmt, table, cells, "benchmarks/aggregate.py"))
    seconds["render"] = time.perf_counter() - start
    start = time.perf_counter()
    write_plots(uri, runs, cells, folder, GRID, cache_dir=folder / "cache")
    seconds["plots"] = time.perf_counter() - start
    seconds["total"] = sum(seconds.values())
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", help="an existing MLflow server; default: start one here")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warm-repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-aggregate-"))
    server = None
    uri = args.tracking_uri
    try:
        start = time.perf_counter()
        if uri is None:
            from tests.fixtures.mlflow_server import MlflowServer

            server = MlflowServer(work / "server")
            server.root.mkdir(parents=True)
            asked = create_runs(f"sqlite:///{server.root / 'mlflow.db'}", args.runs, args.seeds, args.steps)
            print("starting mlflow server ...", flush=True)
            server.start()
            uri = server.uri
        else:
            asked = create_runs(uri, args.runs, args.seeds, args.steps)
        print(
            f"created {args.runs} runs ({len(METRICS)} metrics × {args.steps} steps) in "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )
        folder = work / "tables"
        folder.mkdir()
        passes = [("cold", timed_pass(uri, asked, folder))]
        passes += [(f"warm {i + 1}", timed_pass(uri, asked, folder)) for i in range(args.warm_repeats)]
        print(pd.DataFrame({name: seconds for name, seconds in passes}).T.round(2).to_string())
        warm = min(seconds["total"] for name, seconds in passes if name.startswith("warm"))
        print(f"server {uri}; {args.runs} runs; warm total {warm:.2f} s (goal ≤ 5 s)")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
