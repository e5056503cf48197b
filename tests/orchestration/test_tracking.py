"""MLflow tracking against a real ``mlflow server``: run identity, batched logging, outages, statuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from orchestration.tracking.logger import MLflowLogger
from orchestration.tracking.runs import RunOpening, find_run, logged_steps, open_run, run_status
from orchestration.tracking.spool import deliver_spools, replay_spool
from orchestration.tracking.store import ensure_experiment, is_outage, local_tracking_uri

pytestmark = pytest.mark.mlflow_server


def metric_steps(uri: str, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in MlflowClient(uri).get_metric_history(run_id, key))


def test_open_run_reuses_the_run_with_the_same_key(mlflow_server: str):
    first = open_run(mlflow_server, "identity", "key-a", run_name="tetrominoes-L3-I3-seed1", tags={"seed": 1})
    MlflowClient(mlflow_server).set_terminated(first, status="KILLED")
    again = open_run(mlflow_server, "identity", "key-a")
    assert again == first
    assert run_status(again, mlflow_server) == "RUNNING"
    run = MlflowClient(mlflow_server).get_run(first)
    assert run.info.run_name == "tetrominoes-L3-I3-seed1"
    assert run.data.tags["seed"] == "1"
    assert find_run("key-a", "identity", mlflow_server) == first
    assert find_run("key-b", "identity", mlflow_server) is None


def test_logger_delivers_params_metrics_images_and_status(mlflow_server: str, tmp_path: Path):
    run_id = open_run(mlflow_server, "logging", "key-logger")
    logger = MLflowLogger(mlflow_server, run_id, flush_interval_s=0.2)
    logger.log_params({"training.lr": 4e-4, "model.K": 4})
    for step in range(1, 51):
        logger.log_metrics({"train/nll": float(step), "train/kl": 0.5}, step)
    logger.log_image("train/reconstruction", np.zeros((8, 16, 3), dtype=np.uint8), 50)
    artifact = tmp_path / "step-00000050.pt"
    artifact.write_bytes(b"weights")
    logger.log_artifact(artifact, "checkpoints")
    logger.set_tags({"diagnosis": "collapsed"})
    logger.set_tags({"diagnosis": "segmenting"})
    logger.close("FINISHED")

    client = MlflowClient(mlflow_server)
    run = client.get_run(run_id)
    assert run.data.params == {"training.lr": "0.0004", "model.K": "4"}
    assert run.data.tags["diagnosis"] == "segmenting"
    assert metric_steps(mlflow_server, run_id, "train/nll") == list(range(1, 51))
    assert [a.path for a in client.list_artifacts(run_id, "images/train")] == [
        "images/train/train_reconstruction_00000050.png"
    ]
    assert [a.path for a in client.list_artifacts(run_id, "checkpoints")] == ["checkpoints/step-00000050.pt"]
    assert run.info.status == "FINISHED"


def test_a_resumed_run_drops_the_steps_it_already_has_and_counts_its_attempts(mlflow_server: str):
    run_id = open_run(mlflow_server, "resume", "key-resume")
    first = MLflowLogger(mlflow_server, run_id, flush_interval_s=0.2)
    for step in range(1, 8):  # a hard kill after step 7; the last checkpoint was at step 4
        first.log_metrics({"train/nll": float(step)}, step)
    first.close("FINISHED")
    again = open_run(mlflow_server, "resume", "key-resume")
    assert logged_steps(mlflow_server, again) == {"train/nll": 7}
    resumed = MLflowLogger(
        mlflow_server, again, flush_interval_s=0.2, logged_steps=logged_steps(mlflow_server, again)
    )
    for step in range(5, 11):
        resumed.log_metrics({"train/nll": float(step), "eval/fg_ari": 0.5}, step)
    resumed.close("FINISHED")
    assert metric_steps(mlflow_server, run_id, "train/nll") == list(range(1, 11))
    assert metric_steps(mlflow_server, run_id, "eval/fg_ari") == list(range(5, 11))  # a new key: all of it
    assert MlflowClient(mlflow_server).get_run(run_id).data.tags["attempt"] == "1"


def test_changed_param_on_resume_keeps_the_rest(mlflow_server: str):
    run_id = open_run(mlflow_server, "logging", "key-params")
    first = MLflowLogger(mlflow_server, run_id, flush_interval_s=0.2)
    first.log_params({"training.iters": 10})
    first.close("KILLED")
    resumed = MLflowLogger(
        mlflow_server, open_run(mlflow_server, "logging", "key-params"), flush_interval_s=0.2
    )
    resumed.log_params({"training.iters": 20, "training.lr": 1e-3})
    resumed.log_metrics({"train/nll": 1.0}, 11)
    resumed.close("FINISHED")
    run = MlflowClient(mlflow_server).get_run(run_id)
    assert run.data.params == {"training.iters": "10", "training.lr": "0.001"}
    assert run.info.status == "FINISHED"


def test_server_down_mid_run_loses_no_metric(mlflow_server_control, tmp_path: Path):
    server = mlflow_server_control
    run_id = open_run(server.uri, "outage", "key-outage")
    logger = MLflowLogger(server.uri, run_id, flush_interval_s=0.2, retry_interval_s=0.5)
    for step in range(1, 11):
        logger.log_metrics({"train/nll": float(step)}, step)
    server.stop()
    for step in range(11, 31):  # logged while the server is down: must not block or raise
        logger.log_metrics({"train/nll": float(step)}, step)
    server.start()
    for step in range(31, 41):
        logger.log_metrics({"train/nll": float(step)}, step)
    logger.close("FINISHED")
    assert metric_steps(server.uri, run_id, "train/nll") == list(range(1, 41))
    assert run_status(run_id, server.uri) == "FINISHED"


def test_unreachable_at_close_spools_then_replays(mlflow_server_control, tmp_path: Path):
    server = mlflow_server_control
    run_id = open_run(server.uri, "spool", "key-spool")
    server.stop()
    logger = MLflowLogger(server.uri, run_id, spool_dir=tmp_path, flush_interval_s=0.2, retry_interval_s=0.5)
    logger.log_params({"seed": 3})
    for step in range(1, 6):
        logger.log_metrics({"train/nll": float(step)}, step)
    logger.set_tags({"diagnosis": "collapsed"})
    logger.close("FINISHED", timeout_s=3)
    spool = tmp_path / f"{run_id}.jsonl"
    assert spool.is_file()
    server.start()
    replay_spool(spool, server.uri)
    assert metric_steps(server.uri, run_id, "train/nll") == [1, 2, 3, 4, 5]
    assert MlflowClient(server.uri).get_run(run_id).data.params == {"seed": "3"}
    assert MlflowClient(server.uri).get_run(run_id).data.tags["diagnosis"] == "collapsed"
    assert run_status(run_id, server.uri) == "FINISHED"


def test_a_logger_started_while_the_server_is_down_opens_its_run_when_it_is_back(
    mlflow_server_control, tmp_path: Path
):
    server = mlflow_server_control
    previous = open_run(server.uri, "late", "key-late", output_dir=tmp_path)  # an earlier attempt's run
    earlier = MLflowLogger(server.uri, previous, flush_interval_s=0.2)
    earlier.log_metrics({"train/nll": 0.0}, 3)
    earlier.close("KILLED")
    server.stop()
    opening = RunOpening("late", "key-late", "seed 1", {"seed": "1"}, str(tmp_path))
    logger = MLflowLogger(server.uri, None, opening=opening, flush_interval_s=0.2, retry_interval_s=0.5)
    for step in range(1, 11):  # resumed from its step-0 checkpoint: steps 1..3 are already in the run
        logger.log_metrics({"train/nll": float(step)}, step)
    logger.log_params({"seed": 1})
    assert logger.run_id is None
    server.start()
    for step in range(11, 21):
        logger.log_metrics({"train/nll": float(step)}, step)
    logger.close("FINISHED")
    assert logger.run_id == previous == find_run("key-late", "late", server.uri)
    assert metric_steps(server.uri, previous, "train/nll") == [3, *range(4, 21)]
    run = MlflowClient(server.uri).get_run(previous)
    assert run.info.status == "FINISHED" and run.data.params == {"seed": "1"}
    assert run.data.tags["attempt"] == "1" and run.data.tags["seed"] == "1"


def test_a_run_never_opened_is_spooled_with_its_opening_and_created_by_the_replay(
    mlflow_server_control, tmp_path: Path
):
    server = mlflow_server_control
    server.stop()
    opening = RunOpening("never", "key-never", "seed 2", {"seed": "2"})
    logger = MLflowLogger(
        server.uri, None, opening=opening, spool_dir=tmp_path, flush_interval_s=0.2, retry_interval_s=0.5
    )
    for step in range(1, 6):
        logger.log_metrics({"train/nll": float(step)}, step)
    logger.close("FINISHED", timeout_s=3)
    assert (tmp_path / "key-never.jsonl").is_file()
    server.start()
    assert deliver_spools(tmp_path, server.uri) == 6  # 5 metrics and the status
    run_id = find_run("key-never", "never", server.uri)
    assert run_id is not None and metric_steps(server.uri, run_id, "train/nll") == [1, 2, 3, 4, 5]
    run = MlflowClient(server.uri).get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "seed 2"
    assert not list(tmp_path.glob("*.jsonl"))  # delivered ones are renamed, never sent twice


def test_an_outage_is_told_apart_from_a_refusal(mlflow_server: str):
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException) as refused:  # the server answered: 404, no such run
        MlflowClient(mlflow_server).get_run("0" * 32)
    assert not is_outage(refused.value)
    with pytest.raises(MlflowException) as down:
        MlflowClient("http://127.0.0.1:9").get_experiment_by_name("x")
    assert is_outage(down.value)


def test_local_tracking_uri_is_an_absolute_sqlite_file(tmp_path: Path):
    uri = local_tracking_uri(tmp_path / "store")
    assert uri == f"sqlite:///{(tmp_path / 'store').resolve()}/mlflow.db"


def test_local_store_keeps_artifacts_next_to_its_database(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = local_tracking_uri(tmp_path / "store")
    run_id = open_run(uri, "local", "key-local")
    logger = MLflowLogger(uri, run_id, flush_interval_s=0.2)
    logger.log_image("train/input", np.zeros((4, 4, 3), dtype=np.uint8), 1)
    logger.close("FINISHED")
    assert list((tmp_path / "store" / "mlartifacts").rglob("train_input_00000001.png"))
    assert not (tmp_path / "mlruns").exists()
    assert run_status(run_id, uri) == "FINISHED"


class LateLookupClient(MlflowClient):
    """A real client whose first lookup happens just before another job creates the experiment."""

    def get_experiment_by_name(self, name: str):
        if not getattr(self, "looked_once", False):
            self.looked_once = True
            found = super().get_experiment_by_name(name)
            MlflowClient(self._tracking_client.tracking_uri).create_experiment(name)
            return found
        return super().get_experiment_by_name(name)


def test_experiment_created_by_a_concurrent_job_is_reused(mlflow_server: str):
    experiment = "created-concurrently"
    experiment_id = ensure_experiment(mlflow_server, experiment, LateLookupClient(mlflow_server))
    assert experiment_id == MlflowClient(mlflow_server).get_experiment_by_name(experiment).experiment_id


def test_a_run_folder_keeps_its_run_when_resumed_with_more_iterations(mlflow_server: str, tmp_path: Path):
    folder = tmp_path / "train" / "tetrominoes-seed1"
    first = open_run(mlflow_server, "resume", "key-iters-20", output_dir=folder)
    again = open_run(mlflow_server, "resume", "key-iters-30", output_dir=folder)
    assert again == first
    assert MlflowClient(mlflow_server).get_run(first).data.tags["run_key"] == "key-iters-30"
    elsewhere = open_run(mlflow_server, "resume", "key-iters-30", output_dir=tmp_path / "other")
    assert elsewhere == first, "a folder without a record falls back to the run_key"
    assert open_run(mlflow_server, "resume", "key-new", output_dir=tmp_path / "new") != first
