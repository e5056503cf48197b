"""Waiting for submitted jobs: one live line of finished / running / queued / failed runs (with the steps of
the running ones), a line per failed run, infrastructure failures retried (``Retrier``), and on this machine
the next local runs started as running ones end.

On a terminal the line is a tqdm bar redrawn in place; elsewhere (a log file, CI) a new line is printed each
time it changes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import submitit

from orchestration.failures import END_REASON_TAG, FAILURE_KIND_TAG, RETRIES_TAG, FailureKind, text_kind
from orchestration.ledger import Submission
from orchestration.plan import Decision, Plan
from orchestration.run_spec import RunSpec
from orchestration.submit import submit

FORCED_STATE_CHECK_S = 30.0  # while waiting, ask sacct directly this often
STEPS_EVERY_S = 10.0  # while waiting, read the running runs' steps from MLflow this often
QUEUED_STATES = ("PENDING", "REQUEUED", "SUSPENDED", "CONFIGURING", "UNKNOWN", "READY")


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


class Retrier:
    """Resubmits, from its last checkpoint and in the same MLflow run, each run whose job failed for an
    infrastructure reason (``orchestration.failures``), up to ``launcher.max_retries`` times; any other
    failure is left FAILED with its reason. The count is kept on the run (tag ``retries``)."""

    def __init__(self, specs: Sequence[RunSpec]):
        self.specs = {spec.run_key: spec for spec in specs}
        self.done: dict[str, int] = {}  # run_key -> retries so far

    def retry(self, entry: Submission, error: str) -> tuple[Submission, submitit.Job] | str:
        """Resubmit the failed run of ``entry``; or, when it is not retried, the line that says why."""
        from orchestration.reconcile import grid_state
        from orchestration.tracking.runs import tag_run

        spec = self.specs[entry.run_key]
        run = grid_state(spec).tracked.get(spec.run_key)  # ends it first if its job is gone
        if run is None:  # it died before it had an MLflow run
            kind = text_kind(error).value
        else:  # a run still RUNNING died without a word: not its own code (the scheduler may lag behind)
            fallback = FailureKind.INFRASTRUCTURE if run.status == "RUNNING" else FailureKind.DETERMINISTIC
            kind = run.tags.get(FAILURE_KIND_TAG, fallback.value)
        reason = run.tags.get(END_REASON_TAG, error) if run is not None else error
        line = f"run {spec.name} ({entry.run_key}, job {entry.job_id}) failed ({kind}): {reason}"
        if kind != FailureKind.INFRASTRUCTURE:
            return line
        done = self.done.get(spec.run_key, int(run.tags.get(RETRIES_TAG, 0)) if run is not None else 0)
        if done >= spec.launcher.max_retries:
            return f"{line}; not retried again after {done} retries (launcher.max_retries)"
        self.done[spec.run_key] = done + 1
        if run is not None:
            tag_run(spec.tracking.uri, run.run_id, {RETRIES_TAG: str(done + 1)})
        (resubmitted,), (job,) = submit(Plan([spec], {spec.run_key: Decision.RESUME}, [[spec]]))
        print(
            f"{line}; retry {done + 1}/{spec.launcher.max_retries} from its checkpoint: job {job.job_id}",
            file=sys.stderr,
        )
        return resubmitted, job


class Progress:
    """The waiting line: a tqdm bar on a terminal, else one printed line per change (nothing if off)."""

    def __init__(self, total: int, enabled: bool, bar: bool | None = None):
        from tqdm import tqdm

        self.enabled = enabled
        self.bar = sys.stderr.isatty() if bar is None else bar
        self.last = ""
        self._tqdm = tqdm(total=total, unit="run", disable=not (enabled and self.bar), file=sys.stderr)

    def show(self, counts: dict[str, int], steps: dict[str, str]) -> None:
        text = " · ".join(f"{state} {count}" for state, count in counts.items())
        if steps:
            text += "   steps " + ", ".join(f"{name}: {step}" for name, step in sorted(steps.items()))
        if text == self.last or not self.enabled:
            return
        self.last = text
        if self.bar:
            self._tqdm.n = counts["finished"] + counts["failed"]
            self._tqdm.set_description_str(text, refresh=True)
        else:
            print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        self._tqdm.close()


def job_state(job: submitit.Job) -> str:
    """ "queued" or "running", from the scheduler's (cached) state of a job that has not ended."""
    if isinstance(job, submitit.DebugJob):
        return "running"
    return "queued" if job.state.split()[0] in QUEUED_STATES else "running"


def running_steps(specs: Sequence[RunSpec], running: set[str]) -> dict[str, str]:
    """``step/iters`` of each running run, as far as MLflow has it."""
    from orchestration.tracking.grid_runs import tracked_runs

    if not running:
        return {}
    first = specs[0]
    tracked = tracked_runs(first.tracking.uri, first.experiment, first.grid)
    return {
        spec.name: f"{tracked[spec.run_key].step}/{spec.config.training.iters}"
        for spec in specs
        if spec.run_key in running and spec.run_key in tracked and tracked[spec.run_key].step is not None
    }


def wait_for(
    jobs: Sequence[submitit.Job],
    submissions: Sequence[Submission],
    progress: bool = True,
    queue: LocalQueue | None = None,
    retrier: Retrier | None = None,
    bar: bool | None = None,
) -> list[str]:
    """Block until every job ends; returns one line per failed run (retried ones only if they gave up).

    With a ``queue``, each run that ends frees a slot for the queue's next run; with a ``retrier``,
    infrastructure failures are resubmitted. ``bar``: a tqdm bar (None: when stderr is a terminal).
    """
    failures: list[str] = []
    pending = list(zip(jobs, submissions, strict=True))
    total = len(pending) + (len(queue.waiting) if queue else 0)
    finished = 0
    steps: dict[str, str] = {}
    last_forced = last_steps = time.monotonic()
    display = Progress(total, progress, bar)
    try:
        while pending:
            # submitit's cached job states can lag by minutes (a job whose rank was killed leaves no
            # result file), so ask the scheduler itself every FORCED_STATE_CHECK_S
            force = time.monotonic() - last_forced >= FORCED_STATE_CHECK_S
            last_forced = time.monotonic() if force else last_forced
            still = []
            for job, entry in pending:
                if not (isinstance(job, submitit.DebugJob) or job.done(force_check=force)):
                    still.append((job, entry))
                    continue
                try:
                    job.results()  # one per task (rank)
                    finished += 1
                except Exception as exc:
                    error = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                    outcome = (
                        retrier.retry(entry, error) if retrier else f"run {entry.run_key} failed: {error}"
                    )
                    if isinstance(outcome, str):
                        failures.append(outcome)
                    else:
                        still.append(outcome[::-1])
            if queue is not None and len(still) < len(pending):
                started, started_jobs = queue.start(len(pending) - len(still))
                still += zip(started_jobs, started, strict=True)
            pending = still
            states = {entry.run_key: job_state(job) for job, entry in pending}
            running = {key for key, state in states.items() if state == "running"}
            if progress and retrier and time.monotonic() - last_steps >= STEPS_EVERY_S:
                last_steps = time.monotonic()
                steps = running_steps(list(retrier.specs.values()), running)
            counts = {
                "finished": finished,
                "running": len(running),
                "queued": len(states) - len(running) + (len(queue.waiting) if queue else 0),
                "failed": len(failures),
            }
            names = {retrier.specs[key].name for key in running} if retrier else set()
            display.show(counts, {name: step for name, step in steps.items() if name in names})
            if pending:
                time.sleep(1.0)
    finally:
        display.close()
    return failures
