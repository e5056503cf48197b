"""σ(s) and the analytic KL (docs/model.md#gaussian-parameterisation)."""

import math

import torch
from torch.distributions import Normal
from torch.distributions import kl_divergence as torch_kl

from emorl.model.distributions import Gaussian, kl_divergence, sigma


def test_sigma_is_the_softplus_parameterisation_with_a_floor():
    s = torch.tensor([-1e4, -50.0, 0.0, 1.0, 30.0])
    expected = torch.sqrt(torch.log1p(torch.exp(s.double())) + 1e-5).float()
    torch.testing.assert_close(sigma(s), expected)
    assert sigma(torch.tensor(-1e4)) >= math.sqrt(1e-5)


def test_sigma_clamps_s_at_80_before_the_softplus():
    huge = torch.tensor([80.0, 1e4, float("1e30")])
    assert torch.isfinite(sigma(huge)).all()
    torch.testing.assert_close(sigma(huge), sigma(torch.tensor(80.0)).expand(3))


def test_kl_matches_torch_distributions_summed_over_dims():
    generator = torch.Generator().manual_seed(0)
    mu_q, s_q, mu_p, s_p = torch.randn(4, 5, 6, generator=generator)
    q, p = Gaussian.from_params(mu_q, s_q), Gaussian.from_params(mu_p, s_p)
    expected = torch_kl(Normal(mu_q, sigma(s_q)), Normal(mu_p, sigma(s_p))).sum(-1)
    torch.testing.assert_close(kl_divergence(q, p), expected)
    standard = torch_kl(Normal(mu_q, sigma(s_q)), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(kl_divergence(q, None), standard)


def test_kl_is_zero_for_identical_gaussians_and_positive_otherwise():
    mu, s = torch.randn(3, 4), torch.randn(3, 4)
    q = Gaussian.from_params(mu, s)
    torch.testing.assert_close(kl_divergence(q, q), torch.zeros(3))
    assert (kl_divergence(q, Gaussian.from_params(mu + 1, s)) > 0).all()


def test_rsample_uses_the_given_noise():
    q = Gaussian.from_params(torch.zeros(2), torch.zeros(2))
    draw = q.rsample(lambda like: torch.ones_like(like))
    torch.testing.assert_close(draw, sigma(torch.zeros(2)))
