"""Operating grids on the real SLURM test cluster: refused submissions, resource checks, jobs that are gone,
resumes that never log a step twice, cancelling and retrying."""

from __future__ import annotations

import pytest

from orchestration.ledger import read_ledger
from orchestration.plan import Decision
from orchestration.resources import grid_resource_problems
from orchestration.submit import SubmissionError, submit
from tests.orchestration.slurm_grids import expand, plan_for, run_entry_point

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
PRIORS = {"model.prior": ["reversed_plusplus", "bottom_up"]}  # two cells (launcher keys are not in run_key)


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
    done = run_entry_point(
        "grid=demo", "launcher=slurm", f"output_root={tmp_path}", "launcher.gpus_per_node=8"
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("launcher.gpus_per_node=8 per node") == 1  # once, with the runs it affects
    assert "at most 0 GPUs" in done.stderr and "(4 runs: " in done.stderr
    assert "nothing was submitted" in done.stderr
    assert jobs_named(slurm_cluster, "emorl-demo") == []
    assert not (tmp_path / "demo" / "submissions.jsonl").exists()
