"""Checking a grid's job shapes against what the cluster offers (scontrol's records as text)."""

from __future__ import annotations

import dataclasses

import pytest

from orchestration.config import LauncherConfig
from orchestration.resources import gres_gpus, launcher_problems, parse_cluster, slurm_minutes

PARTITIONS = """\
PartitionName=cpu AllowGroups=ALL Default=YES MaxNodes=UNLIMITED MaxTime=UNLIMITED MaxCPUsPerNode=UNLIMITED \
MaxMemPerNode=UNLIMITED State=UP TotalCPUs=4
PartitionName=gpu Default=NO MaxNodes=2 MaxTime=1-00:00:00 MaxCPUsPerNode=UNLIMITED \
MaxMemPerNode=UNLIMITED State=UP
PartitionName=old Default=NO MaxNodes=UNLIMITED MaxTime=UNLIMITED State=DOWN
"""
NODES = """\
NodeName=c1 CPUTot=4 Gres=(null) RealMemory=8000 OS=Linux 6.1 #1 SMP Partitions=cpu,old
NodeName=g1 CPUTot=16 Gres=gpu:a100:4(S:0-1) RealMemory=256000 Partitions=gpu
NodeName=g2 CPUTot=16 Gres=gpu:a100:2 RealMemory=256000 Partitions=gpu
"""
CLUSTER = parse_cluster(PARTITIONS, NODES)
BASE = LauncherConfig(
    name="slurm",
    partition="gpu",
    account=None,
    qos=None,
    constraint=None,
    nodes=1,
    tasks_per_node=1,
    gpus_per_node=1,
    cpus_per_task=4,
    mem_gb=32,
    timeout_min=60,
    expected_hours=None,
    array_parallelism=4,
    max_array_size=None,
    signal_delay_s=90,
    max_num_timeout=10,
    max_retries=2,
    setup=(),
    python=None,
    snapshot=False,
    hold=False,
    profile=None,
    folder="/tmp/%j",
)


def problems(**changes) -> list[str]:
    return launcher_problems(dataclasses.replace(BASE, **changes), CLUSTER)


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("UNLIMITED", None), ("30", 30), ("10:00", 10), ("02:00:00", 120), ("1-00:00:00", 1440), ("2-12", 3600)],
)
def test_slurm_time_limits_read_in_minutes(text, minutes):
    assert slurm_minutes(text) == minutes


def test_gpus_are_summed_over_a_nodes_gres():
    assert gres_gpus("gpu:a100:4(S:0-1),gpu:v100:2,shard:8") == 6 and gres_gpus("(null)") == 0


def test_a_job_that_fits_has_no_problems():
    assert problems() == [] and problems(partition=None, gpus_per_node=0, mem_gb=4) == []


def test_each_resource_that_does_not_fit_is_named_with_what_the_partition_offers():
    assert problems(partition="nope") == [
        "launcher.partition='nope' does not exist (partitions: cpu, gpu, old)"
    ]
    assert problems(partition=None) == [
        "launcher.gpus_per_node=1 per node, but the nodes of partition 'cpu' have at most 0 GPUs (gres gpu)",
        "launcher.mem_gb=32 GB per node, but the nodes of partition 'cpu' have at most 8000 MB of memory",
    ]
    assert problems(gpus_per_node=8) == [
        "launcher.gpus_per_node=8 per node, but the nodes of partition 'gpu' have at most 4 GPUs (gres gpu)"
    ]
    assert "exceeds partition 'gpu''s time limit (1440 min)" in problems(timeout_min=2000)[0]
    assert "MaxNodes=2" in problems(nodes=3)[0]
    assert "at most 16 CPUs" in problems(tasks_per_node=4, cpus_per_task=8)[0]
    assert "is DOWN" in problems(partition="old", gpus_per_node=0, mem_gb=1)[0]


def test_nodes_must_fit_together_not_only_one_by_one():
    assert problems(nodes=2, gpus_per_node=2) == []
    assert problems(nodes=2, gpus_per_node=4) == [
        "launcher.nodes=2, but only 1 node(s) of partition 'gpu' have the 4 CPUs, 4 GPUs and 32768 MB "
        "asked per node"
    ]
