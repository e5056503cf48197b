"""A lab's tracking server with MLflow's basic auth, for real: the login comes from the environment, reaches
the SLURM jobs, and is written nowhere a run writes; no login or a wrong one is refused before anything is
submitted."""

from __future__ import annotations

import os
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from emorl.config import ConfigError
from orchestration.config import TrackingConfig
from orchestration.tracking.store import TrackingUnavailable, ensure_experiment
from tests.fixtures.mlflow_server import BasicAuth, MlflowServer
from tests.orchestration.test_local_grid import ablation_grid

pytestmark = [pytest.mark.mlflow_server]
USER = "lab-admin"
PASSWORD = f"pw-{secrets.token_hex(12)}"  # distinctive: searched for in every file a run writes
LOGIN = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("auth-server"), auth=BasicAuth(USER, PASSWORD))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def environment(username: str | None, password: str | None) -> dict[str, str]:
    """os.environ with this login (or none)."""
    env = {key: value for key, value in os.environ.items() if key not in LOGIN}
    for name, value in zip(LOGIN, (username, password), strict=True):
        if value is not None:
            env[name] = value
    return env


def files_holding(text: str, *roots: Path) -> list[Path]:
    """Every file under ``roots`` whose bytes contain ``text``."""
    needle = text.encode()
    return [
        path
        for root in roots
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes()
    ]


def test_a_client_without_a_login_is_refused(auth_server, monkeypatch):
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{auth_server.uri}/api/2.0/mlflow/experiments/search?max_results=1")
    assert refused.value.code == 401
    for name in LOGIN:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(TrackingUnavailable, match=r"requires a login.*MLFLOW_TRACKING_USERNAME and"):
        ensure_experiment(auth_server.uri, "anonymous")


def test_a_wrong_password_is_one_clear_error_and_nothing_is_submitted(auth_server, tmp_path):
    wrong = f"wrong-{secrets.token_hex(6)}"
    done = ablation_grid(
        tmp_path,
        "tracking=server",
        f"tracking.uri={auth_server.uri}",
        env=environment(USER, wrong),
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert errors == [
        f"the MLflow server {auth_server.uri} refused the login of user {USER!r} (HTTP 401: wrong user name "
        "or password); check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD",
        "nothing was submitted",
    ]
    assert wrong not in done.stdout + done.stderr
    assert not (tmp_path / "demo").exists()  # no ledger, no submitit folder, no run folder


def test_a_password_in_the_tracking_uri_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match="set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"):
        TrackingConfig.from_dict({"kind": "server", "uri": "http://me:secret@host:5000", "experiment": "e"})


@pytest.mark.slurm
@pytest.mark.slow
def test_a_slurm_grid_logs_with_the_login_from_the_environment_and_writes_it_nowhere(
    auth_server, slurm_cluster, tmp_path, monkeypatch
):
    done = ablation_grid(
        tmp_path,
        "tracking=server",
        f"tracking.uri={auth_server.uri}",
        "launcher=slurm",
        "launcher.profile=slurm/profiles/local_test_cluster.yaml",
        "wait=true",
        env=environment(USER, PASSWORD),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for name, value in zip(LOGIN, (USER, PASSWORD), strict=True):  # the test's own client logs in too
        monkeypatch.setenv(name, value)
    client = MlflowClient(auth_server.uri)
    experiment = client.get_experiment_by_name("emorl-demo")
    runs = [run for run in client.search_runs([experiment.experiment_id]) if "run_key" in run.data.tags]
    assert len(runs) == 2 and {run.info.status for run in runs} == {"FINISHED"}
    assert all(run.data.tags["slurm_job_id"] and "eval/fg_ari" in run.data.metrics for run in runs)
    # the ledger, submitit's pickles and logs, configs, checkpoints, evaluation; the server's store
    # (params, tags) and its artifacts (config.json, requirements.txt, results.json)
    assert (tmp_path / "demo" / "submissions.jsonl").is_file()
    assert list((tmp_path / "demo" / "submitit").rglob("*.pkl"))
    assert files_holding(PASSWORD, tmp_path, auth_server.root) == []
    assert PASSWORD not in done.stdout + done.stderr
