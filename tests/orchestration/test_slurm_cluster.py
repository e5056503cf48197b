"""The single-host SLURM test cluster (slurm/): partitions, sacct, multi-node jobs, submitit, start/stop."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import submitit

from tests.fixtures.slurm_cluster import (
    AS_ROOT,
    SlurmCluster,
    new_state_dir,
    remove_state_dir,
    require_slurm_packages,
    start_cluster,
    stop_cluster,
)

pytestmark = pytest.mark.slurm

REPO_ROOT = Path(__file__).resolve().parents[2]
NODES = {"localhost": "debug*", "n1": "multi", "n2": "multi"}


def node_states(cluster: SlurmCluster) -> dict[str, tuple[str, str]]:
    """Node name -> (partition, state) as sinfo shows them (default partition marked with '*')."""
    out = cluster.run("sinfo", "-h", "-N", "-o", "%N %P %t")
    return {
        name: (partition, state) for name, partition, state in (line.split() for line in out.splitlines())
    }


def wait_all_idle(cluster: SlurmCluster, timeout: float = 30) -> dict[str, tuple[str, str]]:
    """sinfo's node states once every node is idle (jobs of earlier tests may still be ending)."""
    deadline = time.monotonic() + timeout
    states = node_states(cluster)
    while time.monotonic() < deadline and any(state != "idle" for _, state in states.values()):
        time.sleep(0.3)
        states = node_states(cluster)
    return states


def is_running(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def processes_of(state_dir: Path) -> list[int]:
    """Live processes naming ``state_dir`` in their command line or environment (daemons, steps, tasks)."""
    needle = f"{state_dir}/".encode()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            named = needle in (proc / "cmdline").read_bytes() or needle in (proc / "environ").read_bytes()
        except OSError:
            continue
        if named and is_running(int(proc.name)):
            found.append(int(proc.name))
    return found


def executor(folder: Path, partition: str, nodes: int = 1) -> submitit.AutoExecutor:
    """A submitit executor for the test cluster; jobs can import this test module (PYTHONPATH=repo)."""
    ex = submitit.AutoExecutor(folder=folder / "%j")
    assert ex.cluster == "slurm", "srun is on PATH, so submitit must pick the slurm executor"
    ex.update_parameters(
        slurm_partition=partition,
        nodes=nodes,
        tasks_per_node=1,
        cpus_per_task=1,
        mem_gb=1,
        timeout_min=5,
        slurm_setup=[f"export PYTHONPATH={REPO_ROOT}", "export OMP_NUM_THREADS=1"],
    )
    return ex


def where_am_i(x: int) -> dict[str, object]:
    """Job function: its argument squared and the SLURM node that ran it."""
    return {"square": x * x, "node": os.environ["SLURMD_NODENAME"]}


def all_reduce_ranks() -> dict[str, object]:
    """Job function: the trainer's DDP path, i.e. submitit's env:// variables, gloo, one all_reduce."""
    import torch
    import torch.distributed as dist

    dist_env = submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    dist.init_process_group(backend="gloo", init_method="env://")
    try:
        total = torch.tensor([float(dist_env.rank + 1)])  # [1]
        dist.all_reduce(total)
    finally:
        dist.destroy_process_group()
    return {
        "rank": dist_env.rank,
        "world_size": dist_env.world_size,
        "node": os.environ["SLURMD_NODENAME"],
        "master": dist_env.master_addr,
        "sum": total.item(),
    }


def test_sinfo_lists_debug_and_multi_partitions_with_all_nodes_idle(slurm_cluster: SlurmCluster) -> None:
    states = wait_all_idle(slurm_cluster)
    assert states == {node: (partition, "idle") for node, partition in NODES.items()}


def test_config_exposes_max_array_size_and_fast_requeue_settings(slurm_cluster: SlurmCluster) -> None:
    config = slurm_cluster.run("scontrol", "show", "config")
    settings = {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in config.splitlines())}
    assert settings["MaxArraySize"] == "1001"
    assert "cred_expire=10" in settings["AuthInfo"]
    assert "bf_interval=5" in settings["SchedulerParameters"]


def test_batch_job_completes_and_sacct_shows_completed(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    out = tmp_path / "job.out"
    job_id = slurm_cluster.run(
        "sbatch", "--parsable", "-p", "debug", "-o", str(out), "--wrap", "srun echo step-ran"
    ).strip()
    assert slurm_cluster.wait_for_job(job_id) == "COMPLETED"
    assert out.read_text().strip() == "step-ran"
    assert slurm_cluster.sacct_states(job_id) == {
        job_id: "COMPLETED",
        f"{job_id}.batch": "COMPLETED",
        f"{job_id}.0": "COMPLETED",
    }


def test_two_node_srun_puts_one_rank_on_n1_and_one_on_n2_where_n1_resolves(
    slurm_cluster: SlurmCluster,
) -> None:
    out = slurm_cluster.run(
        "srun", "-p", "multi", "-N", "2", "--ntasks-per-node=1",
        "bash", "-c", 'echo "$SLURM_PROCID $SLURMD_NODENAME $(getent hosts n1 | cut -d" " -f1)"',
    )  # fmt: skip
    assert sorted(out.splitlines()) == ["0 n1 127.0.0.1", "1 n2 127.0.0.1"]


def test_submitit_runs_a_function_on_the_debug_partition(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    job = executor(tmp_path, "debug").submit(where_am_i, 7)
    assert job.result() == {"square": 49, "node": "localhost"}
    assert slurm_cluster.wait_for_job(job.job_id) == "COMPLETED"


def test_submitit_two_node_job_all_reduces_over_gloo_across_n1_and_n2(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    job = executor(tmp_path, "multi", nodes=2).submit(all_reduce_ranks)
    results = sorted(job.results(), key=lambda r: r["rank"])
    assert [(r["rank"], r["node"]) for r in results] == [(0, "n1"), (1, "n2")]
    assert all(r["world_size"] == 2 and r["master"] == "n1" for r in results)
    assert [r["sum"] for r in results] == [3.0, 3.0]  # ranks contribute 1 and 2


@pytest.fixture(scope="module")
def stopped_cluster_dir() -> Iterator[Path]:
    """A cluster folder set up once (munge key, MariaDB, accounting) and stopped, for tests of start/stop."""
    require_slurm_packages()
    state_dir = new_state_dir()
    start_cluster(state_dir)
    stop_cluster(state_dir)
    yield state_dir
    stop_cluster(state_dir)
    remove_state_dir(state_dir)


def test_stop_leaves_no_process_of_the_cluster_alive(stopped_cluster_dir: Path) -> None:
    cluster = start_cluster(stopped_cluster_dir)
    pids = cluster.pids()
    assert set(pids) == {"munged", "mysqld", "slurmdbd", "slurmctld"} | {f"slurmd-{n}" for n in NODES}
    assert all(is_running(pid) for pid in pids.values())
    stop_cluster(cluster.state_dir)
    assert {name: pid for name, pid in pids.items() if is_running(pid)} == {}
    assert processes_of(cluster.state_dir) == []
    assert cluster.pids() == {}, "stop.sh removes the pid files"


def test_start_recovers_from_a_crashed_run_in_the_same_folder(
    stopped_cluster_dir: Path, tmp_path: Path
) -> None:
    cluster = start_cluster(stopped_cluster_dir)
    try:
        sleeper = cluster.run(
            "sbatch", "--parsable", "-o", str(tmp_path / "sleep.out"), "--wrap", "sleep 300"
        )
        deadline = time.monotonic() + 30
        while cluster.run("squeue", "-h", "-j", sleeper.strip(), "-o", "%T").strip() != "RUNNING":
            assert time.monotonic() < deadline, "the sleep job never started"
            time.sleep(0.2)
        # a crash: every daemon dies at once, the job step lives on
        subprocess.run([*AS_ROOT, "kill", "-KILL", *map(str, cluster.pids().values())], check=True)
        cluster = start_cluster(cluster.state_dir)
        assert wait_all_idle(cluster, timeout=5) == {node: (part, "idle") for node, part in NODES.items()}
        assert cluster.run("squeue", "-h").strip() == ""
        two_nodes = ["-p", "multi", "-N", "2", "-o", str(tmp_path / "two-node.out")]
        job_id = cluster.run("sbatch", "--parsable", *two_nodes, "--wrap", "srun true").strip()
        assert cluster.wait_for_job(job_id) == "COMPLETED"
    finally:
        stop_cluster(cluster.state_dir)
    assert processes_of(cluster.state_dir) == []
