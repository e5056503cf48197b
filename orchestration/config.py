"""Typed, validated configuration of the cluster layer: the launcher (a job's resources and executor) and
tracking (the MLflow store).

As for ``emorl.config``, the Hydra tree under ``experiments/conf`` is the one home of the values: these
dataclasses hold no values of their own, only types and checks, and every problem is reported at once.
The launcher's fields are the one list of launcher keys: the counts, the keys that shape a job (and so
group runs into job arrays), what an executor and the dry run read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from emorl.config import MINIMUM, ConfigError, typed_values

LAUNCHERS = ("slurm", "local", "debug")
TRACKING_KINDS = ("local", "server")
SHAPES_A_JOB = "shapes_a_job"  # field metadata: False for a key of the submission, not of its jobs


def count(minimum: int = 1) -> Any:
    """A launcher field that counts resources: an integer, at least ``minimum``."""
    return field(metadata={MINIMUM: minimum})


def of_the_submission() -> Any:
    """A launcher field that does not shape a job: runs that differ in it can share one job array."""
    return field(metadata={SHAPES_A_JOB: False})


@dataclass(frozen=True, kw_only=True)
class LauncherConfig:
    """How a grid's runs are submitted (``experiments/conf/launcher/``, a cluster profile on top)."""

    name: Literal["slurm", "local", "debug"]  # the submitit executor
    partition: str | None
    account: str | None
    qos: str | None
    constraint: str | None
    nodes: int = count()
    tasks_per_node: int = count()  # one task (rank) per GPU
    gpus_per_node: int = count(0)
    cpus_per_task: int = count()
    mem_gb: int | None
    timeout_min: int = count()
    expected_hours: float | None = of_the_submission()  # per run, for the dry run's GPU hours
    array_parallelism: int = count()
    max_array_size: int | None = of_the_submission()
    signal_delay_s: int
    max_num_timeout: int
    max_retries: int = dataclasses.field(metadata={MINIMUM: 0, SHAPES_A_JOB: False})  # after infra failures
    setup: tuple[str, ...]
    python: str | None  # the command that starts Python in a job (None: this one), e.g. in a container
    snapshot: bool = of_the_submission()
    hold: bool
    profile: str | None = of_the_submission()
    folder: str

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> LauncherConfig:
        """Build and validate the resolved ``launcher`` section, or raise ConfigError with every problem."""
        return _build(cls, raw, "launcher", "choose one with launcher=local|debug|slurm")

    def problems(self) -> list[str]:
        if self.name not in LAUNCHERS:
            return [f"launcher.name={self.name!r} is not known (choose launcher=slurm, local or debug)"]
        return []

    @property
    def ranks(self) -> int:
        """Tasks of one job, one rank each."""
        return self.nodes * self.tasks_per_node

    @property
    def shape(self) -> tuple[object, ...]:
        """The job's resource shape: runs of equal shape can share one job array."""
        return tuple(
            getattr(self, item.name)
            for item in dataclasses.fields(self)
            if item.metadata.get(SHAPES_A_JOB, True)
        )

    def batch_problems(self, batch_size: int) -> list[str]:
        """The global batch must split evenly over the job's ranks."""
        if batch_size % self.ranks:
            return [
                f"training.batch_size={batch_size} (global) is not divisible by the {self.ranks} ranks "
                f"(launcher.nodes × launcher.tasks_per_node); change one of them"
            ]
        return []


@dataclass(frozen=True, kw_only=True)
class TrackingConfig:
    """Where runs are tracked (``experiments/conf/tracking/``)."""

    kind: Literal["local", "server"]  # an embedded SQLite store, or a tracking server
    uri: str
    experiment: str  # of experiments/train.py; a grid's runs go to the grid's own experiment
    run_id: str | None = None  # experiments/evaluate.py: the run to log into (None: found by run_key)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> TrackingConfig:
        """Build and validate the resolved ``tracking`` section, or raise ConfigError with every problem."""
        return _build(cls, raw, "tracking", "choose tracking=local or tracking=server")

    def problems(self) -> list[str]:
        errors = []
        if self.kind not in TRACKING_KINDS:
            errors.append(
                f"tracking.kind={self.kind!r} is not known (choose tracking=local or tracking=server)"
            )
        if not self.uri:
            errors.append("tracking.uri is not set; choose tracking=local or tracking=server")
        elif urlsplit(self.uri).password is not None:
            errors.append(
                "tracking.uri holds a password, which would be written into configs, tags and submitit's "
                "pickles; give the URI without it and set MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD in the environment"
            )
        return errors


Section = TypeVar("Section", LauncherConfig, TrackingConfig)


def _build(cls: type[Section], raw: Mapping[str, Any] | None, prefix: str, choose: str) -> Section:
    if not isinstance(raw, Mapping):
        raise ConfigError([f"{prefix}: missing; {choose}"])
    errors: list[str] = []
    values = typed_values(cls, raw, prefix, errors)
    if errors:
        raise ConfigError(errors)
    config = cls(**values)
    errors = config.problems()
    if errors:
        raise ConfigError(errors)
    return config
