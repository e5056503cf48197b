"""DualGRU (docs/model.md#dualgru): two independent GRU cells, one updating μ and one updating s, run as one
batched op.

Both cells read the same input Θ (the attention update); cell 1's hidden state is μ and cell 2's is s. The
reference stores them as block-diagonal weights; here they are a stacked [2, ...] pair, which is the same
computation (and the same 12·D² + 12·D parameters) done with one linear and one batched matmul.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class DualGRU(nn.Module):
    """Two GRU cells over (μ, s); every weight and bias is drawn from N(0, 1), as in the reference."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size
        # gate rows in the order reset, update, candidate; leading dim = cell (μ, s)
        self.weight_ih = nn.Parameter(torch.randn(2, 3 * size, size))
        self.weight_hh = nn.Parameter(torch.randn(2, 3 * size, size))
        self.bias_ih = nn.Parameter(torch.randn(2, 3 * size))
        self.bias_hh = nn.Parameter(torch.randn(2, 3 * size))

    def forward(self, update: Tensor, mu: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
        """One step: (Θ, μ, s) each [..., D] → (μ̂, ŝ) each [..., D]."""
        shape = mu.shape
        hidden = torch.stack([mu.reshape(-1, self.size), s.reshape(-1, self.size)])  # [2, N, D]
        gates_input = nn.functional.linear(update.reshape(-1, self.size), self.weight_ih.flatten(0, 1))
        gates_input = (
            gates_input.view(-1, 2, 3 * self.size).transpose(0, 1) + self.bias_ih[:, None]
        )  # [2, N, 3D]
        gates_hidden = torch.baddbmm(
            self.bias_hh[:, None], hidden, self.weight_hh.transpose(1, 2)
        )  # [2, N, 3D]
        input_r, input_z, input_n = gates_input.chunk(3, dim=-1)
        hidden_r, hidden_z, hidden_n = gates_hidden.chunk(3, dim=-1)
        reset = torch.sigmoid(input_r + hidden_r)
        keep = torch.sigmoid(input_z + hidden_z)
        candidate = torch.tanh(input_n + reset * hidden_n)
        new_hidden = candidate + keep * (hidden - candidate)  # (1 - z)·n + z·h, [2, N, D]
        return new_hidden[0].view(shape), new_hidden[1].view(shape)
