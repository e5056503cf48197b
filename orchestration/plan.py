"""The plan of a submission: a decision per run, and the job arrays (by resource shape) to submit.

Each run whose MLflow run is FINISHED is skipped; one whose job is still queued or running is left
alone; the rest are submitted, new ones from scratch and unfinished ones to resume from the checkpoint
under ``<output_root>/<grid>/<run_key>/``. Runs of the same resource shape go into one job array, split
under the cluster's MaxArraySize. ``format_plan`` is the dry run.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from orchestration.config import LauncherConfig
from orchestration.ledger import Submission
from orchestration.run_spec import RunSpec


class Decision(enum.StrEnum):
    """What submitting a grid does with one run."""

    FINISHED = "finished"  # FINISHED in MLflow: skipped
    ACTIVE = "active"  # its job is queued or running: left alone
    RESUME = "resume"  # unfinished (RUNNING/FAILED/KILLED without a live job): resubmitted, resumes
    NEW = "new"  # never started: submitted


@dataclass(frozen=True)
class Plan:
    """What a submission would do: a decision per run and the arrays it would submit."""

    specs: list[RunSpec]
    decisions: dict[str, Decision]  # run_key -> decision
    arrays: list[list[RunSpec]]  # one entry per sbatch submission (a job array, or one job)

    @property
    def to_submit(self) -> list[RunSpec]:
        return [
            spec for spec in self.specs if self.decisions[spec.run_key] in (Decision.NEW, Decision.RESUME)
        ]

    def count(self, decision: Decision) -> int:
        return sum(1 for value in self.decisions.values() if value == decision)


def gpu_hours(spec: RunSpec) -> float:
    """Expected GPU hours of one run: nodes × GPUs per node × expected (else maximum) hours."""
    launcher = spec.launcher
    hours = launcher.expected_hours or launcher.timeout_min / 60
    return launcher.nodes * launcher.gpus_per_node * hours


def decide(
    specs: Sequence[RunSpec],
    statuses: Mapping[str, str],
    ledger: Mapping[str, Submission],
    live_jobs: Mapping[str, str],
) -> dict[str, Decision]:
    """A decision per run from its MLflow status (by run_key) and whether its last job still lives."""
    decisions = {}
    for spec in specs:
        status = statuses.get(spec.run_key)
        submission = ledger.get(spec.run_key)
        if status == "FINISHED":
            decisions[spec.run_key] = Decision.FINISHED
        elif submission is not None and submission.job_id in live_jobs:
            decisions[spec.run_key] = Decision.ACTIVE
        elif status is None:
            decisions[spec.run_key] = Decision.NEW
        else:
            decisions[spec.run_key] = Decision.RESUME
    return decisions


def make_plan(specs: Sequence[RunSpec], decisions: Mapping[str, Decision], max_array_size: int) -> Plan:
    """Group the runs to submit by resource shape, then split each group under ``max_array_size``."""
    groups: dict[tuple[object, ...], list[RunSpec]] = {}
    for spec in specs:
        if decisions[spec.run_key] in (Decision.NEW, Decision.RESUME):
            groups.setdefault(spec.launcher.shape, []).append(spec)
    arrays = [
        group[start : start + max_array_size]
        for group in groups.values()
        for start in range(0, len(group), max_array_size)
    ]
    return Plan(specs=list(specs), decisions=dict(decisions), arrays=arrays)


def at_once(launcher: LauncherConfig, runs: int) -> int:
    """How many runs of one array run at the same time: ``array_parallelism`` (locally while the launcher
    waits, see LocalQueue), one in debug."""
    return 1 if launcher.name == "debug" else min(runs, launcher.array_parallelism)


def array_summary(plan: Plan) -> list[dict[str, str | int]]:
    """One row per array to submit: runs, resources per job, throttle."""
    rows = []
    for array in plan.arrays:
        launcher = array[0].launcher
        rows.append(
            {
                "runs": len(array),
                "launcher": launcher.name,
                "partition": launcher.partition or "-",
                "nodes": launcher.nodes,
                "tasks/node": launcher.tasks_per_node,
                "gpus/node": launcher.gpus_per_node,
                "cpus/task": launcher.cpus_per_task,
                "mem": f"{launcher.mem_gb}GB" if launcher.mem_gb else "-",
                "time": f"{launcher.timeout_min} min",
                "parallel": at_once(launcher, len(array)),
            }
        )
    return rows


def total_gpu_hours(specs: Iterable[RunSpec]) -> float:
    return math.fsum(gpu_hours(spec) for spec in specs)


def format_plan(plan: Plan) -> str:
    """The dry run: cells × seeds with each run's decision, the arrays to submit, totals."""
    from tabulate import tabulate

    seeds = sorted({spec.seed for spec in plan.specs})
    cells: dict[str, dict[int, str]] = {}
    for spec in plan.specs:
        cells.setdefault(spec.cell_label, {})[spec.seed] = plan.decisions[spec.run_key].value
    rows = [[label, *(by_seed.get(seed, "") for seed in seeds)] for label, by_seed in cells.items()]
    grid = plan.specs[0].grid if plan.specs else "?"
    to_submit = plan.to_submit
    lines = [
        f"grid {grid}: {len(plan.specs)} runs in {len(cells)} cells",
        tabulate(rows, headers=["cell", *(f"seed {seed}" for seed in seeds)], tablefmt="github"),
        "",
        f"finished: {plan.count(Decision.FINISHED)}   queued/running: {plan.count(Decision.ACTIVE)}   "
        f"unfinished (will resume): {plan.count(Decision.RESUME)}   new: {plan.count(Decision.NEW)}",
        f"to submit: {len(to_submit)} jobs in {len(plan.arrays)} submissions (job arrays)",
    ]
    if plan.arrays:
        lines += ["", tabulate(array_summary(plan), headers="keys", tablefmt="github")]
    lines.append(f"estimated GPU hours: {total_gpu_hours(to_submit):.1f}")
    return "\n".join(lines)
