"""Planning a submission: decisions from MLflow and the queue, arrays by resource shape, dry run, ledger."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from orchestration.compose import Composer
from orchestration.grid import expand_grid
from orchestration.ledger import Submission, append_ledger, read_ledger
from orchestration.plan import Decision, decide, format_plan, make_plan
from orchestration.tracking.grid_runs import tracked_runs
from tests.orchestration.toy_conf import write_toy_conf


@pytest.fixture
def specs(tmp_path):
    composer = Composer("toy", conf_dir=write_toy_conf(tmp_path, tmp_path / "out"))
    grid = {
        "name": "toy",
        "axes": [
            {"product": {"variant": {"small": {}, "wide": {"launcher.tasks_per_node": 2, "model.K": 5}}}}
        ],
        "seeds": [1, 2, 3],
    }
    return expand_grid(grid, composer)


def record_run(uri: str, spec, status: str) -> str:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(spec.experiment)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(spec.experiment)
    tags = {"grid": spec.grid, "run_key": spec.run_key, "cell_key": spec.cell_key, "seed": str(spec.seed)}
    run = client.create_run(experiment_id, tags=tags)
    client.set_terminated(run.info.run_id, status=status)
    return run.info.run_id


def submission(spec, job_id: str) -> Submission:
    return Submission(spec.run_key, spec.cell_key, spec.seed, job_id, "/nowhere", "slurm", "now")


def test_finished_runs_are_skipped_unfinished_resumed_and_unknown_new(specs):
    uri = specs[0].tracking.uri
    record_run(uri, specs[0], "FINISHED")
    record_run(uri, specs[1], "FAILED")
    statuses = {key: run.status for key, run in tracked_runs(uri, specs[0].experiment, "toy").items()}
    decisions = decide(specs, statuses, {}, {})
    assert decisions[specs[0].run_key] == Decision.FINISHED
    assert decisions[specs[1].run_key] == Decision.RESUME
    assert {decisions[s.run_key] for s in specs[2:]} == {Decision.NEW}


def test_a_run_whose_job_is_still_queued_is_left_alone(specs):
    ledger = {specs[0].run_key: submission(specs[0], "41_0"), specs[1].run_key: submission(specs[1], "41_1")}
    decisions = decide(specs, {specs[0].run_key: "RUNNING"}, ledger, {"41_0": "PENDING"})
    assert decisions[specs[0].run_key] == Decision.ACTIVE
    assert decisions[specs[1].run_key] == Decision.NEW  # its job is gone and it never reached MLflow


def test_runs_of_one_resource_shape_share_an_array_split_under_max_array_size(specs):
    decisions = {spec.run_key: Decision.NEW for spec in specs}
    plan = make_plan(specs, decisions, max_array_size=2)
    sizes = sorted(len(array) for array in plan.arrays)
    assert sizes == [1, 1, 2, 2]  # two shapes of 3 runs, each split into 2 + 1
    for array in plan.arrays:
        assert len({spec.launcher.tasks_per_node for spec in array}) == 1


def test_plan_leaves_out_finished_and_active_runs(specs):
    decisions = {spec.run_key: Decision.NEW for spec in specs}
    decisions[specs[0].run_key] = Decision.FINISHED
    decisions[specs[1].run_key] = Decision.ACTIVE
    plan = make_plan(specs, decisions, max_array_size=100)
    assert len(plan.to_submit) == len(specs) - 2
    assert sum(len(array) for array in plan.arrays) == len(specs) - 2


def test_dry_run_table_shows_cells_by_seed_counts_arrays_and_gpu_hours(specs):
    decisions = {spec.run_key: Decision.NEW for spec in specs}
    decisions[specs[0].run_key] = Decision.FINISHED
    text = format_plan(make_plan(specs, decisions, max_array_size=100))
    assert "variant=small" in text and "variant=wide" in text and "seed 3" in text
    assert "finished: 1" in text and "new: 5" in text
    assert "to submit: 5 jobs in 2 submissions" in text
    assert "estimated GPU hours: 0.0" in text  # CPU-only toy launcher


def test_ledger_keeps_the_latest_submission_per_run(specs, tmp_path):
    append_ledger(tmp_path, "toy", [submission(specs[0], "7_0")])
    append_ledger(tmp_path, "toy", [submission(specs[0], "9_0"), submission(specs[1], "9_1")])
    ledger = read_ledger(tmp_path, "toy")
    assert ledger[specs[0].run_key].job_id == "9_0" and len(ledger) == 2
