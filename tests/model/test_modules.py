"""The building blocks behave as docs/model.md describes."""

import pytest
import torch
from torch import nn

from emorl.model.coordinates import coordinate_grid
from emorl.model.decoders import build_decoder
from emorl.model.distributions import Gaussian, kl_divergence
from emorl.model.dual_gru import DualGRU
from emorl.model.prior import HierarchicalPrior, stage1_kl
from tests.model.conftest import seeded_noise


def test_coordinate_grid_channels_are_the_reference_ramps():
    grid = coordinate_grid(3)
    ramp = torch.tensor([0.0, 0.5, 1.0])
    torch.testing.assert_close(grid[:, 0, 1], ramp)  # r grows down the rows
    torch.testing.assert_close(grid[:, 0, 0], 1 - ramp)
    torch.testing.assert_close(grid[0, :, 2], ramp)  # c grows along the columns
    torch.testing.assert_close(grid[0, :, 3], 1 - ramp)


def _naive_decode(decoder, z):
    """Tile z over the grid, add the positional map, run every layer (the reference's way)."""
    slots = z.flatten(0, 1)
    grid = decoder.grid_size
    tiled = slots[:, :, None, None].expand(-1, -1, grid, grid) + decoder.position().permute(2, 0, 1)
    output = decoder.layers(tiled.contiguous()).unflatten(0, z.shape[:2])
    return torch.sigmoid(output[:, :, :3]), output[:, :, 3:]


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_decoders_match_the_tiled_spatial_broadcast(memory_format):
    torch.manual_seed(0)
    for name, size in (("iodine", 12), ("small", 12), ("big", 96)):
        decoder = build_decoder(name, 8, size).double()  # float64: only the order of additions differs
        for parameter in decoder.parameters():  # larger weights than the 0.02-gain init make the check sharp
            nn.init.normal_(parameter, std=0.3)
        decoder.to(memory_format=memory_format)
        z = torch.randn(1, 2, 8, dtype=torch.float64, requires_grad=True)
        means, logits = decoder(z)
        assert means.shape == (1, 2, 3, size, size) and logits.shape == (1, 2, 1, size, size)
        expected_means, expected_logits = _naive_decode(decoder, z)
        torch.testing.assert_close(means, expected_means)
        torch.testing.assert_close(logits, expected_logits)
        inputs = [z, *decoder.parameters()]  # and the same gradients for z and every weight
        outputs = ((means, logits), (expected_means, expected_logits))
        loss, expected_loss = (m.sin().sum() + l.cos().sum() for m, l in outputs)
        for grad, expected_grad in zip(
            torch.autograd.grad(loss, inputs), torch.autograd.grad(expected_loss, inputs), strict=True
        ):
            torch.testing.assert_close(grad, expected_grad)


def test_dual_gru_is_two_independent_gru_cells():
    dual = DualGRU(4)
    cells = [nn.GRUCell(4, 4) for _ in range(2)]
    with torch.no_grad():
        for index, cell in enumerate(cells):
            cell.weight_ih.copy_(dual.weight_ih[index])
            cell.weight_hh.copy_(dual.weight_hh[index])
            cell.bias_ih.copy_(dual.bias_ih[index])
            cell.bias_hh.copy_(dual.bias_hh[index])
    update, mu, s = torch.randn(3, 2, 5, 4)
    mu_hat, s_hat = dual(update, mu, s)
    torch.testing.assert_close(mu_hat, cells[0](update.flatten(0, 1), mu.flatten(0, 1)).view(2, 5, 4))
    torch.testing.assert_close(s_hat, cells[1](update.flatten(0, 1), s.flatten(0, 1)).view(2, 5, 4))


def test_dual_gru_starts_from_standard_normal_weights():
    dual = DualGRU(64)
    weights = torch.cat([p.flatten() for p in dual.parameters()])
    assert abs(weights.mean()) < 0.02 and abs(weights.std() - 1) < 0.02


def _posteriors(layers: int) -> list[Gaussian]:
    generator = torch.Generator().manual_seed(layers)
    return [Gaussian.from_params(*torch.randn(2, 2, 3, 4, generator=generator)) for _ in range(layers)]


def test_reversed_prior_conditions_each_layer_on_a_fresh_sample_of_the_layer_above():
    torch.manual_seed(0)
    prior = HierarchicalPrior(4)
    q1, q2, q3 = _posteriors(3)
    for variant in ("reversed_plusplus", "reversed"):
        kl, refinement_prior = stage1_kl(variant, [q1, q2, q3], prior, seeded_noise(1))
        noise = seeded_noise(1)
        p2 = prior(q3.rsample(noise))
        p1 = prior(q2.rsample(noise))
        expected = kl_divergence(q3, None) + kl_divergence(q2, p2) + kl_divergence(q1, p1)
        torch.testing.assert_close(kl, expected.sum(-1))
        if variant == "reversed_plusplus":
            torch.testing.assert_close(refinement_prior.mean, p1.mean)  # p_θ(z¹ | ẑ²), reused
        else:
            assert refinement_prior is None  # N(0, I)


def test_bottom_up_prior_conditions_each_layer_on_the_layer_below():
    torch.manual_seed(0)
    prior = HierarchicalPrior(4)
    q1, q2 = _posteriors(2)
    kl, refinement_prior = stage1_kl("bottom_up", [q1, q2], prior, seeded_noise(1))
    p2 = prior(q1.rsample(seeded_noise(1)))
    torch.testing.assert_close(kl, (kl_divergence(q1, None) + kl_divergence(q2, p2)).sum(-1))
    assert refinement_prior is None


def test_reversed_prior_plusplus_with_one_layer_refines_against_the_standard_normal():
    (q1,) = _posteriors(1)
    kl, refinement_prior = stage1_kl("reversed_plusplus", [q1], None, seeded_noise(1))
    torch.testing.assert_close(kl, kl_divergence(q1, None).sum(-1))
    assert refinement_prior is None


def test_decoder_init_gain_scales_the_decoder_alone():
    from emorl.config import ModelConfig
    from emorl.model import EMORL

    torch.manual_seed(0)
    reference = dict(EMORL(ModelConfig(z_size=8, stochastic_layers=2, init_gain=1.0)).named_parameters())
    torch.manual_seed(0)
    config = ModelConfig(z_size=8, stochastic_layers=2, init_gain=1.0, decoder_init_gain=0.5)
    halved = dict(EMORL(config).named_parameters())
    for name, value in reference.items():
        scale = 0.5 if name.startswith("decoder.") and name.endswith("weight") else 1.0
        torch.testing.assert_close(halved[name], value * scale, rtol=1e-5, atol=0, msg=name)
    assert ModelConfig(decoder_init_gain=0).problems() == [
        "model.decoder_init_gain=0 must be a number > 0 (or null)"
    ]


def test_init_gain_scales_exactly_the_layers_the_reference_initialises_with_xavier():
    from emorl.config import ModelConfig
    from emorl.model import EMORL

    torch.manual_seed(0)
    reference = EMORL(ModelConfig(z_size=8, stochastic_layers=2))
    torch.manual_seed(0)
    scaled = EMORL(ModelConfig(z_size=8, stochastic_layers=2, init_gain=1.0))
    xavier = {
        "hvae.to_q.weight",
        "hvae.encoder.convs.0.weight",
        "decoder.layers.0.weight",
        "prior.z_mu.weight",
    }
    own_init = {"hvae.encoder.position.projection.weight", "refinement.recurrence.weight_ih"}
    values, rescaled = dict(reference.named_parameters()), dict(scaled.named_parameters())
    assert own_init <= set(values) and xavier <= set(values)
    for name in xavier:
        torch.testing.assert_close(rescaled[name], values[name] * 50, rtol=1e-5, atol=0)
    for name in own_init | {n for n in values if n.startswith("hvae.update.")}:
        torch.testing.assert_close(rescaled[name], values[name], rtol=0, atol=0)
