"""The fixed 4-channel positional ramp and its learned projection (docs/model.md#positional-grid).

Unlike the reference, the grid is not repeated over the batch: it is broadcast, so the batch size and
the number of slots stay runtime properties.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def coordinate_grid(size: int) -> Tensor:
    """[size, size, 4] channels-last map with channels [1 - r, r, c, 1 - c], r and c running over [0, 1]."""
    ramp = torch.linspace(0.0, 1.0, size)
    rows, cols = torch.meshgrid(ramp, ramp, indexing="ij")  # [S, S] each
    return torch.stack([1.0 - rows, rows, cols, 1.0 - cols], dim=-1)


class PositionalEmbedding(nn.Module):
    """Linear(4 → channels) applied to the coordinate grid; returns a [size, size, channels] map to add."""

    def __init__(self, size: int, channels: int):
        super().__init__()
        self.register_buffer("grid", coordinate_grid(size), persistent=False)
        self.projection = nn.Linear(4, channels)

    def forward(self) -> Tensor:
        return self.projection(self.grid)  # [S, S, C]
