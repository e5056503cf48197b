"""A grid read back, and its experiment ensured, over the REST API directly (``orchestration.tracking.rest``)
against a real ``mlflow server``: the same runs as the mlflow client reads, without loading the mlflow
package; anything it cannot do left to the client."""

from __future__ import annotations

import math
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from orchestration.tracking import rest
from orchestration.tracking.grid_runs import tracked_runs
from orchestration.tracking.store import EXPERIMENT_KIND, TrackingUnavailable, ensure_experiment
from tests.fixtures.mlflow_server import free_port

pytestmark = pytest.mark.mlflow_server
REPO = Path(__file__).resolve().parents[2]


def a_grid(uri: str) -> tuple[str, str]:
    """A fresh experiment with grid ``g``: three training runs (one finished, with a NaN metric), a run of
    another grid and one without a run_key; returns (experiment, grid)."""
    experiment = f"rest-{uuid.uuid4().hex[:8]}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment(experiment)
    for index in range(3):
        tags = {"grid": "g", "run_key": f"k{index}", "seed": str(index + 1)}
        run_id = client.create_run(experiment_id, tags=tags, run_name=f"seed {index + 1}").info.run_id
        steps = [Metric("train/nll", 100.0 - step, 0, step) for step in range(0, 10 * (index + 1) + 1, 10)]
        client.log_batch(run_id, metrics=steps)
        client.log_param(run_id, "model.prior", "bottom_up")
        if index == 0:
            client.log_metric(run_id, "eval/fg_ari", float("nan"), step=5)
            client.set_terminated(run_id, "FINISHED")
    client.create_run(experiment_id, tags={"grid": "other", "run_key": "x"})
    client.create_run(experiment_id, tags={"grid": "g"})
    return experiment, "g"


def test_the_rest_search_reads_a_grid_as_the_mlflow_client_does(mlflow_server, monkeypatch):
    experiment, grid = a_grid(mlflow_server)
    monkeypatch.setattr(rest, "PAGE", 2)  # three pages for five runs
    assert rest.serves(mlflow_server)
    direct = tracked_runs(mlflow_server, experiment, grid)
    monkeypatch.setattr(rest, "serves", lambda uri: False)
    through_mlflow = tracked_runs(mlflow_server, experiment, grid)

    assert list(direct) == ["k0", "k1", "k2"]  # oldest first, other grids and key-less runs left out
    assert [run.step for run in direct.values()] == [10, 20, 30]
    assert direct["k0"].status == "FINISHED" and direct["k0"].end_time is not None
    assert math.isnan(direct["k0"].metrics["eval/fg_ari"])
    for key, run in direct.items():
        other = through_mlflow[key]
        assert (run.run_id, run.status, run.tags, run.params, run.start_time, run.end_time, run.step) == (
            other.run_id,
            other.status,
            other.tags,
            other.params,
            other.start_time,
            other.end_time,
            other.step,
        )
        assert run.metrics.keys() == other.metrics.keys()


def test_reading_a_grid_from_a_server_does_not_load_the_mlflow_package(mlflow_server):
    experiment, grid = a_grid(mlflow_server)
    script = (
        "import sys\n"
        "from orchestration.reconcile import grid_state\n"
        "from orchestration.tracking.grid_runs import tracked_runs\n"
        f"runs = tracked_runs({mlflow_server!r}, {experiment!r}, {grid!r})\n"
        "print(len(runs), 'mlflow' in sys.modules)\n"
    )
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "False"]


def test_a_missing_experiment_reads_as_no_runs(mlflow_server):
    assert tracked_runs(mlflow_server, f"never-{uuid.uuid4().hex[:8]}", "g") == {}


def test_an_unreachable_server_is_left_to_the_mlflow_client_and_its_clear_error():
    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(rest.RestUnavailable):
        list(rest.search_runs(uri, "e", "", []))
    with pytest.raises(TrackingUnavailable, match=f"{uri} cannot be reached") as raised:
        tracked_runs(uri, "e", "g")
    assert isinstance(raised.value.__cause__, MlflowException)  # the client's own error, kept as the cause


def test_only_setups_the_standard_library_can_authenticate_go_direct(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_AUTH", raising=False)
    assert rest.serves("https://mlflow.lab:5000") and not rest.serves("sqlite:////tmp/mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_AUTH", "my_plugin")
    assert not rest.serves("https://mlflow.lab:5000")
    monkeypatch.delenv("MLFLOW_TRACKING_AUTH")
    (tmp_path / ".mlflow").mkdir()
    (tmp_path / ".mlflow" / "credentials").write_text("[mlflow]\nmlflow_tracking_username = me\n")
    assert not rest.serves("https://mlflow.lab:5000")


def test_an_experiment_is_created_tagged_and_reused_over_rest(mlflow_server):
    name = f"rest-new-{uuid.uuid4().hex[:8]}"
    experiment_id = ensure_experiment(mlflow_server, name)
    assert rest.ensure_experiment(mlflow_server, name, EXPERIMENT_KIND) == experiment_id
    client = MlflowClient(mlflow_server)
    assert client.get_experiment(experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    untagged = client.create_experiment(f"rest-old-{uuid.uuid4().hex[:8]}")  # made before the kind tag
    name_of_untagged = client.get_experiment(untagged).name
    assert ensure_experiment(mlflow_server, name_of_untagged) == untagged
    assert client.get_experiment(untagged).tags["mlflow.experimentKind"] == "custom_model_development"


def test_an_experiment_created_meanwhile_by_another_job_is_reused(mlflow_server, monkeypatch):
    name = f"rest-race-{uuid.uuid4().hex[:8]}"
    calls = []
    real = rest._experiment

    def late_lookup(uri, wanted):  # the first look-up misses it: another job creates it just after
        calls.append(wanted)
        if len(calls) == 1:
            MlflowClient(uri).create_experiment(wanted)
            return None
        return real(uri, wanted)

    monkeypatch.setattr(rest, "_experiment", late_lookup)
    experiment_id = rest.ensure_experiment(mlflow_server, name, EXPERIMENT_KIND)
    assert experiment_id == MlflowClient(mlflow_server).get_experiment_by_name(name).experiment_id
