"""The job callable, run in this process: one MLflow run per run_key, preemption, failures."""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
from functools import partialmethod

import pytest
from mlflow.tracking import MlflowClient

from emorl.eval.diagnosis import DIAGNOSES
from orchestration.compose import Composer
from orchestration.grid import expand_grid
from orchestration.submit import prepare_datasets
from orchestration.task import TrainAndEvaluate
from orchestration.tracking.grid_runs import tracked_runs
from orchestration.tracking.lifetime import StopRequest
from orchestration.tracking.logger import MLflowLogger
from orchestration.tracking.store import ensure_experiment

pytestmark = pytest.mark.slow


def one_run(root, name: str, *overrides: str, **base):
    grid = {"name": name, "base": {"debug": "toy", "training.iters": 6, **base}, "seeds": [3]}
    composer = Composer("ablation_grid", [f"output_root={root}", f"grid.name={name}", *overrides])
    (spec,) = expand_grid(grid, composer)
    prepare_datasets([spec])
    ensure_experiment(spec.tracking.uri, spec.experiment)
    return spec


def runs_of(spec) -> dict:
    return tracked_runs(spec.tracking.uri, spec.experiment, spec.grid)


def test_a_run_is_trained_evaluated_and_finished_in_one_tagged_mlflow_run(tmp_path):
    spec = one_run(tmp_path, "task")
    result = TrainAndEvaluate(spec)()
    assert result["step"] == 6 and "fg_ari" in result
    (run,) = runs_of(spec).values()
    assert run.status == "FINISHED" and "eval/fg_ari" in run.metrics
    assert result["diagnosis"] in DIAGNOSES and run.tags["diagnosis"] == result["diagnosis"]
    for tag in ("grid", "cell_key", "run_key", "seed", "git_sha", "git_dirty", "data_sha256.train"):
        assert run.tags[tag], tag
    assert run.tags["run_key"] == spec.run_key and run.tags["seed"] == "3"
    assert run.params["cell"] == "all" and run.tags["mlflow.runName"] == "seed 3"
    artifacts = {a.path for a in MlflowClient(spec.tracking.uri).list_artifacts(run.run_id, "run")}
    assert artifacts == {"run/config.json", "run/requirements.txt"}

    again = TrainAndEvaluate(spec)()
    assert again["skipped"] == "already FINISHED" and len(runs_of(spec)) == 1


def test_checkpoint_requeues_a_fresh_picklable_copy_for_the_next_attempt(tmp_path):
    spec = one_run(tmp_path, "requeue")
    delayed = TrainAndEvaluate(spec).checkpoint()
    copy = pickle.loads(pickle.dumps(delayed.function))
    assert isinstance(copy, TrainAndEvaluate) and copy.spec == spec


def test_usr2_checkpoints_and_the_next_attempt_continues_the_same_run(tmp_path):
    spec = one_run(tmp_path, "stop", **{"training.iters": 8, "training.log_every": 1})

    def preempt_once_the_job_listens():
        while not isinstance(signal.getsignal(signal.SIGUSR2), StopRequest):
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGUSR2)

    threading.Thread(target=preempt_once_the_job_listens, daemon=True).start()
    first = TrainAndEvaluate(spec)()
    assert first["preempted"] and 0 < first["step"] < 8
    (paused,) = runs_of(spec).values()
    assert paused.status == "RUNNING" and paused.tags["preempted_at_step"] == str(first["step"])

    second = TrainAndEvaluate(spec)()
    assert second["step"] == 8
    (run,) = runs_of(spec).values()
    assert run.run_id == paused.run_id and run.status == "FINISHED" and run.tags["attempt"] == "1"
    client = MlflowClient(spec.tracking.uri)
    steps = [m.step for m in client.get_metric_history(run.run_id, "train/nll")]
    assert steps == sorted(set(steps))
    # outside SLURM each attempt's wall clock is its cost, and the total sums the attempts (no GPU here)
    attempts = client.get_metric_history(run.run_id, "cost/attempt_elapsed_hours")
    assert [m.step for m in attempts] == [0, 1] and all(m.value > 0 for m in attempts)
    assert run.metrics["cost/elapsed_hours"] == pytest.approx(sum(m.value for m in attempts))
    assert run.metrics["cost/gpu_hours"] == 0.0


def test_a_resume_from_an_older_checkpoint_never_logs_a_step_twice(tmp_path):
    cadence = {"training.iters": 8, "training.log_every": 1, "training.checkpoint_every_steps": 2}
    spec = one_run(tmp_path, "older", **cadence, **{"training.keep_checkpoints": 10})
    TrainAndEvaluate(spec)()
    (run,) = runs_of(spec).values()
    # what a hard kill after step 8 leaves: a RUNNING run, and (say) only the step-4 checkpoint on disk
    MlflowClient(spec.tracking.uri).update_run(run.run_id, status="RUNNING")
    for path in (spec.output_dir / "checkpoints").glob("step-*.pt"):
        if path.name != "step-00000004.pt":
            path.unlink()
    assert TrainAndEvaluate(spec)()["step"] == 8
    client = MlflowClient(spec.tracking.uri)
    for key in ("train/nll", "eval/fg_ari"):
        steps = [metric.step for metric in client.get_metric_history(run.run_id, key)]
        assert steps == sorted(set(steps)), key
    assert client.get_run(run.run_id).data.tags["attempt"] == "1"


def test_a_crash_ends_the_run_failed_with_its_traceback(tmp_path):
    spec = one_run(
        tmp_path, "crash", **{"data.generate_if_missing": False, "data.root": str(tmp_path / "none")}
    )
    with pytest.raises(Exception, match="does not exist"):
        TrainAndEvaluate(spec)()
    (run,) = runs_of(spec).values()
    assert run.status == "FAILED"
    artifacts = {a.path for a in MlflowClient(spec.tracking.uri).list_artifacts(run.run_id, "run")}
    assert "run/traceback.txt" in artifacts
    assert run.tags["failure_kind"] == "deterministic" and "does not exist" in run.tags["end_reason"]


@pytest.mark.mlflow_server
def test_a_job_that_starts_while_the_server_is_down_trains_and_attaches_when_it_is_back(
    tmp_path, mlflow_server_control
):
    server = mlflow_server_control
    at_server = ("tracking=server", f"tracking.uri={server.uri}")
    spec = one_run(tmp_path, "outage", *at_server, **{"training.iters": 8})
    server.stop()

    def restart_once_training_has_checkpointed():
        while not list((spec.output_dir / "checkpoints").glob("step-*.pt")):
            time.sleep(0.1)
        server.start()

    threading.Thread(target=restart_once_training_has_checkpointed, daemon=True).start()
    result = TrainAndEvaluate(spec)()  # the server is down when it starts: it trains anyway
    assert result["step"] == 8 and "fg_ari" in result
    (run,) = runs_of(spec).values()
    assert run.status == "FINISHED" and run.tags["run_key"] == spec.run_key
    assert "eval/fg_ari" in run.metrics and run.params["cell"] == "all"
    history = MlflowClient(server.uri).get_metric_history(run.run_id, "train/nll")
    assert sorted(m.step for m in history) == [m.step for m in history] and history[-1].step == 8


@pytest.mark.mlflow_server
def test_what_an_outage_spooled_reaches_mlflow_with_the_next_attempt(tmp_path, mlflow_server_control):
    server = mlflow_server_control
    spec = one_run(tmp_path, "spooled", "tracking=server", f"tracking.uri={server.uri}")
    server.stop()
    with pytest.MonkeyPatch.context() as patch:  # the whole job ran during the outage
        patch.setattr(MLflowLogger, "close", partialmethod(MLflowLogger.close, timeout_s=2.0))
        assert TrainAndEvaluate(spec)()["step"] == 6
    assert [p.name for p in (spec.output_dir / "mlflow-spool").glob("*.jsonl")] == [f"{spec.run_key}.jsonl"]
    server.start()
    again = TrainAndEvaluate(spec)()  # a resubmission: delivers the spool, finds its run, trains nothing more
    assert again["step"] == 6
    (run,) = runs_of(spec).values()
    assert run.status == "FINISHED" and run.tags["attempt"] == "1" and "eval/fg_ari" in run.metrics
