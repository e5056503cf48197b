"""The slurm_cluster fixture's package check: skip on a dev machine, fail loudly in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures import slurm_cluster


def test_missing_packages_skip_the_slurm_tests_outside_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(slurm_cluster, "DAEMON_DIR", tmp_path)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"slurmctld.*bash slurm/install\.sh"):
        slurm_cluster.require_slurm_packages()


def test_missing_packages_fail_the_slurm_tests_in_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(slurm_cluster, "DAEMON_DIR", tmp_path)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the SLURM tests"):
        slurm_cluster.require_slurm_packages()


def test_installed_packages_pass_the_check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for daemon in ("slurmctld", "slurmd", "slurmdbd", "munged", "mariadbd"):
        (tmp_path / daemon).touch()
    monkeypatch.setattr(slurm_cluster, "DAEMON_DIR", tmp_path)
    monkeypatch.setenv("CI", "true")
    slurm_cluster.require_slurm_packages()
