"""Grids on the real SLURM test cluster: arrays, 2-node gloo, idempotency, failures, preemption."""

from __future__ import annotations

import dataclasses
import time

import pytest
import torch
from mlflow.tracking import MlflowClient

from emorl.train import train
from emorl.train.checkpoint import latest_checkpoint, load_checkpoint
from orchestration.compose import CONF_DIR
from orchestration.ledger import read_ledger
from orchestration.plan import Decision
from orchestration.scheduler import live_slurm_jobs
from orchestration.status import RunState, grid_status
from orchestration.submit import submit
from orchestration.tracking.grid_runs import tracked_runs
from orchestration.wait import wait_for
from tests.orchestration.slurm_grids import expand, job_count, plan_for, run_entry_point

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _needs_the_training_config():
    if not (CONF_DIR / "train.yaml").is_file():
        pytest.skip("experiments/conf/train.yaml (the trainer's primary config) is not there yet")


@pytest.fixture(scope="module")
def finished_grid(slurm_cluster, tmp_path_factory):
    """A 2 cells × 2 seeds grid submitted through launcher=slurm, waited for."""
    root = tmp_path_factory.mktemp("grid4")
    specs = expand(
        "slurm4", root, axes=[{"product": {"model.prior": ["reversed_plusplus", "bottom_up"]}}], seeds=(1, 2)
    )
    submissions, jobs = submit(plan_for(specs))
    failures = wait_for(jobs, submissions, progress=False)
    return specs, submissions, failures


def test_a_four_run_grid_finishes_with_four_finished_runs_carrying_fg_ari(finished_grid):
    specs, submissions, failures = finished_grid
    assert failures == []
    assert len({entry.job_id.split("_")[0] for entry in submissions}) == 1  # one job array
    runs = tracked_runs(specs[0].tracking.uri, specs[0].experiment, "slurm4")
    assert sorted(runs) == sorted(spec.run_key for spec in specs)
    assert {run.status for run in runs.values()} == {"FINISHED"}
    assert all("eval/fg_ari" in run.metrics and run.tags["slurm_job_id"] for run in runs.values())


def test_resubmitting_a_finished_grid_submits_nothing_and_creates_no_run(finished_grid, slurm_cluster):
    specs, _, _ = finished_grid
    before = job_count(slurm_cluster)
    plan = plan_for(specs)
    assert plan.count(Decision.FINISHED) == 4 and plan.arrays == []
    submissions, _ = submit(plan)
    assert submissions == [] and job_count(slurm_cluster) == before
    client = MlflowClient(specs[0].tracking.uri)
    experiment = client.get_experiment_by_name(specs[0].experiment)
    assert len(client.search_runs([experiment.experiment_id])) == 4


def test_status_reports_every_seed_done_with_fg_ari(finished_grid):
    specs, _, _ = finished_grid
    first = specs[0]
    uri = first.tracking.uri
    cells = grid_status(
        specs,
        tracked_runs(uri, first.experiment, "slurm4"),
        read_ledger(first.output_root, "slurm4"),
        {},
    )
    assert [cell.count(RunState.DONE) for cell in cells] == [2, 2]
    assert all(len(cell.fg_ari) == 2 for cell in cells)


def test_two_node_job_trains_on_n1_and_n2_like_one_process_with_the_same_global_batch(
    slurm_cluster, tmp_path
):
    base = {
        "training.refinement_curriculum": [[-1, 2]],
        "training.iters": 6,
        "launcher.partition": "multi",
        "launcher.nodes": 2,
        "launcher.tasks_per_node": 1,
    }
    (spec,) = expand("two_nodes", tmp_path / "two", base=base)
    submissions, jobs = submit(plan_for([spec]))
    assert wait_for(jobs, submissions, progress=False) == []
    logs = [submissions[0].log_paths(task)[1].read_text() for task in (0, 1)]
    assert "rank 0/2 on n1" in logs[0] and "rank 1/2 on n2" in logs[1]

    single = dataclasses.replace(
        spec.config, training=dataclasses.replace(spec.config.training, output_dir=str(tmp_path / "single"))
    )
    train(single, progress=False)
    one = load_checkpoint(latest_checkpoint(tmp_path / "single" / "checkpoints"))
    two = load_checkpoint(latest_checkpoint(spec.output_dir / "checkpoints"))
    assert two["world_size"] == 2 and one["step"] == two["step"] == 6
    # Adam turns rounding differences in a near-zero gradient (sums over 2 ranks vs 1) into steps of up
    # to lr (4e-4) on that parameter; a quarter of one step bounds them, far below any real difference.
    for name, value in one["model"].items():
        torch.testing.assert_close(two["model"][name], value, rtol=1e-4, atol=1e-4, msg=name)


def test_a_crashing_job_is_failed_in_mlflow_and_in_status_with_its_log_tail(slurm_cluster, tmp_path):
    missing = tmp_path / "no-data-here"
    (spec,) = expand("crash", tmp_path, base={"data.root": str(missing), "data.generate_if_missing": False})
    submissions, jobs = submit(plan_for([spec]))
    failures = wait_for(jobs, submissions, progress=False)
    assert len(failures) == 1
    uri = spec.tracking.uri
    tracked = tracked_runs(uri, spec.experiment, "crash")
    assert tracked[spec.run_key].status == "FAILED"
    (cell,) = grid_status([spec], tracked, read_ledger(spec.output_root, "crash"), live_slurm_jobs())
    assert cell.states == {1: RunState.FAILED}
    assert "does not exist" in cell.failures[1]


def test_a_preempted_job_requeues_and_resumes_from_its_checkpoint_in_the_same_run(slurm_cluster, tmp_path):
    base = {"training.iters": 60, "training.log_every": 2, "training.checkpoint_every_steps": 1000}
    (spec,) = expand("preempt", tmp_path, base=base)
    submissions, (job,) = submit(plan_for([spec]))
    uri = spec.tracking.uri
    client = MlflowClient(uri)
    deadline = time.monotonic() + 240
    while (
        not (run := tracked_runs(uri, spec.experiment, "preempt").get(spec.run_key))
        or "train/nll" not in run.metrics
    ):
        assert time.monotonic() < deadline, "the job never logged a training step"
        time.sleep(1.0)
    job._interrupt()  # what SLURM does on preemption: SIGTERM, then USR2
    assert wait_for([job], submissions, progress=False) == []

    runs = tracked_runs(uri, spec.experiment, "preempt")
    assert list(runs) == [spec.run_key]
    final = runs[spec.run_key]
    assert final.status == "FINISHED" and final.tags["attempt"] == "1"
    stopped = int(final.tags["preempted_at_step"])
    assert 0 < stopped < 60
    steps = [metric.step for metric in client.get_metric_history(final.run_id, "train/nll")]
    assert steps == sorted(set(steps)) and steps[-1] == 60  # continued from the checkpoint, never from 0


def test_an_invalid_grid_is_rejected_with_every_error_and_nothing_is_queued(slurm_cluster, tmp_path):
    before = job_count(slurm_cluster)
    done = run_entry_point(
        "grid=demo", "launcher=slurm", f"output_root={tmp_path}", "model.prior=sideways", "training.iters=-1"
    )
    assert done.returncode == 2
    # each problem once, with the runs it affects (it was once per run: 4 runs, 8 lines)
    assert done.stderr.count("model.prior='sideways'") == 1 and done.stderr.count("training.iters=-1") == 1
    assert "(4 runs: " in done.stderr
    assert "nothing was submitted" in done.stderr
    assert job_count(slurm_cluster) == before


def test_the_dry_run_prints_the_plan_and_submits_nothing(slurm_cluster, tmp_path):
    before = job_count(slurm_cluster)
    done = run_entry_point("grid=demo", "launcher=slurm", f"output_root={tmp_path}", "dry_run=true")
    assert done.returncode == 0, done.stderr
    assert "new: 4" in done.stdout and "to submit: 4 jobs in 1 submissions" in done.stdout
    assert "dry run: nothing submitted" in done.stdout
    assert job_count(slurm_cluster) == before
    assert not (tmp_path / "demo" / "submissions.jsonl").exists()
    assert not (tmp_path / "mlflow.db").exists()  # a dry run writes nothing
