"""Diagonal Gaussians in the reference's parameterisation (docs/model.md#gaussian-parameterisation).

A slot's posterior is stored as (μ, s) where s is a *pre-softplus* parameter: σ(s) = sqrt(softplus(min(s, 80))
+ 1e-5). Sampling is always reparameterised; the standard-normal noise comes from a ``Noise`` callable so that
tests (and figures) can inject their own draws.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

MIN_VARIANCE = 1e-5
S_CLAMP = 80.0

Noise = Callable[[Tensor], Tensor]
"""Returns standard-normal noise with the shape, dtype and device of its argument (default ``randn_like``)."""


def variance(s: Tensor) -> Tensor:
    """σ(s)² = softplus(min(s, 80)) + 1e-5: never below 1e-5, no overflow for large s."""
    return F.softplus(s.clamp(max=S_CLAMP)) + MIN_VARIANCE


def sigma(s: Tensor) -> Tensor:
    """σ(s) = sqrt(softplus(min(s, 80)) + 1e-5), the standard deviation encoded by s
    (docs/model.md#gaussian-parameterisation)."""
    return variance(s).sqrt()


@dataclass
class Gaussian:
    """N(mean, var) with independent dimensions; log-densities and KLs are summed over the last dim."""

    mean: Tensor
    var: Tensor

    @classmethod
    def from_params(cls, mu: Tensor, s: Tensor) -> Gaussian:
        """The posterior / learned-prior form: N(μ, σ(s)²)."""
        return cls(mu, variance(s))

    def rsample(self, noise: Noise = torch.randn_like) -> Tensor:
        """Reparameterised draw μ + σ·ε (gradients flow into μ and s)."""
        return self.mean + self.var.sqrt() * noise(self.mean)


def kl_divergence(q: Gaussian, p: Gaussian | None) -> Tensor:
    """Analytic KL(q ‖ p) summed over the last dim; ``p=None`` is the standard normal N(0, I)."""
    if p is None:
        return 0.5 * (q.var + q.mean.square() - q.var.log() - 1.0).sum(-1)
    return 0.5 * (p.var.log() - q.var.log() + (q.var + (q.mean - p.mean).square()) / p.var - 1.0).sum(-1)
