"""One run of a grid, as its job gets it: the typed, validated configs and the run's identity."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emorl.config import ExperimentConfig, plain_dict
from orchestration.config import LauncherConfig, TrackingConfig


@dataclass(frozen=True)
class RunSpec:
    """Everything a job needs to train and evaluate one run; plain, picklable data."""

    config: ExperimentConfig  # checkpoints in training.output_dir = <output_root>/<grid>/<run_key>
    launcher: LauncherConfig
    tracking: TrackingConfig
    run_key: str  # hash of the config's identity keys (emorl.identity), the seed included
    cell_key: str  # the same without the seed: one table cell
    grid: str
    experiment: str  # the grid's MLflow experiment
    output_root: str
    labels: dict[str, str] = field(default_factory=dict)  # axis -> value label, e.g. {"variant": "no_geco"}

    @property
    def seed(self) -> int:
        return self.config.training.seed

    @property
    def name(self) -> str:
        """Short readable run name, as the MLflow UI shows it: the axis labels and the seed,
        e.g. ``bottom_up · seed 1``."""
        return " · ".join([*self.labels.values(), f"seed {self.seed}"])

    @property
    def cell_label(self) -> str:
        return ",".join(f"{axis}={label}" for axis, label in self.labels.items()) or "all"

    @property
    def cell_params(self) -> dict[str, str]:
        """The run's cell as MLflow params (``cell`` and ``axis.<axis>``), for grouping runs in the UI."""
        return {"cell": self.cell_label, **{f"axis.{axis}": label for axis, label in self.labels.items()}}

    @property
    def output_dir(self) -> Path:
        return Path(self.config.training.output_dir)

    def to_dict(self) -> dict[str, Any]:
        """The run's whole resolved config as plain data (its ``config.json`` in MLflow)."""
        return {
            **self.config.to_dict(),
            "launcher": plain_dict(self.launcher),
            "tracking": plain_dict(self.tracking),
            "output_root": self.output_root,
            "grid": {"name": self.grid, "experiment": self.experiment, "labels": dict(self.labels)},
        }
