"""Training gradients equal those of the straightforward graph of docs/model.md#loss.

The model gathers each iteration's gradients as soon as its loss is known (so every decoder graph is walked
once and freed). The reference keeps one big graph and calls ``total_loss.backward()`` on it; the helper
below rebuilds that graph from the model's own parts, and both must give the same parameter gradients.
"""

import pytest
import torch

from emorl.config import GecoConfig
from emorl.geco import GECO
from emorl.model import EMORL
from emorl.model.distributions import Gaussian, kl_divergence
from emorl.model.emorl import loss_weights
from emorl.model.prior import stage1_kl
from tests.model.conftest import seeded_noise, toy_config, toy_images


def one_graph_total_loss(model: EMORL, images, steps, noise, geco=None, global_step=0):
    """The loss of docs/model.md#loss as the reference builds it: one graph, refinement gradients with
    retain_graph."""
    cfg = model.cfg
    targets = (images + 1) / 2
    stage1 = model.hvae(images, cfg.K, noise)
    params = stage1.posteriors or [stage1.initial]

    def iteration_loss(posterior, kl_of):
        means, log_masks = model.decode(posterior.rsample(noise))
        nll = model.negative_log_likelihood(targets, means, log_masks, cfg.log_scale)
        kl, prior = kl_of()
        return model._iteration_loss(nll, kl, geco, global_step, 1.0), prior

    def stage1_kl_of():
        if not stage1.posteriors:
            return torch.zeros(images.shape[0]), None
        return stage1_kl(cfg.prior, [Gaussian.from_params(*p) for p in params], model.prior, noise)

    weights = loss_weights(cfg.loss_weights, steps)
    loss, prior = iteration_loss(Gaussian.from_params(*params[-1]), stage1_kl_of)
    total = weights[0] * loss
    mu, s = params[-1]
    state = model.refinement.initial_state(mu)
    for step in range(1, steps + 1):
        grad_mu, grad_s = torch.autograd.grad(loss, (mu, s), retain_graph=True)
        delta_mu, delta_s, state = model.refinement(mu, s, grad_mu, grad_s, state)
        mu, s = mu + delta_mu, s + delta_s
        posterior = Gaussian.from_params(mu, s)
        loss, _ = iteration_loss(posterior, lambda p=posterior: (kl_divergence(p, prior).sum(-1), prior))
        total = total + weights[step] * loss
    return total


def _grads(model):
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize(
    ("overrides", "steps", "geco_active"),
    [
        ({}, 3, False),
        ({"stochastic_layers": 2}, 2, True),
        ({"stochastic_layers": 1, "likelihood": "gmm"}, 2, False),
        ({"stochastic_layers": 0}, 2, False),
        ({"prior": "bottom_up", "dual_gru": False}, 1, False),
        ({"prior": "reversed"}, 2, True),
        ({}, 0, False),
    ],
)
def test_gradients_match_the_single_graph_reference(overrides, steps, geco_active):
    cfg = toy_config(**overrides)
    torch.manual_seed(0)
    model = EMORL(cfg).double()
    images = toy_images(cfg).double()
    geco = GECO(GecoConfig(warm_start=0), 3 * 16 * 16).double() if geco_active else None
    if geco is not None:
        geco.C_ema.fill_(-10.0)
        geco.beta.fill_(1.3)

    out = model(images, refinement_steps=steps, noise=seeded_noise(4), geco=geco)
    out.total_loss.backward()
    ours = _grads(model)
    model.zero_grad()
    reference = one_graph_total_loss(model, images, steps, seeded_noise(4), geco)
    reference.backward()
    expected = _grads(model)

    torch.testing.assert_close(out.total_loss, reference.detach())
    assert ours.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(ours[name], expected[name], msg=name)
