"""Submitting a plan: one submitit executor per job array (slurm | local | debug), from a snapshot of the
code when asked. Submission returns at once; every job is recorded in the grid's ledger.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path

import submitit

from orchestration.config import LauncherConfig
from orchestration.ledger import Submission, append_ledger
from orchestration.plan import Plan
from orchestration.run_spec import RunSpec
from orchestration.tracking.store import ensure_experiment

REPO_ROOT = Path(__file__).resolve().parent.parent


def make_executor(launcher: LauncherConfig, job_name: str) -> submitit.Executor:
    """The submitit executor for ``launcher.name`` (slurm | local | debug) with its resource keys."""
    if launcher.name == "debug":
        return submitit.DebugExecutor(launcher.folder)
    common = {"signal_delay_s": launcher.signal_delay_s, "setup": list(launcher.setup)}
    if launcher.name == "local":
        executor = submitit.LocalExecutor(launcher.folder, python=launcher.python)
        executor.update_parameters(
            timeout_min=launcher.timeout_min,
            tasks_per_node=launcher.tasks_per_node,
            gpus_per_node=launcher.gpus_per_node,
            **common,
        )
        return executor
    executor = submitit.SlurmExecutor(
        launcher.folder, max_num_timeout=launcher.max_num_timeout, python=launcher.python
    )
    optional = {
        "partition": launcher.partition,
        "account": launcher.account,
        "qos": launcher.qos,
        "constraint": launcher.constraint,
        "gpus_per_node": launcher.gpus_per_node or None,
        "mem": f"{launcher.mem_gb}GB" if launcher.mem_gb else None,
        "additional_parameters": {"hold": True} if launcher.hold else None,
        # a rank that dies ends the job, instead of leaving its peers waiting in the rendezvous
        "srun_args": ["--kill-on-bad-exit=1"] if launcher.ranks > 1 else None,
    }
    executor.update_parameters(
        job_name=job_name,
        nodes=launcher.nodes,
        ntasks_per_node=launcher.tasks_per_node,
        cpus_per_task=launcher.cpus_per_task,
        time=launcher.timeout_min,
        array_parallelism=launcher.array_parallelism,
        **common,
        **{key: value for key, value in optional.items() if value is not None},
    )
    return executor


@contextmanager
def code_snapshot(output_root: str | Path, grid: str) -> Iterator[Path | None]:
    """Copy the repository's tracked files and submit from the copy, so queued jobs run this code."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S-%f")
    target = Path(output_root) / grid / "snapshots" / stamp
    with submitit.helpers.RsyncSnapshot(snapshot_dir=target, root_dir=REPO_ROOT):
        yield target


def prepare_datasets(specs: Sequence[RunSpec]) -> None:
    """Generate missing datasets once, before the jobs start (they would race to write the same file), and
    check their layout. Without torch: submitting imports nothing the jobs alone need."""
    from emorl.data.layout import inspect_split, open_h5
    from emorl.data.writer import ensure_dataset

    seen = set()
    for spec in specs:
        data = spec.config.data
        if data.generate_if_missing and data not in seen:
            seen.add(data)
            for split in ("train", "test"):
                path = ensure_dataset(data, split)
                with open_h5(path) as file:
                    inspect_split(file, path, split, masks=data.masks, factors=data.factors)


class SubmissionError(RuntimeError):
    """The scheduler refused an array after others were accepted: what was and was not submitted."""

    def __init__(self, submitted: list[Submission], refused: list[RunSpec], cause: Exception):
        self.submitted, self.refused = submitted, refused
        reason = str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause).__name__
        ids = sorted({entry.job_id.split("_")[0] for entry in submitted})
        done = (
            f"submitted and recorded in the ledger: {len(submitted)} runs (job ids {', '.join(ids)})"
            if submitted
            else "nothing was submitted"
        )
        super().__init__(
            f"the scheduler refused a submission: {reason}\n{done}\nnot submitted: {len(refused)} runs "
            f"({', '.join(spec.name for spec in refused[:3])}{' ...' if len(refused) > 3 else ''})\n"
            "fix the cause and submit the grid again: what was submitted is left alone, the rest is submitted"
        )


def submit(plan: Plan) -> tuple[list[Submission], list[submitit.Job]]:
    """Submit the plan's arrays; returns at once with the submissions and submitit jobs.

    Each array is recorded in the grid's ledger as soon as the scheduler accepts it, so a failure half-way
    (SubmissionError) loses track of nothing and a resubmission submits only the rest.
    """
    from orchestration.task import TrainAndEvaluate

    to_submit = plan.to_submit
    if not to_submit:
        return [], []
    prepare_datasets(to_submit)
    first = to_submit[0]
    ensure_experiment(first.tracking.uri, first.experiment)
    output_root, grid = first.output_root, first.grid
    submissions: list[Submission] = []
    jobs: list[submitit.Job] = []
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    with code_snapshot(output_root, grid) if first.launcher.snapshot else nullcontext():
        for index, array in enumerate(plan.arrays):
            launcher = array[0].launcher
            executor = make_executor(launcher, job_name=f"emorl-{grid}")
            try:
                with executor.batch():
                    array_jobs = [executor.submit(TrainAndEvaluate(spec)) for spec in array]
            except Exception as exc:  # sbatch refused (submitit's FailedJobError), or it could not run
                refused = [spec for rest in plan.arrays[index:] for spec in rest]
                raise SubmissionError(submissions, refused, exc) from exc
            accepted = [
                Submission(
                    spec.run_key,
                    spec.cell_key,
                    spec.seed,
                    job.job_id,
                    str(job.paths.folder),
                    launcher.name,
                    now,
                )
                for spec, job in zip(array, array_jobs, strict=True)
            ]
            append_ledger(output_root, grid, accepted)
            submissions += accepted
            jobs += array_jobs
    return submissions, jobs
