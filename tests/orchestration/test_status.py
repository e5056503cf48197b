"""Run states from MLflow, the ledger and the queue; the per-cell report with failed jobs' log tails."""

from __future__ import annotations

import pytest

from orchestration.compose import Composer
from orchestration.grid import expand_grid
from orchestration.ledger import Submission
from orchestration.status import RunState, format_status, grid_status, run_state
from orchestration.tracking.grid_runs import TrackedRun
from tests.orchestration.toy_conf import write_toy_conf


def tracked(status: str, **metrics: float) -> TrackedRun:
    return TrackedRun("id", "key", status, dict(metrics), {})


def submitted(job_id: str = "5_0", folder: str = "/nowhere", launcher: str = "slurm") -> Submission:
    return Submission("key", "cell", 1, job_id, folder, launcher, "now")


@pytest.mark.parametrize(
    ("status", "job_state", "expected"),
    [
        ("FINISHED", None, RunState.DONE),
        ("FINISHED", "RUNNING", RunState.DONE),
        (None, "PENDING", RunState.QUEUED),
        ("RUNNING", "PENDING", RunState.QUEUED),  # preempted, waiting to be requeued
        ("RUNNING", "RUNNING", RunState.RUNNING),
        ("FAILED", "RUNNING", RunState.FAILED),  # the job is still cleaning up
        ("FAILED", "PENDING", RunState.QUEUED),  # resubmitted
        ("RUNNING", None, RunState.FAILED),  # the job vanished without ending its run
        (None, None, RunState.FAILED),  # submitted, never reached MLflow, gone
    ],
)
def test_run_state_joins_mlflow_status_and_queue_state(status, job_state, expected):
    run = tracked(status) if status else None
    live = {"5_0": job_state} if job_state else {}
    assert run_state(run, submitted(), live) == expected


def test_a_run_never_submitted_is_reported_as_such():
    assert run_state(None, None, {}) == RunState.NOT_SUBMITTED


def test_report_counts_per_cell_and_shows_the_failed_jobs_log_tail(tmp_path):
    composer = Composer("toy", conf_dir=write_toy_conf(tmp_path, tmp_path / "out"))
    grid = {"name": "toy", "axes": [{"product": {"model.prior": ["reversed", "bottom_up"]}}], "seeds": [1, 2]}
    specs = expand_grid(grid, composer)
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "8_3_0_log.err").write_text("Traceback (most recent call last):\nDatasetError: no file\n")
    ledger = {
        spec.run_key: Submission(spec.run_key, spec.cell_key, spec.seed, f"8_{i}", str(folder), "slurm", "t")
        for i, spec in enumerate(specs)
    }
    runs = {
        specs[0].run_key: TrackedRun("a", specs[0].run_key, "FINISHED", {"eval/fg_ari": 0.9}, {}),
        specs[1].run_key: TrackedRun("b", specs[1].run_key, "FINISHED", {"eval/fg_ari": 0.7}, {}),
        specs[3].run_key: TrackedRun("d", specs[3].run_key, "FAILED", {}, {}),
    }
    cells = grid_status(specs, runs, ledger, {"8_2": "PENDING"})
    assert [cell.count(RunState.DONE) for cell in cells] == [2, 0]
    assert cells[1].states == {1: RunState.QUEUED, 2: RunState.FAILED}
    report = format_status("toy", cells)
    assert "80.0 (n=2)" in report
    assert "failed: model.prior=bottom_up seed=2" in report and "DatasetError: no file" in report


def test_report_shows_each_cells_diagnoses_and_names_the_collapsed_seeds(tmp_path):
    composer = Composer("toy", conf_dir=write_toy_conf(tmp_path, tmp_path / "out"))
    specs = expand_grid({"name": "toy", "seeds": [1, 2, 3]}, composer)
    labels = {1: "segmenting", 2: "collapsed", 3: "segmenting"}
    runs = {
        spec.run_key: TrackedRun(
            str(spec.seed), spec.run_key, "FINISHED", {}, {"diagnosis": labels[spec.seed]}
        )
        for spec in specs
    }
    cells = grid_status(specs, runs, {}, {})
    assert cells[0].diagnoses == labels
    assert "2 segmenting, collapsed: s2" in format_status("toy", cells)
