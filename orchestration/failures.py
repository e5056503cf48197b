"""Why a run ended without finishing, and whether trying again could help.

The rule: a run whose own code ended it (an exception in the trainer or evaluation, a config refused on
resume, too many non-finite steps) fails the same way again, so it is *deterministic* and never retried
automatically; its run is FAILED with the exception as the reason. A run whose job vanished while its
MLflow run was still RUNNING was stopped from outside (SIGKILL, the OOM killer, a node failure) and never
got to say so: that is *infrastructure*, and retrying from the last checkpoint can help. So are the errors
of a lost connection between ranks (``torch.distributed``'s network and store errors) or to the tracking
server. SLURM reports a job killed with ``scancel --signal=KILL`` (or by an administrator's ``scancel``) as
CANCELLED: unless the grid's own cancel (``status.py cancel=true``) recorded it in the ledger, that too
counts as infrastructure. A grid's own cancellation is KILLED and never retried; a job that timed out more
often than ``launcher.max_num_timeout`` allows is not retried either.
"""

from __future__ import annotations

import enum

END_REASON_TAG = "end_reason"  # in words: the exception, or how the scheduler says the job ended
FAILURE_KIND_TAG = "failure_kind"  # a FailureKind
RETRIES_TAG = "retries"  # automatic resubmissions after infrastructure failures so far
# exceptions that say the machine or the network broke, not the code
INFRASTRUCTURE_ERRORS = frozenset({"DistNetworkError", "DistStoreError", "ConnectionError", "TimeoutError"})


class FailureKind(enum.StrEnum):
    INFRASTRUCTURE = "infrastructure"  # retried up to launcher.max_retries
    DETERMINISTIC = "deterministic"  # never retried
    CANCELLED = "cancelled"  # by a person: resumed only by the next submission
    TIMEOUT = "timeout"  # requeued by submitit up to launcher.max_num_timeout, then left


# sacct states of a job that ended without its run saying so -> (MLflow status, kind)
GONE_JOB_STATES = {
    "NODE_FAIL": ("FAILED", FailureKind.INFRASTRUCTURE),
    "OUT_OF_MEMORY": ("FAILED", FailureKind.INFRASTRUCTURE),
    "FAILED": ("FAILED", FailureKind.INFRASTRUCTURE),  # killed by a signal, or died before reporting
    "BOOT_FAIL": ("FAILED", FailureKind.INFRASTRUCTURE),
    "PREEMPTED": ("FAILED", FailureKind.INFRASTRUCTURE),
    "CANCELLED": ("KILLED", FailureKind.INFRASTRUCTURE),  # FailureKind.CANCELLED if the ledger says so
    "TIMEOUT": ("FAILED", FailureKind.TIMEOUT),
    "DEADLINE": ("FAILED", FailureKind.TIMEOUT),
}


def text_kind(text: str) -> FailureKind:
    """The kind of a failure known only by its text (a job that died before it had an MLflow run)."""
    markers = (*INFRASTRUCTURE_ERRORS, "Connection refused", "TrackingUnavailable")
    return FailureKind.INFRASTRUCTURE if any(m in text for m in markers) else FailureKind.DETERMINISTIC


def exception_kind(exc: BaseException) -> FailureKind:
    """The kind of a failure the run's own code caught."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return FailureKind.INFRASTRUCTURE if names & INFRASTRUCTURE_ERRORS else FailureKind.DETERMINISTIC


def exception_reason(exc: BaseException) -> str:
    """The exception in one line, for the run's ``end_reason`` tag."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}"[:500] if lines else type(exc).__name__
