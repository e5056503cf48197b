"""A toy-size Tetrominoes training config shared by the trainer tests (real EMORL, real HDF5 files)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from emorl.config import ExperimentConfig


def toy_config(data_root: Path, output_dir: Path, **training: Any) -> dict[str, Any]:
    """Plain config dict: a tiny EMORL on 35×35 Tetrominoes with GECO switching on at step 3."""
    return {
        "model": {
            "K": 2,
            "z_size": 4,
            "stochastic_layers": 2,
            "decoder": "small",
            "input_size": [3, 35, 35],
            "log_scale": -1.2039728,
        },
        "data": {"name": "tetrominoes", "root": str(data_root), "num_workers": 0},
        "training": {
            "batch_size": 4,
            "iters": 6,
            "warmup_steps": 2,
            "log_every": 2,
            "image_every": 1000,
            "checkpoint_every_steps": 1000,
            "refinement_curriculum": [[-1, 1], [4, 0]],
            "output_dir": str(output_dir),
            "device": "cpu",
            **training,
        },
        "geco": {"warm_start": 3, "reconstruction_target": -1.224},
    }


@pytest.fixture
def make_config(tetrominoes_root: Path, tmp_path: Path) -> Callable[..., ExperimentConfig]:
    """``make_config(output="run", **training_overrides)`` → a validated toy ExperimentConfig."""

    def build(output: str = "run", geco: dict[str, Any] | None = None, **training: Any) -> ExperimentConfig:
        raw = toy_config(tetrominoes_root, tmp_path / output, **training)
        raw["geco"].update(geco or {})
        return ExperimentConfig.from_dict(raw)

    return build
