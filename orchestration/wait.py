"""Waiting for submitted jobs: a bar over finished runs, a line per failed one, and on this machine
the next local runs started as running ones end.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import submitit

from orchestration.ledger import Submission
from orchestration.plan import Plan
from orchestration.submit import submit

FORCED_STATE_CHECK_S = 30.0  # while waiting, ask sacct directly this often


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
