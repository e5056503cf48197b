"""A tracked run's lifetime: stop signals that ask the trainer to checkpoint and return, and the MLflow
run's final status on every exit (FINISHED; KILLED when a signal stopped it; FAILED with the traceback).
"""

from __future__ import annotations

import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from emorl.logging import Logger
from orchestration.failures import END_REASON_TAG, FAILURE_KIND_TAG, exception_kind, exception_reason

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)  # a process of its own (experiments/train.py)


class StopRequest:
    """The signal handler: it only raises a flag that the trainer polls once per step (a second SIGINT
    interrupts at once). ``release`` gives the signals back to their previous handlers; ``preempted`` is
    set by whoever ran the trainer, when it stopped on the request before the run's end."""

    def __init__(self, signals: Sequence[signal.Signals]):
        self.signal_name: str | None = None
        self.preempted = False
        self._raised = threading.Event()
        self._previous = {signum: signal.signal(signum, self) for signum in signals}

    def __call__(self, signum: int, frame: FrameType | None = None) -> None:
        if self.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name
        print(f"\n{self.signal_name}: checkpointing at the next step boundary", file=sys.stderr, flush=True)
        self._raised.set()

    def is_set(self) -> bool:
        return self._raised.is_set()

    def release(self) -> None:
        """From now on the signals reach their previous handlers again."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


@contextmanager
def tracked_run(
    logger: Logger | None, signals: Sequence[signal.Signals] = STOP_SIGNALS
) -> Iterator[StopRequest]:
    """Listen for ``signals`` in the block, then end the run: FINISHED, KILLED when the block says it was
    preempted or an interrupt ended it, FAILED with its traceback attached when the block raised (tagged
    with the exception and its ``failure_kind``). Without a logger (ranks other than 0) only the signals
    are handled."""
    stop = StopRequest(signals)
    try:
        yield stop
    except BaseException as exc:
        if logger is not None:
            attach_traceback(logger, exc)
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                logger.close("KILLED")
            else:
                logger.set_tags(
                    {END_REASON_TAG: exception_reason(exc), FAILURE_KIND_TAG: exception_kind(exc).value}
                )
                logger.close("FAILED")
        raise
    else:
        if logger is not None:
            logger.close("KILLED" if stop.preempted else "FINISHED")
    finally:
        stop.release()


def attach_traceback(logger: Logger, exc: BaseException) -> None:
    """The traceback as the run's artifact ``run/traceback.txt`` (the job's log has it too)."""
    folder = Path(tempfile.mkdtemp(prefix="emorl-failure-"))
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    (folder / "traceback.txt").write_text(text)
    logger.log_artifact(folder / "traceback.txt", "run")
