"""The hierarchical prior network and the three stage-1 KL variants (docs/model.md#priors)."""

from __future__ import annotations

from torch import Tensor, nn

from emorl.model.distributions import Gaussian, Noise, kl_divergence
from emorl.model.init import XAVIER_GAIN, xavier_init_

PRIOR_HIDDEN = 128


class HierarchicalPrior(nn.Module):
    """p_θ(z^l | ẑ): ELU(Linear(D, 128)) → (loc, s) heads, shared by every layer and applied per slot."""

    def __init__(self, z_size: int, hidden: int = PRIOR_HIDDEN, init_gain: float = XAVIER_GAIN):
        super().__init__()
        self.z_linear = nn.Linear(z_size, hidden)
        self.z_mu = nn.Linear(hidden, z_size)
        self.z_softplus = nn.Linear(hidden, z_size)
        xavier_init_(self, gain=init_gain)

    def forward(self, z: Tensor) -> Gaussian:
        hidden = nn.functional.elu(self.z_linear(z))
        dtype = self.z_mu.weight.dtype  # full precision under autocast
        return Gaussian.from_params(self.z_mu(hidden).to(dtype), self.z_softplus(hidden).to(dtype))


def stage1_kl(
    variant: str, posteriors: list[Gaussian], prior: HierarchicalPrior | None, noise: Noise
) -> tuple[Tensor, Gaussian | None]:
    """The stage-1 KL [B] (summed over layers, slots and dims) and the prior the refinement KLs use.

    ``posteriors`` holds q(z¹)..q(z^L) (at least one). Each conditional prior is conditioned on a *fresh*
    sample of the neighbouring layer. The refinement prior is ``None`` (= N(0, I)) except for
    ``reversed_plusplus`` with L ≥ 2, where it is the very p_θ(z¹ | ẑ²) built here (same ẑ² sample, still in
    the graph).
    """
    layers = len(posteriors)
    if variant == "bottom_up":
        kl = kl_divergence(posteriors[0], None).sum(-1)
        for layer in range(1, layers):
            conditional = prior(posteriors[layer - 1].rsample(noise))
            kl = kl + kl_divergence(posteriors[layer], conditional).sum(-1)
        return kl, None
    kl = kl_divergence(posteriors[-1], None).sum(-1)
    conditional = None
    for layer in range(layers - 2, -1, -1):  # top-down: the one left at the end is p_θ(z¹ | ẑ²)
        conditional = prior(posteriors[layer + 1].rsample(noise))
        kl = kl + kl_divergence(posteriors[layer], conditional).sum(-1)
    return kl, conditional if variant == "reversed_plusplus" else None
