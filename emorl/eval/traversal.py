"""Latent traversals (docs/evaluation.md#traversals): sweep one latent of one slot and decode the composed
image.

The sweep is centred on the middle of each dimension's range, (min + max)/2, and spans the whole range —
the paper's "linear interpolation between the per-dimension min and max". The reference centres on
(max − min)/2 and shrinks the half-width to a square root (docs/reference-differences.md#traversal-range);
that is not reproduced.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

Decoder = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""A slot-wise decoder (``EMORL.decoder``): z [B,K,D] → (means [B,K,3,H,W], mask logits [B,K,1,H,W]),
every slot decoded on its own, so one slot can be re-decoded without the others."""


def compose(means: torch.Tensor, mask_logits: torch.Tensor) -> torch.Tensor:
    """The image Σ_k π_k y_k ``[B, 3, H, W]``, π = softmax over the K slots of the mask logits."""
    return (torch.softmax(mask_logits, dim=1) * means).sum(dim=1)


@torch.no_grad()
def sweep_slot(
    decode: Decoder,
    z: torch.Tensor,
    slot: int,
    dims: torch.Tensor,
    values: torch.Tensor,
    batch_size: int = 64,
) -> torch.Tensor:
    """Composed images ``[R, S, 3, H, W]`` as latent ``dims[r]`` of ``slot`` in ``z`` ``[K, D]`` takes the
    values ``values[r, s]``, every other latent and slot unchanged.

    Only the swept slot is re-decoded; the other K − 1 are decoded once.
    """
    slots, size = z.shape
    if not 0 <= slot < slots:
        raise ValueError(f"slot {slot} does not exist: the posterior has K={slots} slots (0..{slots - 1})")
    rows, steps = values.shape
    base_means, base_logits = decode(z[None])  # [1, K, 3, H, W], [1, K, 1, H, W]
    swept = z[slot].expand(rows, steps, size).clone()  # [R, S, D]
    swept[torch.arange(rows), :, dims] = values
    images = []
    for chunk in swept.reshape(rows * steps, 1, size).split(batch_size):
        slot_means, slot_logits = decode(chunk)  # [c, 1, ...]
        means = base_means.expand(len(chunk), *base_means.shape[1:]).clone()
        logits = base_logits.expand(len(chunk), *base_logits.shape[1:]).clone()
        means[:, slot], logits[:, slot] = slot_means[:, 0], slot_logits[:, 0]
        images.append(compose(means, logits))
    return torch.cat(images).view(rows, steps, *images[0].shape[1:])


def traversal_values(ranges: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` equally spaced values per dimension, centred at (min + max)/2 over [min, max], ``[D, S]``."""
    centre = (ranges[:, 0] + ranges[:, 1]) / 2
    half = (ranges[:, 1] - ranges[:, 0]) / 2
    return centre[:, None] + half[:, None] * np.linspace(-1.0, 1.0, steps)[None, :]


def traverse(
    decode: Decoder,
    z: torch.Tensor,
    slot: int,
    ranges: np.ndarray,
    steps: int = 8,
    dims: list[int] | None = None,
    batch_size: int = 64,
) -> torch.Tensor:
    """Composed images ``[R, S, 3, H, W]`` in [0, 1] as each latent of ``dims`` (default: all D, R = D) of
    ``slot`` in ``z`` ``[K, D]`` sweeps its range, the other latents and slots unchanged."""
    rows = torch.as_tensor(list(range(z.shape[1])) if dims is None else dims, dtype=torch.long)
    values = torch.from_numpy(traversal_values(ranges, steps)).to(z)[rows]  # [R, S]
    return sweep_slot(decode, z, slot, rows, values, batch_size).clamp(0, 1)


def tile(images: torch.Tensor | np.ndarray, padding: int = 2, pad_value: int = 0) -> np.ndarray:
    """Tile ``[R, C, 3, H, W]`` images in [0, 1] into one uint8 ``[R(H+p)+p, C(W+p)+p, 3]`` picture.

    The geometry of torchvision's ``make_grid``: ``padding`` pixels around every image.
    """
    array = np.asarray(images, dtype=np.float32)
    rows, cols, _, height, width = array.shape
    shape = (rows * (height + padding) + padding, cols * (width + padding) + padding, 3)
    grid = np.full(shape, pad_value, np.uint8)
    pixels = (array.transpose(0, 1, 3, 4, 2) * 255).round().clip(0, 255).astype(np.uint8)  # [R, C, H, W, 3]
    for r in range(rows):
        for c in range(cols):
            top, left = padding + r * (height + padding), padding + c * (width + padding)
            grid[top : top + height, left : left + width] = pixels[r, c]
    return grid
