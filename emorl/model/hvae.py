"""Stage 1: the bottom-up HVAE posterior (docs/model.md#bottom-up-inference), with the DualGRU or the "w/out
DualGRU" ablation.

Each of the L stochastic layers is one Slot-Attention-style step whose query is the previous layer's
sample; the attention update Θ then moves the Gaussian parameters (μ, s) of every slot. Slots are kept as
[B, K, D] tensors throughout, so B and K are whatever the input and the caller ask for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from emorl.model.distributions import Gaussian, Noise
from emorl.model.dual_gru import DualGRU
from emorl.model.encoder import ENCODER_WIDTH, ImageEncoder
from emorl.model.init import XAVIER_GAIN, xavier_init_

ATTENTION_EPSILON = 1e-8


class SingleGRUUpdate(nn.Module):
    """Ablation "w/out DualGRU": Θ → Linear(D, 2D) → one GRU step whose hidden state is [μ; s]."""

    def __init__(self, size: int, init_gain: float = XAVIER_GAIN):
        super().__init__()
        self.project_update = nn.Linear(size, 2 * size)
        self.gru = nn.GRUCell(2 * size, 2 * size)  # PyTorch default init, as the reference's nn.GRU
        xavier_init_(self.project_update, gain=init_gain)

    def forward(self, update: Tensor, mu: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
        hidden = torch.cat([mu, s], dim=-1).flatten(0, -2)  # [N, 2D]
        new_hidden = self.gru(self.project_update(update).flatten(0, -2), hidden)
        mu_hat, s_hat = new_hidden.view(*mu.shape[:-1], -1).chunk(2, dim=-1)
        return mu_hat, s_hat


def residual_mlp(size: int) -> nn.Sequential:
    """Linear(D, 2D) → ReLU → Linear(2D, D), fed by a LayerNorm and added back to its input by the caller."""
    return nn.Sequential(nn.Linear(size, 2 * size), nn.ReLU(), nn.Linear(2 * size, size))


@dataclass
class Stage1:
    """What the bottom-up pass produces; ``posteriors[-1]`` is λ^(L,0), or ``initial`` when L = 0."""

    initial: tuple[Tensor, Tensor]  # (μ⁰, s⁰), each [B, K, D]
    posteriors: list[tuple[Tensor, Tensor]]  # (μ, s) of layers 1..L, each [B, K, D]
    samples: list[Tensor]  # the queries z⁰..z^(L-1), each [B, K, D] (none when L = 0)
    attention: list[Tensor]  # per layer, [B, K, 1, H, W] (detached)


class BottomUpInference(nn.Module):
    """Encoder + L attention/GRU layers, each producing a slot posterior q(z^ℓ) = N(μ, σ(s)²)."""

    def __init__(
        self, image_size: int, z_size: int, layers: int, dual_gru: bool, init_gain: float = XAVIER_GAIN
    ):
        super().__init__()
        self.z_size = z_size
        self.layers = layers
        self.init_posterior = nn.Parameter(
            torch.cat([torch.zeros(z_size), torch.ones(z_size)])[None]
        )  # [1, 2D]
        if layers == 0:  # refinement only: nothing reads the image in stage 1
            return
        self.encoder = ImageEncoder(image_size, init_gain=init_gain)
        self.to_q = nn.Linear(z_size, z_size, bias=False)
        self.to_k = nn.Linear(ENCODER_WIDTH, z_size, bias=False)
        self.to_v = nn.Linear(ENCODER_WIDTH, z_size, bias=False)
        self.norm_slots = nn.LayerNorm(z_size)
        self.update = DualGRU(z_size) if dual_gru else SingleGRUUpdate(z_size, init_gain)
        self.norm_mu_pre_ff = nn.LayerNorm(z_size)
        self.norm_softplus_pre_ff = nn.LayerNorm(z_size)
        self.mlp_mu = residual_mlp(z_size)
        self.mlp_softplus = residual_mlp(z_size)
        xavier_init_(self.to_q, self.to_k, self.to_v, self.mlp_mu, self.mlp_softplus, gain=init_gain)

    def forward(self, images: Tensor, num_slots: int, noise: Noise) -> Stage1:
        batch, _, height, width = images.shape
        mu0, s0 = self.init_posterior.chunk(2, dim=-1)
        mu = mu0.expand(batch, num_slots, self.z_size)  # [B, K, D]
        s = s0.expand(batch, num_slots, self.z_size)
        stage1 = Stage1(initial=(mu, s), posteriors=[], samples=[], attention=[])
        if self.layers == 0:  # the caller decodes its own draw from λ⁰
            return stage1
        z = Gaussian.from_params(mu, s).rsample(noise)  # z⁰: the symmetry-breaking draw, [B, K, D]
        stage1.samples.append(z)
        tokens = self.encoder(images)  # [B, HW, 64]
        keys = self.to_k(tokens)  # [B, HW, D]
        values = self.to_v(tokens)  # [B, HW, D]
        for layer in range(self.layers):
            query = self.to_q(self.norm_slots(z)) / math.sqrt(self.z_size)  # [B, K, D]
            attention = torch.softmax(query @ keys.transpose(1, 2), dim=1) + ATTENTION_EPSILON  # [B, K, HW]
            stage1.attention.append(attention.detach().view(batch, num_slots, 1, height, width))
            attention = attention / attention.sum(dim=-1, keepdim=True)
            update = attention @ values  # Θ, [B, K, D]
            mu_hat, s_hat = self.update(update, mu, s)
            dtype = self.init_posterior.dtype  # posteriors stay in the parameters' precision under autocast
            mu = (mu_hat + self.mlp_mu(self.norm_mu_pre_ff(mu_hat))).to(dtype)
            s = (s_hat + self.mlp_softplus(self.norm_softplus_pre_ff(s_hat))).to(dtype)
            stage1.posteriors.append((mu, s))
            if layer < self.layers - 1:  # the last layer's sample is drawn by the caller, which decodes it
                z = Gaussian.from_params(mu, s).rsample(noise)
                stage1.samples.append(z)
        return stage1
