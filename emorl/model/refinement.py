"""Stage 2: the refinement network f_φ (docs/model.md#refinement-network): one step of iterative amortised
inference on λ."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from emorl.model.init import XAVIER_GAIN, xavier_init_

REFINEMENT_HIDDEN = 128


class RefinementNetwork(nn.Module):
    """[λ; LN(∂𝓛/∂μ); LN(∂𝓛/∂s)] → MLP → GRU → (δμ, δs); the LayerNorms are non-affine, λ enters raw."""

    def __init__(self, z_size: int, hidden: int = REFINEMENT_HIDDEN, init_gain: float = XAVIER_GAIN):
        super().__init__()
        self.z_size = z_size
        self.encoding = nn.Sequential(nn.Linear(4 * z_size, hidden), nn.ELU(), nn.Linear(hidden, z_size))
        self.recurrence = nn.GRUCell(z_size, z_size)  # PyTorch default init, as the reference's nn.GRU
        self.loc = nn.Linear(z_size, z_size)
        self.softplus = nn.Linear(z_size, z_size)  # a linear head: δs is added to the pre-softplus s
        xavier_init_(self.encoding, self.loc, self.softplus, gain=init_gain)

    def initial_state(self, mu: Tensor) -> Tensor:
        """h₀ = 0, [B·K, D]."""
        return mu.new_zeros(mu.shape[:-1].numel(), self.z_size)

    def forward(
        self, mu: Tensor, s: Tensor, grad_mu: Tensor, grad_s: Tensor, state: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(μ, s, ∂𝓛/∂μ, ∂𝓛/∂s) each [B, K, D], GRU state [B·K, D] → (δμ, δs, new state)."""
        normalised = [F.layer_norm(grad.detach(), (self.z_size,)) for grad in (grad_mu, grad_s)]
        encoded = self.encoding(torch.cat([mu, s, *normalised], dim=-1))  # [B, K, D]
        state = self.recurrence(encoded.flatten(0, 1), state)  # [B·K, D]
        output = state.view(mu.shape)
        dtype = self.loc.weight.dtype  # full precision under autocast
        return self.loc(output).to(dtype), self.softplus(output).to(dtype), state
