"""Whether a grid's jobs fit the cluster: partitions, nodes, CPUs, memory, GPUs (gres) and time limits, read
from ``scontrol show partition`` / ``scontrol show node``, checked before anything is submitted.

sbatch would otherwise accept the first job arrays of a grid and refuse a later one (``Invalid generic
resource (gres) specification``), or queue a job that can never start.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from orchestration.config import LauncherConfig
from orchestration.grid import GridError, affected_runs
from orchestration.run_spec import RunSpec

UNLIMITED = ("UNLIMITED", "INFINITE", "NONE", "")
_FIELD = re.compile(r"(\w+)=(\S*)")


@dataclass(frozen=True)
class Node:
    name: str
    cpus: int
    memory_mb: int
    gpus: int
    partitions: tuple[str, ...]


@dataclass(frozen=True)
class Partition:
    name: str
    default: bool
    state: str
    max_time_min: int | None  # None: unlimited
    max_nodes: int | None
    max_cpus_per_node: int | None
    max_mem_per_node_mb: int | None


@dataclass(frozen=True)
class Cluster:
    """What the scheduler offers: its partitions and nodes."""

    partitions: dict[str, Partition]
    nodes: list[Node]

    def default_partition(self) -> str | None:
        return next((p.name for p in self.partitions.values() if p.default), None)


def _records(text: str) -> list[dict[str, str]]:
    """``scontrol show ... -o`` output: one record (key=value fields) per line."""
    return [dict(_FIELD.findall(line)) for line in text.splitlines() if "=" in line]


def _limit(value: str) -> int | None:
    return None if value.upper() in UNLIMITED else int(value)


def slurm_minutes(value: str) -> int | None:
    """A SLURM time limit in minutes: ``UNLIMITED``, ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``."""
    if value.upper() in UNLIMITED:
        return None
    days, _, clock = value.rpartition("-")
    parts = [int(part) for part in clock.split(":")]
    if days:
        hours, minutes, seconds = [*parts, 0, 0][:3]
    elif len(parts) == 3:
        hours, minutes, seconds = parts
    elif len(parts) == 2:
        hours, (minutes, seconds) = 0, parts
    else:
        hours, minutes, seconds = 0, parts[0], 0
    return int(days or 0) * 24 * 60 + hours * 60 + minutes + (1 if seconds else 0)


def gres_gpus(gres: str) -> int:
    """GPUs in a node's ``Gres`` field, e.g. ``gpu:a100:4(S:0-1),gpu:v100:2`` -> 6; ``(null)`` -> 0."""
    total = 0
    for item in gres.split(","):
        fields = item.split("(")[0].split(":")
        if fields[0] == "gpu" and len(fields) > 1 and fields[-1].isdigit():
            total += int(fields[-1])
    return total


def parse_cluster(partitions_text: str, nodes_text: str) -> Cluster:
    """The cluster from the output of ``scontrol show partition -o`` and ``scontrol show node -o``."""
    partitions = {
        record["PartitionName"]: Partition(
            name=record["PartitionName"],
            default=record.get("Default") == "YES",
            state=record.get("State", "UP"),
            max_time_min=slurm_minutes(record.get("MaxTime", "UNLIMITED")),
            max_nodes=_limit(record.get("MaxNodes", "UNLIMITED")),
            max_cpus_per_node=_limit(record.get("MaxCPUsPerNode", "UNLIMITED")),
            max_mem_per_node_mb=_limit(record.get("MaxMemPerNode", "UNLIMITED")),
        )
        for record in _records(partitions_text)
        if "PartitionName" in record
    }
    nodes = [
        Node(
            name=record["NodeName"],
            cpus=int(record.get("CPUTot", "0")),
            memory_mb=int(record.get("RealMemory", "0")),
            gpus=gres_gpus(record.get("Gres", "(null)")),
            partitions=tuple(p for p in record.get("Partitions", "").split(",") if p),
        )
        for record in _records(nodes_text)
        if "NodeName" in record
    ]
    return Cluster(partitions, nodes)


def query_cluster() -> Cluster | None:
    """The cluster this machine submits to, or None without SLURM's client commands."""
    if shutil.which("scontrol") is None:
        return None
    texts = []
    for what in ("partition", "node"):
        done = subprocess.run(["scontrol", "show", what, "-o"], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"scontrol show {what} failed ({done.returncode}): {done.stderr.strip()}")
        texts.append(done.stdout)
    return parse_cluster(*texts)


def launcher_problems(launcher: LauncherConfig, cluster: Cluster) -> list[str]:
    """Why a job of this shape could never run on ``cluster`` (empty when it fits)."""
    name = launcher.partition or cluster.default_partition()
    if name is None:
        return ["launcher.partition is not set and the cluster has no default partition"]
    partition = cluster.partitions.get(name)
    if partition is None:
        known = ", ".join(sorted(cluster.partitions)) or "none"
        return [f"launcher.partition={name!r} does not exist (partitions: {known})"]
    where = f"partition {name!r}"
    problems = []
    if partition.state != "UP":
        problems.append(f"{where} is {partition.state}: jobs would wait forever")
    if partition.max_time_min is not None and launcher.timeout_min > partition.max_time_min:
        problems.append(
            f"launcher.timeout_min={launcher.timeout_min} exceeds {where}'s time limit "
            f"({partition.max_time_min} min)"
        )
    if partition.max_nodes is not None and launcher.nodes > partition.max_nodes:
        problems.append(f"launcher.nodes={launcher.nodes} exceeds {where}'s MaxNodes={partition.max_nodes}")
    members = [node for node in cluster.nodes if name in node.partitions]
    cpus = launcher.tasks_per_node * launcher.cpus_per_task
    mem_mb = launcher.mem_gb * 1024 if launcher.mem_gb else 0
    checks = [
        ("gpus_per_node", launcher.gpus_per_node, lambda node: node.gpus, "GPUs (gres gpu)", None),
        (
            "tasks_per_node × cpus_per_task",
            cpus,
            lambda node: node.cpus,
            "CPUs",
            partition.max_cpus_per_node,
        ),
        ("mem_gb", mem_mb, lambda node: node.memory_mb, "MB of memory", partition.max_mem_per_node_mb),
    ]
    fitting = members
    for key, wanted, offered, unit, cap in checks:
        most = max((offered(node) for node in members), default=0)
        if cap is not None:
            most = min(most, cap)
        if wanted > most:
            shown = f"{wanted // 1024} GB" if key == "mem_gb" else str(wanted)
            problems.append(
                f"launcher.{key}={shown} per node, but the nodes of {where} have at most {most} {unit}"
            )
        fitting = [node for node in fitting if offered(node) >= wanted]
    if not problems and len(fitting) < launcher.nodes:
        problems.append(
            f"launcher.nodes={launcher.nodes}, but only {len(fitting)} node(s) of {where} have the "
            f"{cpus} CPUs, {launcher.gpus_per_node} GPUs and {mem_mb} MB asked per node"
        )
    return problems


def grid_resource_problems(specs: Sequence[RunSpec], cluster: Cluster | None = None) -> list[str]:
    """Every way a grid's SLURM jobs would not fit the cluster, once per problem with the runs it affects.

    Empty when no run uses the SLURM launcher or this machine has no SLURM client commands.
    """
    on_slurm = [spec for spec in specs if spec.launcher.name == "slurm"]
    if not on_slurm:
        return []
    cluster = cluster or query_cluster()
    if cluster is None:
        return []
    affected: dict[str, list[str]] = {}
    by_shape: dict[tuple[object, ...], list[str]] = {}
    for spec in on_slurm:
        shape = spec.launcher.shape
        if shape not in by_shape:
            by_shape[shape] = launcher_problems(spec.launcher, cluster)
        for problem in by_shape[shape]:
            affected.setdefault(problem, []).append(spec.name)
    return [f"{problem} ({affected_runs(names)})" for problem, names in affected.items()]


def check_grid_fits(specs: Sequence[RunSpec]) -> None:
    """Raise GridError listing every way the grid's jobs do not fit the cluster."""
    problems = grid_resource_problems(specs)
    if problems:
        raise GridError(specs[0].grid, problems)
