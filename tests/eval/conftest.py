"""A tiny random (untrained) EMORL saved as a real checkpoint for each generated dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from emorl.config import ExperimentConfig
from emorl.geco import GECO
from emorl.model import EMORL
from emorl.train.checkpoint import LoadedRun, load_for_eval, save_checkpoint

IMAGE_SIZE = {"tetrominoes": 35, "multi_dsprites": 64, "clevr6": 96}
DATASETS = tuple(IMAGE_SIZE)


def tiny_config(name: str, root: Path, output_dir: Path) -> ExperimentConfig:
    """K=4, D=4, L=2, I=1, a ``small`` decoder; evaluation on 8 images in batches of 4."""
    size = IMAGE_SIZE[name]
    return ExperimentConfig.from_dict(
        {
            "model": {
                "K": 4,
                "z_size": 4,
                "stochastic_layers": 2,
                "decoder": "small",
                "input_size": [3, size, size],
            },
            "data": {
                "name": name,
                "root": str(root),
                "num_workers": 0,
                "clevr_resolution": 96 if name == "clevr6" else None,
            },
            "training": {"output_dir": str(output_dir)},
            "geco": {"enabled": name != "multi_dsprites"},
            "eval": {
                "num_images": 8,
                "batch_size": 4,
                "refinement_steps": 1,
                "activeness_images": 3,
                "traversal_steps": 3,
                "gif_top_k": 2,
                "output_dir": str(output_dir / "eval"),
            },
        }
    )


def write_tiny_checkpoint(cfg: ExperimentConfig, step: int = 7) -> Path:
    """Save a random model (and GECO) the way the trainer does; return the checkpoint file.

    The decoder is re-drawn with Xavier gain 1: at the reference's gain 0.02 its output is constant to
    float32 precision, and every latent would look inactive.
    """
    torch.manual_seed(0)
    model = EMORL(cfg.model)
    for module in model.decoder.modules():
        if isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
            torch.nn.init.xavier_normal_(module.weight)
    channels, height, width = cfg.model.input_size
    geco = GECO(cfg.geco, num_pixels=channels * height * width)
    state = {"config": cfg.to_dict(), "model": model.state_dict(), "geco": geco.state_dict(), "step": step}
    return save_checkpoint(Path(cfg.training.output_dir) / "checkpoints", step, state, keep=1)


@pytest.fixture(params=DATASETS)
def tiny_run(request: pytest.FixtureRequest, tmp_path: Path) -> LoadedRun:
    """A loaded tiny random model for each of the three generated datasets."""
    root = request.getfixturevalue(f"{request.param}_root")
    cfg = tiny_config(request.param, root, tmp_path / "run")
    return load_for_eval(write_tiny_checkpoint(cfg))
