"""Operating grids on the real SLURM test cluster: refused submissions, resource checks, jobs that are gone,
resumes that never log a step twice, cancelling and retrying."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from mlflow.tracking import MlflowClient

from orchestration.cancel import cancel, select
from orchestration.ledger import read_ledger
from orchestration.plan import Decision
from orchestration.reconcile import grid_state
from orchestration.resources import grid_resource_problems
from orchestration.scheduler import ENDED_STATES, live_slurm_jobs, slurm_job_pieces
from orchestration.status import RunState, grid_status
from orchestration.submit import SubmissionError, submit
from orchestration.tracking.runs import logged_steps
from orchestration.wait import Retrier, wait_for
from tests.orchestration.slurm_grids import expand, plan_for, run_entry_point

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
PRIORS = {"model.prior": ["reversed_plusplus", "bottom_up"]}  # two cells (launcher keys are not in run_key)


def wait_until(condition, what: str, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what}: not after {timeout:.0f} s"
        time.sleep(1.0)
    return value


def tracked(spec):
    return grid_state(spec).tracked.get(spec.run_key)


def trained_to(spec, step: int):
    """The run once it has logged training step ``step`` or later (else None)."""
    run = tracked(spec)
    steps = logged_steps(spec.tracking.uri, run.run_id) if run else {}
    return run if steps.get("train/nll", -1) >= step else None


def jobs_named(cluster, name: str) -> list[str]:
    """Every job of that name the scheduler queued or ran (squeue, and sacct for the ended ones)."""
    queued = cluster.run("squeue", "-h", "-n", name, "-o", "%i").split()
    ended = cluster.run("sacct", "-n", "-X", "-P", "-o", "JobID", "--name", name, "-S", "2020-01-01").split()
    return sorted({*queued, *ended})


def scancel(cluster, submissions) -> None:
    ids = sorted({entry.job_id.split("_")[0] for entry in submissions})
    if ids:
        cluster.run("scancel", *ids)


def test_a_refused_array_leaves_the_accepted_ones_in_the_ledger_and_a_rerun_submits_only_the_rest(
    slurm_cluster, tmp_path
):
    specs = expand("refused", tmp_path, axes=[{"zip": {**PRIORS, "launcher.gpus_per_node": [0, 8]}}])
    fits, too_big = specs
    with pytest.raises(SubmissionError) as raised:
        submit(plan_for(specs))  # the resource check is skipped on purpose: sbatch itself refuses
    try:
        message = str(raised.value)
        assert "Invalid generic resource" in message and "not submitted: 1 runs" in message
        assert [entry.run_key for entry in raised.value.submitted] == [fits.run_key]
        assert raised.value.refused == [too_big]
        assert list(read_ledger(tmp_path, "refused")) == [fits.run_key]
        rerun = plan_for(specs)
        assert rerun.decisions[fits.run_key] in (Decision.ACTIVE, Decision.FINISHED)
        assert rerun.to_submit == [too_big]
    finally:
        scancel(slurm_cluster, raised.value.submitted)


def test_resources_the_cluster_lacks_are_named_before_anything_is_submitted(slurm_cluster, tmp_path):
    specs = expand("lacking", tmp_path, axes=[{"zip": {**PRIORS, "launcher.partition": ["debug", "gpu"]}}])
    (problem,) = grid_resource_problems(specs)
    assert problem.startswith("launcher.partition='gpu' does not exist (partitions: debug, multi) (1 run: [")
    earlier = jobs_named(slurm_cluster, "emorl-demo")  # the cluster is shared by the session's tests
    done = run_entry_point(
        "grid=demo", "launcher=slurm", f"output_root={tmp_path}", "launcher.gpus_per_node=8"
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("launcher.gpus_per_node=8 per node") == 1  # once, with the runs it affects
    assert "at most 0 GPUs" in done.stderr and "(4 runs: " in done.stderr
    assert "nothing was submitted" in done.stderr
    assert jobs_named(slurm_cluster, "emorl-demo") == earlier
    assert not (tmp_path / "demo" / "submissions.jsonl").exists()


def test_a_hard_killed_job_is_failed_with_its_reason_and_its_resume_never_logs_a_step_twice(
    slurm_cluster, tmp_path
):
    base = {"training.iters": 60, "training.log_every": 2, "training.checkpoint_every_steps": 20}
    (spec,) = expand("hardkill", tmp_path, base=base)
    (submission,), _ = submit(plan_for([spec]))
    run = wait_until(lambda: trained_to(spec, 26), "the job never reached step 26")
    slurm_cluster.run("scancel", "--signal=KILL", submission.job_id)  # no chance to checkpoint or report

    gone = wait_until(lambda: (r := tracked(spec)) and r.status != "RUNNING" and r, "the run stayed RUNNING")
    assert gone.run_id == run.run_id and gone.status == "KILLED"  # sacct: CANCELLED
    assert gone.tags["failure_kind"] == "infrastructure"
    assert gone.tags["end_reason"].startswith(f"SLURM job {submission.job_id} ended ")

    plan = plan_for([spec])
    assert plan.decisions[spec.run_key] == Decision.RESUME
    submissions, jobs = submit(plan)  # resumes from the step-20 checkpoint, behind what MLflow has
    assert wait_for(jobs, submissions, progress=False) == []
    final = tracked(spec)
    assert final.run_id == run.run_id and final.status == "FINISHED" and final.tags["attempt"] == "1"
    steps = [m.step for m in MlflowClient(spec.tracking.uri).get_metric_history(run.run_id, "train/nll")]
    assert steps == sorted(set(steps)) and steps[-1] == 60


def test_cancelling_a_grid_empties_the_queue_kills_its_runs_and_the_next_submission_resumes_them(
    slurm_cluster, tmp_path
):
    base = {
        "training.iters": 40,
        "training.log_every": 2,
        "training.checkpoint_every_steps": 10,
        "launcher.array_parallelism": 1,  # seed 1 runs, seed 2 waits in the queue
    }
    first, second = specs = expand("cancel", tmp_path, base=base, seeds=(1, 2))
    submitted, _ = submit(plan_for(specs))
    running = wait_until(lambda: trained_to(first, 12), "seed 1 never reached step 12")

    only_queued = cancel(select(specs, seeds=[2]), grid_state(first))
    assert only_queued.jobs == [submitted[1].job_id] and only_queued.runs == []
    state = grid_state(first)
    assert submitted[0].job_id in state.live_jobs and submitted[1].job_id not in state.live_jobs

    rest = cancel(select(specs), state)
    assert rest.jobs == [submitted[0].job_id] and rest.runs == [first.name]
    assert rest.not_running == [second.name]
    state = grid_state(first)
    assert not state.live_jobs and not [
        job for job in live_slurm_jobs() if job.startswith(submitted[0].job_id)
    ]
    killed = state.tracked[first.run_key]
    assert killed.status == "KILLED" and killed.tags["failure_kind"] == "cancelled"
    assert {entry.event for entry in state.ledger.values()} == {"cancelled"}
    (cell,) = grid_status(specs, state.tracked, state.ledger, state.live_jobs)
    assert cell.states == {1: RunState.CANCELLED, 2: RunState.CANCELLED}

    plan = plan_for(specs)
    assert [plan.decisions[spec.run_key] for spec in specs] == [Decision.RESUME, Decision.NEW]
    submissions, jobs = submit(plan)
    assert wait_for(jobs, submissions, progress=False) == []
    done = grid_state(first).tracked
    assert {run.status for run in done.values()} == {"FINISHED"}
    resumed = done[first.run_key]
    assert resumed.run_id == running.run_id and resumed.tags["attempt"] == "1"
    steps = [m.step for m in MlflowClient(first.tracking.uri).get_metric_history(resumed.run_id, "train/nll")]
    assert steps == sorted(set(steps)) and steps[-1] == 40
    log = submissions[0].log_paths()[1].read_text()
    assert "resumed at step " in log, log[-2000:]


def kill_at_step(cluster, spec, job_id: str, step: int) -> threading.Thread:
    """SIGKILL the job (no chance to checkpoint or report) once its run has logged ``step``."""

    def kill() -> None:
        wait_until(lambda: trained_to(spec, step), f"the job never reached step {step}")
        cluster.run("scancel", "--signal=KILL", job_id)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def test_a_sigkilled_job_is_retried_from_its_checkpoint_and_finishes_in_the_same_run(slurm_cluster, tmp_path):
    base = {"training.iters": 40, "training.log_every": 2, "training.checkpoint_every_steps": 10}
    (spec,) = expand("retried", tmp_path, base=base)
    submissions, jobs = submit(plan_for([spec]))
    killer = kill_at_step(slurm_cluster, spec, submissions[0].job_id, 12)
    failures = wait_for(jobs, submissions, progress=False, retrier=Retrier([spec]))
    killer.join(timeout=1)
    assert failures == []
    run = tracked(spec)
    assert run.status == "FINISHED" and run.tags["retries"] == "1" and run.tags["attempt"] == "1"
    steps = [m.step for m in MlflowClient(spec.tracking.uri).get_metric_history(run.run_id, "train/nll")]
    assert steps == sorted(set(steps)) and steps[-1] == 40
    retry = read_ledger(tmp_path, "retried")[spec.run_key]
    assert retry.job_id != submissions[0].job_id
    assert "resumed at step " in retry.log_paths()[1].read_text()

    # the cost ledger: each attempt's elapsed time and GPU hours from sacct, summed over attempts
    jobs = [submissions[0].job_id, retry.job_id]
    wait_until(  # only ended jobs are costed, and sacct may lag the end of a job by a few seconds
        lambda: all(pieces[-1].state in ENDED_STATES for pieces in slurm_job_pieces(jobs).values()),
        "sacct never reported both attempts ended",
    )
    sacct = slurm_cluster.run(
        "sacct", "-n", "-P", "-X", "-j", ",".join(jobs), "-o", "JobID,ElapsedRaw,AllocTRES"
    )
    elapsed = {line.split("|")[0]: int(line.split("|")[1]) for line in sacct.splitlines()}
    assert "gres/gpu" not in sacct  # a CPU cluster: no GPUs allocated, so no GPU hours
    costed = tracked(spec)
    assert costed.tags["cost_jobs"] == ",".join(jobs)
    assert costed.metrics["cost/elapsed_hours"] == pytest.approx(sum(elapsed[job] for job in jobs) / 3600)
    assert costed.metrics["cost/gpu_hours"] == 0.0
    client = MlflowClient(spec.tracking.uri)
    per_attempt = client.get_metric_history(run.run_id, "cost/attempt_elapsed_hours")
    assert sorted((m.step, m.value) for m in per_attempt) == [
        (i, elapsed[job] / 3600) for i, job in enumerate(jobs)
    ]
    assert tracked(spec).metrics["cost/elapsed_hours"] == costed.metrics["cost/elapsed_hours"]  # counted once


def test_a_run_that_raises_in_its_own_code_is_failed_once_and_never_retried(slurm_cluster, tmp_path):
    missing = {"data.root": str(tmp_path / "no-data-here"), "data.generate_if_missing": False}
    (spec,) = expand("raises", tmp_path, base=missing)
    submissions, jobs = submit(plan_for([spec]))
    (failure,) = wait_for(jobs, submissions, progress=False, retrier=Retrier([spec]))
    assert "failed (deterministic)" in failure and "does not exist" in failure
    run = tracked(spec)
    assert run.status == "FAILED" and "retries" not in run.tags
    assert read_ledger(tmp_path, "raises")[spec.run_key].job_id == submissions[0].job_id  # one job only


def test_waiting_prints_a_line_each_time_the_grid_moves(slurm_cluster, tmp_path, capsys):
    specs = expand("moving", tmp_path, seeds=(1, 2), base={"launcher.array_parallelism": 1})
    submissions, jobs = submit(plan_for(specs))
    assert wait_for(jobs, submissions, retrier=Retrier(specs), bar=False) == []
    lines = [line for line in capsys.readouterr().err.splitlines() if "finished " in line]
    assert all(a != b for a, b in itertools.pairwise(lines))  # a line only when something changed
    counts = [line.split("] ", 1)[1].split("   steps")[0] for line in lines]
    assert (
        counts[0].startswith("finished 0 · ") and counts[-1] == "finished 2 · running 0 · queued 0 · failed 0"
    )
    finished = [int(count.split(" · ")[0].removeprefix("finished ")) for count in counts]
    assert finished == sorted(finished)  # the grid only moves forward
    assert any(" · running 1 · " in count for count in counts)  # a running run is seen (polls may miss one)
