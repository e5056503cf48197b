"""Runs whose job is gone, found from the ledger and the live jobs (local jobs: no scheduler needed)."""

from __future__ import annotations

from orchestration.failures import FailureKind
from orchestration.ledger import Submission
from orchestration.reconcile import gone_runs
from orchestration.tracking.grid_runs import TrackedRun

DEAD_PID = "999999999"  # above any pid_max: no process has it


def run(key: str, status: str = "RUNNING") -> TrackedRun:
    return TrackedRun(f"id-{key}", key, status, {}, {})


def entry(key: str, job_id: str, launcher: str = "local") -> Submission:
    return Submission(key, "cell", 1, job_id, "/tmp", launcher, "2026-01-01T00:00:00")


def test_a_running_run_whose_local_process_is_gone_is_an_infrastructure_failure():
    (gone,) = gone_runs({"a": run("a")}, {"a": entry("a", DEAD_PID)}, {})
    assert (gone.run_key, gone.status, gone.kind) == ("a", "FAILED", FailureKind.INFRASTRUCTURE)
    assert DEAD_PID in gone.reason


def test_live_jobs_ended_runs_and_in_process_jobs_are_left_alone():
    tracked = {"live": run("live"), "done": run("done", "FINISHED"), "debug": run("debug")}
    ledger = {
        "live": entry("live", "123"),
        "done": entry("done", DEAD_PID),
        "debug": entry("debug", "0", launcher="debug"),
    }
    assert gone_runs(tracked, ledger, {"123": "RUNNING"}) == []
