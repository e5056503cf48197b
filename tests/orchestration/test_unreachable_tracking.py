"""An unreachable tracking server is a clear error before anything is trained or submitted."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from orchestration.tracking.store import TrackingUnavailable, ensure_experiment

REPO = Path(__file__).resolve().parents[2]


def closed_port_uri() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there once the probe is closed


def test_an_unreachable_server_raises_a_clear_error():
    uri = closed_port_uri()
    with pytest.raises(TrackingUnavailable, match=f"{uri} cannot be reached.*tracking=local"):
        ensure_experiment(uri, "anything")


def run(entry: str, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "experiments" / entry), *overrides],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )


def test_training_with_an_unreachable_server_trains_nothing(tmp_path):
    uri = closed_port_uri()
    done = run(
        "train.py",
        "dataset=tetrominoes",
        "debug=toy",
        "tracking=server",
        f"tracking.uri={uri}",
        f"output_root={tmp_path}",
    )
    assert done.returncode != 0
    assert f"{uri} cannot be reached" in done.stderr and "nothing was trained" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "train").exists()


def test_a_grid_with_an_unreachable_server_submits_nothing(tmp_path):
    uri = closed_port_uri()
    done = run(
        "ablation_grid.py",
        "launcher=debug",
        "tracking=server",
        f"tracking.uri={uri}",
        f"output_root={tmp_path}",
    )
    assert done.returncode == 2
    assert f"{uri} cannot be reached" in done.stderr and "nothing was submitted" in done.stderr
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize("entry", ["status.py", "tables.py"])
def test_looking_at_a_grid_with_an_unreachable_server_says_so_once(entry, tmp_path):
    uri = closed_port_uri()
    done = run(entry, "tracking=server", f"tracking.uri={uri}", f"output_root={tmp_path}")
    assert done.returncode == 2
    assert f"{uri} cannot be reached" in done.stderr and "tracking=local" in done.stderr
    assert "Traceback" not in done.stderr and "MlflowException" not in done.stderr
