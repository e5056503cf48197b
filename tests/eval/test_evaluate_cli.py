"""experiments/evaluate.py end to end: a real checkpoint, a real MLflow (SQLite) store, a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from emorl.identity import identity_key
from orchestration.tracking.runs import open_run
from orchestration.tracking.store import local_tracking_uri
from tests.eval.conftest import tiny_config, write_tiny_checkpoint

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "experiments"))
from evaluate import evaluation_config  # noqa: E402


def run_cli(cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, str(REPO / "experiments" / "evaluate.py"), "progress=false", *overrides],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=cwd,
        check=False,
    )


def test_null_overrides_keep_the_checkpoint_values_and_others_replace_them(tmp_path: Path):
    saved = tiny_config("tetrominoes", tmp_path / "data", tmp_path / "run")
    config = evaluation_config(
        saved, {"eval": {"num_images": 3, "seed": None}, "data": {"root": "/elsewhere"}}
    )
    assert config.eval.num_images == 3 and config.eval.seed == saved.eval.seed
    assert config.data.root == "/elsewhere" and config.model == saved.model


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_cli_logs_metrics_and_pictures_into_the_training_run(tetrominoes_root: Path, tmp_path: Path):
    cfg = tiny_config("tetrominoes", tetrominoes_root, tmp_path / "run")
    checkpoint = write_tiny_checkpoint(cfg)
    uri = local_tracking_uri(tmp_path / "outputs")
    run_id = open_run(uri, "emorl", identity_key(cfg), run_name="trained")
    MlflowClient(uri).set_terminated(run_id, "FINISHED")
    for eval_type in ("ari_mse_kl", "figures"):
        done = run_cli(
            tmp_path,
            f"checkpoint={checkpoint}",
            f"eval={eval_type}",
            f"output_root={tmp_path / 'outputs'}",
            "eval.num_images=4",
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"logged into MLflow run {run_id}" in done.stdout
    results = json.loads((tmp_path / "run" / "eval" / "ari_mse_kl" / "results.json").read_text())
    assert results["fg_ari"]["n"] == 4
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.data.metrics["eval/fg_ari"] == pytest.approx(results["fg_ari"]["mean"])
    assert run.info.status == "FINISHED"
    pictures = [item.path for item in client.list_artifacts(run_id, "eval/figures/figures")]
    assert "eval/figures/figures/sample_0.png" in pictures


@pytest.mark.slow
def test_cli_without_a_matching_run_keeps_results_on_disk(tetrominoes_root: Path, tmp_path: Path):
    cfg = tiny_config("tetrominoes", tetrominoes_root, tmp_path / "run")
    checkpoint = write_tiny_checkpoint(cfg)
    done = run_cli(
        tmp_path,
        f"checkpoint={checkpoint.parent.parent}",
        f"output_root={tmp_path / 'outputs'}",
        f"out_dir={tmp_path / 'scores'}",
        "eval.num_images=2",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "no MLflow run with run_key" in done.stderr
    assert json.loads((tmp_path / "scores" / "results.json").read_text())["mse"]["n"] == 2
