"""EMORL forward pass: output contract of interfaces.md at toy size."""

import torch

from emorl.config import ModelConfig
from emorl.model import EMORL, EMORLOutput


def toy_config(**overrides) -> ModelConfig:
    values = {"K": 3, "z_size": 8, "decoder": "small", "input_size": (3, 16, 16)} | overrides
    return ModelConfig(**values)


def test_forward_returns_the_documented_shapes():
    torch.manual_seed(0)
    model = EMORL(toy_config())
    out = model(torch.rand(2, 3, 16, 16) * 2 - 1, refinement_steps=2)
    assert isinstance(out, EMORLOutput)
    assert out.total_loss.shape == out.nll.shape == out.kl.shape == ()
    assert out.nll_per_image.shape == out.kl_per_image.shape == out.kl_stage1_per_image.shape == (2,)
    assert out.deltas.shape == (2,)
    assert len(out.means) == len(out.log_masks) == 3
    assert out.means[-1].shape == (2, 3, 3, 16, 16)
    assert out.log_masks[-1].shape == (2, 3, 1, 16, 16)
    assert len(out.attention) == 3 and out.attention[0].shape == (2, 3, 1, 16, 16)
    assert out.posterior_mu.shape == out.posterior_s.shape == (2, 3, 8)
    assert out.reconstruction.shape == (2, 3, 16, 16)
