"""From validated run specs to submitted jobs: decide what to run, group by resource shape, submit.

Each run whose MLflow run is FINISHED is skipped; one whose job is still queued or running is left
alone; the rest are submitted, new ones from scratch and unfinished ones to resume from the
checkpoint under ``<output_root>/<grid>/<run_key>/``. Runs of the same resource shape go into one job
array (throttled, split under the cluster's MaxArraySize). Submission returns at once; every job
is recorded in the grid's ledger (``<output_root>/<grid>/submissions.jsonl``) for status and reruns.
"""

from __future__ import annotations

import datetime
import enum
import json
import math
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import submitit

from orchestration.grid import RunSpec
from orchestration.tracking import ensure_experiment

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MAX_ARRAY_SIZE = 1001  # SLURM's default MaxArraySize
FORCED_STATE_CHECK_S = 30.0  # while waiting, ask sacct directly this often
LOCAL_CONTROLLER = "submitit.local._local"  # the module a local job's process runs
# squeue states of jobs whose task is over (shown briefly while the job is cleaned up)
ENDING_STATES = frozenset(
    {"COMPLETING", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"}
)
# Launcher keys that shape a job: runs agreeing on all of them can share one job array.
SHAPE_KEYS = (
    "name",
    "partition",
    "account",
    "qos",
    "constraint",
    "nodes",
    "tasks_per_node",
    "gpus_per_node",
    "cpus_per_task",
    "mem_gb",
    "timeout_min",
    "signal_delay_s",
    "max_num_timeout",
    "array_parallelism",
    "setup",
    "folder",
    "hold",
)


class Decision(enum.StrEnum):
    """What submitting a grid does with one run."""

    FINISHED = "finished"  # FINISHED in MLflow: skipped
    ACTIVE = "active"  # its job is queued or running: left alone
    RESUME = "resume"  # unfinished (RUNNING/FAILED/KILLED without a live job): resubmitted, resumes
    NEW = "new"  # never started: submitted


@dataclass(frozen=True)
class Submission:
    """One submitted job, as recorded in the grid's ledger."""

    run_key: str
    cell_key: str
    seed: int
    job_id: str
    folder: str  # submitit folder of the job (logs: <folder>/<job_id>_<task>_log.{out,err})
    launcher: str
    submitted_at: str

    def log_paths(self, task: int = 0) -> tuple[Path, Path]:
        """(stdout, stderr) of one task of the job."""
        paths = submitit.core.utils.JobPaths(self.folder, job_id=self.job_id, task_id=task)
        return paths.stdout, paths.stderr


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


def shape(spec: RunSpec) -> tuple:
    """The run's resource shape (hashable)."""
    launcher = spec.launcher
    return tuple((key, json.dumps(launcher.get(key), sort_keys=True)) for key in SHAPE_KEYS)


def gpu_hours(spec: RunSpec) -> float:
    """Expected GPU hours of one run: nodes × GPUs per node × expected (else maximum) hours."""
    launcher = spec.launcher
    hours = launcher.get("expected_hours") or launcher["timeout_min"] / 60
    return launcher["nodes"] * launcher["gpus_per_node"] * hours


def ledger_path(output_root: str | Path, grid: str) -> Path:
    return Path(output_root) / grid / "submissions.jsonl"


def read_ledger(output_root: str | Path, grid: str) -> dict[str, Submission]:
    """The latest submission of each run_key of the grid (empty when nothing was submitted)."""
    path = ledger_path(output_root, grid)
    latest: dict[str, Submission] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                entry = Submission(**json.loads(line))
                latest[entry.run_key] = entry
    return latest


def _append_ledger(output_root: str | Path, grid: str, entries: Iterable[Submission]) -> None:
    path = ledger_path(output_root, grid)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as ledger:
        for entry in entries:
            ledger.write(json.dumps(asdict(entry)) + "\n")


def live_slurm_jobs() -> dict[str, str]:
    """This user's queued or running SLURM jobs, one entry per array element: job id -> state.

    Jobs whose task has ended (COMPLETING and final states) are left out: their MLflow run tells the rest.
    """
    if shutil.which("squeue") is None:
        return {}
    result = subprocess.run(
        ["squeue", "--me", "-h", "-r", "-o", "%i|%T"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"squeue failed ({result.returncode}): {result.stderr.strip()}")
    jobs = dict(line.split("|", 1) for line in result.stdout.split() if "|" in line)
    return {job_id: state for job_id, state in jobs.items() if state not in ENDING_STATES}


def live_local_jobs(ledger: Mapping[str, Submission]) -> dict[str, str]:
    """The ledger's local jobs whose process still runs: job id (the controller's PID) -> "RUNNING".

    A PID counts only while its command line is submitit's local controller, so a reused PID is not taken
    for a live job.
    """
    live = {}
    for entry in ledger.values():
        if entry.launcher != "local" or not entry.job_id.isdigit():
            continue
        try:
            command = Path(f"/proc/{entry.job_id}/cmdline").read_bytes()
        except OSError:
            continue
        if LOCAL_CONTROLLER.encode() in command:
            live[entry.job_id] = "RUNNING"
    return live


def live_jobs(ledger: Mapping[str, Submission]) -> dict[str, str]:
    """The ledger's jobs still queued or running: SLURM's (asked only when it holds any) and local ones."""
    on_slurm = any(entry.launcher == "slurm" for entry in ledger.values())
    return {**(live_slurm_jobs() if on_slurm else {}), **live_local_jobs(ledger)}


def cluster_max_array_size() -> int:
    """MaxArraySize of the cluster (from `scontrol show config`), or SLURM's default."""
    if shutil.which("scontrol") is None:
        return DEFAULT_MAX_ARRAY_SIZE
    result = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, check=False)
    match = re.search(r"^MaxArraySize\s*=\s*(\d+)", result.stdout, re.MULTILINE)
    return int(match.group(1)) if match else DEFAULT_MAX_ARRAY_SIZE


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
    groups: dict[tuple, list[RunSpec]] = {}
    for spec in specs:
        if decisions[spec.run_key] in (Decision.NEW, Decision.RESUME):
            groups.setdefault(shape(spec), []).append(spec)
    arrays = [
        group[start : start + max_array_size]
        for group in groups.values()
        for start in range(0, len(group), max_array_size)
    ]
    return Plan(specs=list(specs), decisions=dict(decisions), arrays=arrays)


def make_executor(launcher: Mapping[str, Any], job_name: str) -> submitit.Executor:
    """The submitit executor for ``launcher.name`` (slurm | local | debug) with its resource keys."""
    kind = launcher["name"]
    folder = launcher["folder"]
    if kind == "debug":
        return submitit.DebugExecutor(folder)
    if kind == "local":
        executor = submitit.LocalExecutor(folder)
        executor.update_parameters(
            timeout_min=launcher["timeout_min"],
            tasks_per_node=launcher["tasks_per_node"],
            gpus_per_node=launcher["gpus_per_node"],
            signal_delay_s=launcher["signal_delay_s"],
            setup=list(launcher.get("setup") or []),
        )
        return executor
    if kind == "slurm":
        executor = submitit.SlurmExecutor(folder, max_num_timeout=launcher["max_num_timeout"])
        ranks = launcher["nodes"] * launcher["tasks_per_node"]
        optional = {
            "partition": launcher.get("partition"),
            "account": launcher.get("account"),
            "qos": launcher.get("qos"),
            "constraint": launcher.get("constraint"),
            "gpus_per_node": launcher["gpus_per_node"] or None,
            "mem": f"{launcher['mem_gb']}GB" if launcher.get("mem_gb") else None,
            "additional_parameters": {"hold": True} if launcher.get("hold") else None,
            # a rank that dies ends the job, instead of leaving its peers waiting in the rendezvous
            "srun_args": ["--kill-on-bad-exit=1"] if ranks > 1 else None,
        }
        executor.update_parameters(
            job_name=job_name,
            nodes=launcher["nodes"],
            ntasks_per_node=launcher["tasks_per_node"],
            cpus_per_task=launcher["cpus_per_task"],
            time=launcher["timeout_min"],
            signal_delay_s=launcher["signal_delay_s"],
            array_parallelism=launcher["array_parallelism"],
            setup=list(launcher.get("setup") or []),
            **{key: value for key, value in optional.items() if value is not None},
        )
        return executor
    raise ValueError(f"launcher.name={kind!r} is not known (choose launcher=slurm, local or debug)")


@contextmanager
def code_snapshot(output_root: str | Path, grid: str) -> Iterator[Path | None]:
    """Copy the repository's tracked files and submit from the copy, so queued jobs run this code."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S-%f")
    target = Path(output_root) / grid / "snapshots" / stamp
    with submitit.helpers.RsyncSnapshot(snapshot_dir=target, root_dir=REPO_ROOT):
        yield target


def prepare_datasets(specs: Sequence[RunSpec]) -> None:
    """Generate missing datasets once, before the jobs start (they would race to write the same file)."""
    from emorl.config import ExperimentConfig
    from emorl.data.reader import build_dataset

    seen = set()
    for spec in specs:
        data = ExperimentConfig.from_dict(spec.config).data
        if data.generate_if_missing and data not in seen:
            seen.add(data)
            for split in ("train", "test"):
                build_dataset(data, split).close()


def submit(plan: Plan) -> tuple[list[Submission], list[submitit.Job]]:
    """Submit the plan's arrays; returns at once with the recorded submissions and submitit jobs."""
    from orchestration.task import TrainAndEvaluate

    to_submit = plan.to_submit
    if not to_submit:
        return [], []
    prepare_datasets(to_submit)
    first = to_submit[0]
    ensure_experiment(first.config["tracking"]["uri"], first.experiment)
    output_root, grid = first.config["output_root"], first.grid
    submissions: list[Submission] = []
    jobs: list[submitit.Job] = []
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    with code_snapshot(output_root, grid) if first.launcher.get("snapshot") else nullcontext():
        for array in plan.arrays:
            launcher = array[0].launcher
            executor = make_executor(launcher, job_name=f"emorl-{grid}")
            with executor.batch():
                array_jobs = [executor.submit(TrainAndEvaluate(spec)) for spec in array]
            for spec, job in zip(array, array_jobs, strict=True):
                folder = str(job.paths.folder)
                submissions.append(
                    Submission(
                        spec.run_key, spec.cell_key, spec.seed, job.job_id, folder, launcher["name"], now
                    )
                )
            jobs += array_jobs
    _append_ledger(output_root, grid, submissions)
    return submissions, jobs


class LocalQueue:
    """Local runs started a few at a time (``start``), the next as soon as a running one ends.

    SLURM throttles an array itself (``array_parallelism``); on one machine the waiting launcher does it,
    so a grid larger than the machine does not start every run at once.
    """

    def __init__(self, plan: Plan):
        self.plan = plan
        self.waiting = list(plan.to_submit)

    def start(self, count: int) -> tuple[list[Submission], list[submitit.Job]]:
        """Submit the next ``count`` waiting runs, each as its own local job."""
        batch, self.waiting = self.waiting[:count], self.waiting[count:]
        decisions = {spec.run_key: self.plan.decisions[spec.run_key] for spec in batch}
        return submit(Plan(specs=batch, decisions=decisions, arrays=[[spec] for spec in batch]))


def at_once(launcher: Mapping[str, Any], runs: int) -> int:
    """How many runs of one array run at the same time: ``array_parallelism`` (locally while the launcher
    waits, see LocalQueue), one in debug."""
    return 1 if launcher["name"] == "debug" else min(runs, launcher["array_parallelism"])


def array_summary(plan: Plan) -> list[dict[str, Any]]:
    """One row per array to submit: runs, resources per job, throttle."""
    rows = []
    for array in plan.arrays:
        launcher = array[0].launcher
        rows.append(
            {
                "runs": len(array),
                "launcher": launcher["name"],
                "partition": launcher.get("partition") or "-",
                "nodes": launcher["nodes"],
                "tasks/node": launcher["tasks_per_node"],
                "gpus/node": launcher["gpus_per_node"],
                "cpus/task": launcher["cpus_per_task"],
                "mem": f"{launcher['mem_gb']}GB" if launcher.get("mem_gb") else "-",
                "time": f"{launcher['timeout_min']} min",
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


def wait_for(
    jobs: Sequence[submitit.Job],
    submissions: Sequence[Submission],
    progress: bool = True,
    queue: LocalQueue | None = None,
) -> list[str]:
    """Block until every job ends (a bar over finished runs); returns one line per failed run.

    With a ``queue``, each run that ends frees a slot for the queue's next run.
    """
    from tqdm import tqdm

    failures: list[str] = []
    pending = list(zip(jobs, submissions, strict=True))
    total = len(pending) + (len(queue.waiting) if queue else 0)
    last_forced = time.monotonic()
    with tqdm(total=total, desc="runs finished", unit="run", disable=not progress) as bar:
        while pending:
            # submitit's cached job states can lag by minutes (a job whose rank was killed leaves no
            # result file), so ask the scheduler itself every FORCED_STATE_CHECK_S
            force = time.monotonic() - last_forced >= FORCED_STATE_CHECK_S
            last_forced = time.monotonic() if force else last_forced
            still = []
            for job, entry in pending:
                if isinstance(job, submitit.DebugJob) or job.done(force_check=force):
                    try:
                        job.results()  # one per task (rank)
                    except Exception as exc:
                        failures.append(
                            f"run {entry.run_key} (job {entry.job_id}) failed: {exc}".splitlines()[0]
                        )
                    bar.update(1)
                else:
                    still.append((job, entry))
            if queue is not None and len(still) < len(pending):
                started, started_jobs = queue.start(len(pending) - len(still))
                still += zip(started_jobs, started, strict=True)
            pending = still
            if pending:
                time.sleep(1.0)
    return failures
