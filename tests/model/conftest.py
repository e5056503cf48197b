"""Toy-size helpers shared by the model tests."""

from collections.abc import Callable

import pytest
import torch

from emorl.config import ModelConfig


def toy_config(**overrides) -> ModelConfig:
    """K=3, D=8, 16×16 images (96×96 for the ``big`` decoder), reversed prior++ and L=3 unless overridden."""
    values = {"K": 3, "z_size": 8, "decoder": "small", "input_size": (3, 16, 16)} | overrides
    if values["decoder"] == "big":
        values["input_size"] = (3, 96, 96)
    return ModelConfig(**values)


def toy_images(cfg: ModelConfig, batch: int = 2, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, *cfg.input_size, generator=generator) * 2 - 1


def seeded_noise(
    seed: int, permutation: torch.Tensor | None = None
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A ``noise`` callable drawing from its own generator; ``permutation`` reorders every draw over slots."""
    generator = torch.Generator().manual_seed(seed)

    def noise(like: torch.Tensor) -> torch.Tensor:
        draw = torch.randn(like.shape, generator=generator, dtype=like.dtype)
        return draw if permutation is None else draw[:, permutation]

    return noise


@pytest.fixture
def tiny() -> ModelConfig:
    return toy_config()
