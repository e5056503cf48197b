"""Parameter count (docs/model.md#parameter-count) and initialisation (docs/model.md#initialisation)."""

import math

import torch

from emorl.config import GecoConfig, ModelConfig
from emorl.geco import GECO
from emorl.model import EMORL
from emorl.model.distributions import sigma

CLEVR6 = ModelConfig(K=7, z_size=64, decoder="iodine", likelihood="gmm", input_size=(3, 96, 96))


def test_clevr6_configuration_has_666502_parameters():
    """The spec's count includes the 2 GECO scalars; here GECO is its own module, so they are added."""
    model_parameters = sum(p.numel() for p in EMORL(CLEVR6).parameters())
    geco_scalars = sum(b.numel() for b in GECO(GecoConfig(), num_pixels=3 * 96 * 96).buffers())
    assert model_parameters == 666_500
    assert model_parameters + geco_scalars == 666_502


def test_initial_posterior_is_mu_zero_s_one():
    model = EMORL(CLEVR6)
    mu0, s0 = model.hvae.init_posterior.chunk(2, dim=-1)
    assert torch.equal(mu0, torch.zeros(1, 64)) and torch.equal(s0, torch.ones(1, 64))
    assert math.isclose(sigma(s0)[0, 0].item(), 1.1460, abs_tol=1e-4)


def test_xavier_layers_start_small_so_the_decoder_starts_grey_and_uniform():
    torch.manual_seed(0)
    model = EMORL(CLEVR6)
    means, log_masks = model.decode(torch.randn(1, 7, 64))
    torch.testing.assert_close(means, torch.full_like(means, 0.5), atol=0.02, rtol=0)
    torch.testing.assert_close(log_masks.exp(), torch.full_like(log_masks, 1 / 7), atol=0.01, rtol=0)
    decoder_weight = model.decoder.layers[0].weight
    fan_in, fan_out = decoder_weight[0].numel(), decoder_weight.shape[0] * decoder_weight[0, 0].numel()
    assert abs(decoder_weight.std().item() - 0.02 * math.sqrt(2 / (fan_in + fan_out))) < 2e-5
    assert torch.equal(decoder_weight.new_zeros(64), model.decoder.layers[0].bias)
