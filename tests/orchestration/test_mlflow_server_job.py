"""slurm/mlflow_server.sbatch on the real SLURM test cluster: a long-lived job that serves MLflow (SQLite on
the shared disk, basic auth), prints the tracking.uri to use, and stops with scancel."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

pytestmark = [pytest.mark.slurm, pytest.mark.mlflow_server, pytest.mark.slow]
SCRIPT = Path(__file__).resolve().parents[2] / "slurm" / "mlflow_server.sbatch"
START_TIMEOUT_S = 240


def wait_for_uri(output: Path, state: Path, cluster, job_id: str) -> str:
    """The tracking.uri line of the job's output, once the server answers."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        text = output.read_text() if output.is_file() else ""
        found = re.search(r"^tracking\.uri=(\S+)$", text, flags=re.MULTILINE)
        if found:
            return found.group(1)
        state_now = cluster.run("squeue", "-h", "-j", job_id, "-o", "%T").strip()
        assert state_now in ("PENDING", "RUNNING"), f"server job {job_id} is {state_now!r}:\n{text[-2000:]}"
        time.sleep(1)
    raise TimeoutError(f"no tracking.uri from job {job_id} in {START_TIMEOUT_S} s:\n{text[-2000:]}")


def test_the_server_job_prints_its_tracking_uri_serves_logged_in_clients_and_stops(
    slurm_cluster, tmp_path, monkeypatch
):
    state, output = tmp_path / "mlflow-state", tmp_path / "server.out"
    password = f"pw-{secrets.token_hex(8)}"
    env = {**slurm_cluster.env, "MLFLOW_AUTH_ADMIN_PASSWORD": password, "PYTHON": sys.executable}
    submitted = subprocess.run(
        ["sbatch", "--parsable", "--partition=debug", f"--output={output}", str(SCRIPT), str(state)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    job_id = submitted.stdout.strip().split(";")[0]
    try:
        uri = wait_for_uri(output, state, slurm_cluster, job_id)
        assert uri.startswith("http://") and (state / "tracking_uri").read_text().strip() == uri
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{uri}/api/2.0/mlflow/experiments/search?max_results=1", timeout=10)
        assert refused.value.code == 401
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        client = MlflowClient(uri)
        run = client.create_run(client.create_experiment("on-a-node"))
        client.log_metric(run.info.run_id, "loss", 0.5, step=1)
        client.log_text(run.info.run_id, "hello", "note.txt")  # artifacts go through the server
        assert client.get_metric_history(run.info.run_id, "loss")[0].value == 0.5
        assert (state / "mlflow.db").is_file() and list((state / "artifacts").rglob("note.txt"))
        assert password not in output.read_text() and password not in (state / "basic_auth.ini").read_text()
    finally:
        slurm_cluster.run("scancel", job_id)
    assert slurm_cluster.wait_for_job(job_id, timeout=120) == "CANCELLED"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{uri}/health", timeout=5)
