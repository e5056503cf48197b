"""``experiments/train.py`` against a real MLflow server: finished, failed and SIGTERM-killed runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from emorl.train.checkpoint import latest_checkpoint

pytestmark = pytest.mark.mlflow_server
ENTRY = Path(__file__).resolve().parents[2] / "experiments" / "train.py"


def command(uri: str, data_root: Path, output_root: Path, experiment: str, *overrides: str) -> list[str]:
    return [
        sys.executable,
        str(ENTRY),
        "dataset=tetrominoes",
        "debug=toy",
        "tracking=server",
        f"tracking.uri={uri}",
        f"tracking.experiment={experiment}",
        f"output_root={output_root}",
        f"data.root={data_root}",
        "model.z_size=4",
        "model.K=2",
        "training.device=cpu",
        "progress=false",
        *overrides,
    ]


def only_run(uri: str, experiment: str):
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 1
    return client, runs[0]


def test_finished_run_has_params_metrics_images_and_checkpoint(mlflow_server, tetrominoes_root, tmp_path):
    args = command(
        mlflow_server,
        tetrominoes_root,
        tmp_path,
        "entry-finished",
        "training.iters=4",
        "training.log_every=2",
        "training.image_every=2",
    )
    done = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    client, run = only_run(mlflow_server, "entry-finished")
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "tetrominoes-L3-I1-seed1"
    assert run.data.params["training.lr"] == "0.0004"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/nll")] == [2, 4]
    images = [a.path for a in client.list_artifacts(run.info.run_id, "images/train")]
    assert "images/train/train_examples_00000004.png" in images
    assert [a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")] == [
        "checkpoints/step-00000004.pt"
    ]


def test_failed_run_is_marked_failed_with_its_traceback(mlflow_server, tmp_path):
    args = command(
        mlflow_server, tmp_path / "no-data", tmp_path, "entry-failed", "data.generate_if_missing=false"
    )
    done = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "emorl-data generate tetrominoes" in done.stderr
    client, run = only_run(mlflow_server, "entry-failed")
    assert run.info.status == "FAILED"
    local = client.download_artifacts(run.info.run_id, "run/traceback.txt", str(tmp_path))
    assert "DatasetError" in Path(local).read_text()


def test_sigterm_checkpoints_and_marks_the_run_killed(mlflow_server, tetrominoes_root, tmp_path):
    args = command(
        mlflow_server,
        tetrominoes_root,
        tmp_path,
        "entry-killed",
        "training.iters=100000",
        "training.log_every=1",
    )
    child = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 300
    for line in child.stdout:
        if line.startswith("step 2:") or time.monotonic() > deadline:
            break
    child.send_signal(signal.SIGTERM)
    output = child.communicate(timeout=300)[0]
    assert child.returncode == 0, output[-3000:]
    assert "stopped by SIGTERM" in output
    _, run = only_run(mlflow_server, "entry-killed")
    assert run.info.status == "KILLED"
    checkpoint = latest_checkpoint(tmp_path / "train" / "debug-tetrominoes-seed1" / "checkpoints")
    assert checkpoint is not None and int(checkpoint.stem.split("-")[1]) >= 2
