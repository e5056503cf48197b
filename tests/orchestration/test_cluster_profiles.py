"""Cluster profiles (slurm/profiles/*.yaml): valid launcher overrides; the local ones fit the test cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestration.compose import apply_profile
from tests.fixtures.slurm_cluster import SlurmCluster

REPO_ROOT = Path(__file__).resolve().parents[2]
PROFILES = sorted((REPO_ROOT / "slurm" / "profiles").glob("*.yaml"))
LOCAL_PROFILES = [p for p in PROFILES if p.stem.startswith("local_test_cluster")]


def launcher_with(profile: Path) -> dict:
    """launcher/slurm.yaml with the profile applied, as ``launcher.profile=...`` does."""
    launcher = yaml.safe_load((REPO_ROOT / "experiments" / "conf" / "launcher" / "slurm.yaml").read_text())
    launcher["profile"] = str(profile)
    apply_profile(launcher)
    return launcher


def test_profiles_exist_for_a_real_and_the_local_cluster() -> None:
    assert {p.stem for p in PROFILES} >= {"a100_cluster", "local_test_cluster", "local_test_cluster_ddp"}


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_profile_overrides_only_known_launcher_keys(profile: Path) -> None:
    launcher = launcher_with(profile)
    assert launcher["partition"], "a profile names its partition"
    assert isinstance(launcher["setup"], list) and all(isinstance(line, str) for line in launcher["setup"])


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_profile_runs_one_rank_per_gpu(profile: Path) -> None:
    launcher = launcher_with(profile)
    assert launcher["gpus_per_node"] in (0, launcher["tasks_per_node"])


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_profile_leaves_time_to_checkpoint_before_the_time_limit(profile: Path) -> None:
    launcher = launcher_with(profile)
    # slurmctld checks time limits every 30 s and sends USR2 once remaining <= signal_delay_s + 30 s
    assert launcher["timeout_min"] * 60 >= 2 * (launcher["signal_delay_s"] + 30)


@pytest.mark.slurm
@pytest.mark.parametrize("profile", LOCAL_PROFILES, ids=lambda p: p.stem)
def test_local_profile_fits_the_test_cluster(slurm_cluster: SlurmCluster, profile: Path) -> None:
    launcher = launcher_with(profile)
    # --test-only: slurmctld checks that the request could run, and schedules nothing
    slurm_cluster.run(
        "sbatch", "--test-only", f"--partition={launcher['partition']}", f"--nodes={launcher['nodes']}",
        f"--ntasks-per-node={launcher['tasks_per_node']}", f"--cpus-per-task={launcher['cpus_per_task']}",
        f"--mem={launcher['mem_gb']}G", f"--time={launcher['timeout_min']}", "--wrap", "true",
    )  # fmt: skip
