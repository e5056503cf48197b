"""Per-step overhead of MLflow logging during training, against a real ``mlflow server`` (goal: ≤ 2 %).

    python benchmarks/logging_overhead.py                     # starts its own server on 127.0.0.1
    python benchmarks/logging_overhead.py --tracking-uri http://127.0.0.1:5000 --steps 200 --log-every 10

Trains the same toy Tetrominoes model for the same steps without a logger and with ``MLflowLogger``
(alternating, ``--repeats`` times each) and prints: the time the training thread spends inside logger
calls per step, the end-to-end difference in step time, and for comparison what one synchronous
``log_metric`` per metric per log step would cost.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from emorl.config import ExperimentConfig  # noqa: E402
from emorl.data.writer import write_dataset  # noqa: E402
from emorl.train import train  # noqa: E402
from orchestration.tracking.logger import MLflowLogger  # noqa: E402
from orchestration.tracking.runs import open_run  # noqa: E402


class TimedLogger:
    """Wraps a logger and adds up the wall time the caller spends in its methods."""

    def __init__(self, inner: MLflowLogger):
        self.inner = inner
        self.seconds = 0.0

    def _timed(self, name: str, *args: Any) -> None:
        start = time.perf_counter()
        getattr(self.inner, name)(*args)
        self.seconds += time.perf_counter() - start

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._timed("log_params", params)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self._timed("log_metrics", metrics, step)

    def log_image(self, key: str, image: np.ndarray, step: int) -> None:
        self._timed("log_image", key, image, step)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._timed("set_tags", tags)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self._timed("log_artifact", path, artifact_path)

    def close(self, status: str = "FINISHED") -> None:
        self.inner.close(status)


def config(data_root: Path, output_dir: Path, args: argparse.Namespace) -> ExperimentConfig:
    return ExperimentConfig.from_dict(
        {
            "model": {
                "K": 4,
                "z_size": 32,
                "decoder": "small",
                "input_size": [3, 35, 35],
                "log_scale": -1.2039728,
            },
            "data": {"name": "tetrominoes", "root": str(data_root), "num_workers": 0, "in_memory": True},
            "training": {
                "batch_size": args.batch_size,
                "iters": args.steps,
                "warmup_steps": 10,
                "refinement_curriculum": [[-1, 3]],
                "log_every": args.log_every,
                "image_every": args.image_every,
                "checkpoint_every_steps": 10**9,
                "checkpoint_every_minutes": 10**6,
                "output_dir": str(output_dir),
                "resume": False,
                "device": "cpu",
            },
            "geco": {"reconstruction_target": -1.224, "warm_start": 10},
        }
    )


def timed_run(cfg: ExperimentConfig, logger: TimedLogger | None) -> float:
    start = time.perf_counter()
    train(cfg, logger, progress=False)
    return time.perf_counter() - start


def synchronous_cost(uri: str, run_id: str, num_metrics: int) -> float:
    """Seconds for one log step done the naive way: one blocking ``log_metric`` call per metric."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    start = time.perf_counter()
    for index in range(num_metrics):
        client.log_metric(run_id, f"naive/metric_{index}", float(index), step=0)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tracking-uri", help="an existing MLflow server; default: start one here")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--image-every", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="emorl-logging-bench-"))
    server = None
    uri = args.tracking_uri
    if uri is None:
        from tests.fixtures.mlflow_server import MlflowServer

        server = MlflowServer(work / "server")
        print("starting mlflow server ...", flush=True)
        server.start()
        uri = server.uri
    try:
        write_dataset("tetrominoes", work / "data", max(64, args.batch_size), 8, seed=0, progress=False)
        cfg = config(work / "data", work / "run", args)
        train(cfg, None, progress=False)  # warm-up: imports, allocator, data file cache
        plain, logged, in_calls = [], [], []
        for repeat in range(args.repeats):
            plain.append(timed_run(cfg, None))
            run_id = open_run(uri, "logging-overhead", f"bench-{time.time_ns()}-{repeat}")
            logger = TimedLogger(MLflowLogger(uri, run_id))
            logged.append(timed_run(cfg, logger))
            in_calls.append(logger.seconds)
            logger.close("FINISHED")
        step_plain = statistics.median(plain) / args.steps
        step_logged = statistics.median(logged) / args.steps
        call_per_step = statistics.median(in_calls) / args.steps
        naive = synchronous_cost(uri, run_id, num_metrics=13)
        print(
            f"server {uri}; {args.steps} steps, batch {args.batch_size}, metrics every {args.log_every}, "
            f"images every {args.image_every}; {args.repeats} repeats (median)"
        )
        print(f"step time without logging : {step_plain * 1e3:8.2f} ms")
        print(
            f"step time with MLflowLogger: {step_logged * 1e3:8.2f} ms "
            f"({(step_logged - step_plain) / step_plain:+.2%} end to end)"
        )
        print(
            f"training thread inside logger calls: {call_per_step * 1e3:.3f} ms/step "
            f"({call_per_step / step_plain:.3%} of step time; goal <= 2 %)"
        )
        print(
            f"for comparison, synchronous log_metric x13 per log step: {naive * 1e3:.0f} ms "
            f"= {naive / args.log_every / step_plain:.1%} of step time at this cadence"
        )
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
