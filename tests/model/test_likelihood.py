"""GMM and Gaussian image likelihoods (docs/model.md#likelihoods): Gaussian log-densities without the −½·ln
2π constant."""

import math

import torch
from torch.distributions import Normal

from emorl.model.likelihood import gaussian_nll, gmm_nll

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _inputs(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    targets = torch.rand(2, 3, 4, 5, generator=generator)
    means = torch.rand(2, 3, 3, 4, 5, generator=generator)
    log_masks = torch.log_softmax(torch.randn(2, 3, 1, 4, 5, generator=generator), dim=1)
    return targets, means, log_masks


def test_gmm_is_a_per_channel_mixture_sharing_the_pixel_masks():
    targets, means, log_masks = _inputs()
    log_scale = math.log(0.3)
    component = Normal(means, math.exp(log_scale)).log_prob(targets[:, None]) + HALF_LOG_2PI
    expected = -torch.logsumexp(log_masks + component, dim=1).sum(dim=(1, 2, 3))
    torch.testing.assert_close(gmm_nll(targets, means, log_masks, log_scale), expected)


def test_gaussian_scores_the_mask_weighted_mean_image():
    targets, means, log_masks = _inputs(1)
    log_scale = math.log(0.1)
    mixture = (log_masks.exp() * means).sum(dim=1)
    expected = -(Normal(mixture, 0.1).log_prob(targets) + HALF_LOG_2PI).sum(dim=(1, 2, 3))
    torch.testing.assert_close(gaussian_nll(targets, means, log_masks, log_scale), expected)


def test_perfect_reconstruction_reaches_the_floor_3hw_log_sigma():
    targets, _, log_masks = _inputs(2)
    means = targets[:, None].expand(-1, 3, -1, -1, -1)
    floor = torch.full((2,), 3 * 4 * 5 * math.log(0.3))
    torch.testing.assert_close(gaussian_nll(targets, means, log_masks, math.log(0.3)), floor)
    torch.testing.assert_close(gmm_nll(targets, means, log_masks, math.log(0.3)), floor)
