"""A tracked run's lifetime: signals ask for a stop, and every exit path ends the run with its status."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from orchestration.tracking.lifetime import tracked_run


class RecordingLogger:
    def __init__(self) -> None:
        self.artifacts: dict[str, str] = {}
        self.status: str | None = None
        self.tags: dict[str, str] = {}

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.artifacts[f"{artifact_path}/{Path(path).name}"] = Path(path).read_text()

    def set_tags(self, tags: dict[str, str]) -> None:
        self.tags.update(tags)

    def close(self, status: str = "FINISHED") -> None:
        self.status = status


def test_a_run_that_ends_normally_is_finished_and_the_signals_are_given_back():
    logger, before = RecordingLogger(), signal.getsignal(signal.SIGTERM)
    with tracked_run(logger) as stop:
        assert signal.getsignal(signal.SIGTERM) is stop
    assert logger.status == "FINISHED" and signal.getsignal(signal.SIGTERM) is before


def test_a_signal_asks_for_a_stop_and_a_preempted_run_is_killed():
    logger = RecordingLogger()
    with tracked_run(logger, signals=(signal.SIGUSR2,)) as stop:
        os.kill(os.getpid(), signal.SIGUSR2)
        assert stop.is_set() and stop.signal_name == "SIGUSR2"
        stop.preempted = True
    assert logger.status == "KILLED"


def test_an_error_fails_the_run_with_its_traceback():
    logger = RecordingLogger()
    with pytest.raises(RuntimeError), tracked_run(logger):
        raise RuntimeError("no data")
    assert logger.status == "FAILED" and "RuntimeError: no data" in logger.artifacts["run/traceback.txt"]
    assert logger.tags == {"end_reason": "RuntimeError: no data", "failure_kind": "deterministic"}


def test_a_lost_connection_between_ranks_is_an_infrastructure_failure():
    class DistNetworkError(RuntimeError):  # torch.distributed's, by name: no torch import needed
        pass

    logger = RecordingLogger()
    with pytest.raises(DistNetworkError), tracked_run(logger):
        raise DistNetworkError("Connection reset by peer")
    assert logger.tags["failure_kind"] == "infrastructure"


def test_a_second_sigint_interrupts_at_once_and_the_run_is_killed():
    logger = RecordingLogger()
    with pytest.raises(KeyboardInterrupt), tracked_run(logger):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
    assert logger.status == "KILLED"
