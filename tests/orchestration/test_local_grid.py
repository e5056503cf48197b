"""The default local launcher end to end: runs throttled to array_parallelism, live local jobs left alone."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from orchestration.ledger import Submission, read_ledger
from orchestration.scheduler import live_local_jobs

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
# the demo grid (2 priors) at toy size, one seed: two runs of a few seconds of training each
TINY = [
    "grid=demo",
    "grid.seeds=[1]",
    "training.iters=8",
    "training.log_every=4",
    "training.checkpoint_every_steps=8",
    "geco.warm_start=4",
    "data.generate_train=32",
    "data.generate_test=8",
    "eval.num_images=8",
    "eval.batch_size=8",
]


def ablation_grid(
    root: Path, *overrides: str, base: Sequence[str] = TINY, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the entry point (``base`` overrides, then ``overrides``; ``env`` for os.environ); output
    through files: local jobs inherit (and keep open) its stdout."""
    command = [sys.executable, str(REPO / "experiments" / "ablation_grid.py"), *base, f"output_root={root}"]
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        env = {**(os.environ if env is None else env), "OMP_NUM_THREADS": "1"}
        done = subprocess.run(
            command + list(overrides), stdout=stdout, stderr=stderr, text=True, env=env, cwd=REPO, timeout=600
        )
        stdout.seek(0)
        stderr.seek(0)
        return subprocess.CompletedProcess(done.args, done.returncode, stdout.read(), stderr.read())


def demo_runs(root: Path) -> list:
    """The demo grid's training runs in MLflow (with their start and end times), in order of start."""
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("emorl-demo")
    runs = [run for run in client.search_runs([experiment.experiment_id]) if "run_key" in run.data.tags]
    return sorted(runs, key=lambda run: run.info.start_time)


def test_live_local_jobs_are_the_ledgers_local_controllers_still_running(tmp_path):
    controller = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "submitit.local._local"]
    )
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ended = subprocess.Popen([sys.executable, "-c", "pass", "submitit.local._local"])
    ended.wait()
    try:
        ledger = {
            name: Submission(name, "cell", 1, str(process.pid), str(tmp_path), launcher, "now")
            for name, process, launcher in (
                ("controller", controller, "local"),
                ("other", other, "local"),  # a reused PID: not a submitit controller
                ("ended", ended, "local"),
                ("slurm", controller, "slurm"),  # SLURM job ids are squeue's business
            )
        }
        assert live_local_jobs(ledger) == {str(controller.pid): "RUNNING"}
    finally:
        for process in (controller, other):
            process.kill()
            process.wait()


def test_local_runs_start_at_most_array_parallelism_at_a_time_and_all_finish(tmp_path):
    done = ablation_grid(tmp_path, "launcher.array_parallelism=1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "submitted 1 runs" in done.stdout and "1 more start as these end" in done.stdout
    table = done.stdout[done.stdout.index("FG-ARI (%)") :]  # the grid's table, one row per prior
    assert all(f"| {prior} " in table for prior in ("reversed_plusplus", "bottom_up"))
    assert "grid=discovery" in table  # the demo's note under its table points at the setting that segments
    runs = demo_runs(tmp_path)
    assert [run.info.status for run in runs] == ["FINISHED", "FINISHED"]
    first, second = runs
    assert first.info.end_time <= second.info.start_time  # one after the other, never both at once


def test_a_running_local_grid_is_left_alone_then_skipped_once_finished(tmp_path):
    longer = "training.iters=40"  # still training when the second call looks
    try:
        started = ablation_grid(tmp_path, "wait=false", longer)
        assert started.returncode == 0, started.stderr[-3000:]
        ledger = read_ledger(tmp_path, "demo")
        assert len(ledger) == 2 and all(entry.launcher == "local" for entry in ledger.values())

        again = ablation_grid(tmp_path, "dry_run=true", longer)
        assert again.returncode == 0, again.stderr[-3000:]
        assert "queued/running: 2" in again.stdout and "to submit: 0 jobs" in again.stdout

        deadline = time.monotonic() + 300
        while live_local_jobs(read_ledger(tmp_path, "demo")) and time.monotonic() < deadline:
            time.sleep(2)
        assert not live_local_jobs(read_ledger(tmp_path, "demo")), "the local runs did not end in 5 minutes"
        finished = ablation_grid(tmp_path, "dry_run=true", longer)
        assert "finished: 2" in finished.stdout and "to submit: 0 jobs" in finished.stdout
    finally:  # whatever happened, no job of this test outlives it
        subprocess.run(["pkill", "-KILL", "-f", str(tmp_path / "demo" / "submitit")], check=False)
