"""Pictures a person can read: many examples in one grid, upscaled nearest-neighbour, rows labelled.

``example_grid`` draws one column per example and, from top to bottom, the input, the reconstruction, the
segmentation (argmax over slots, one colour per slot), the ground-truth segmentation when known, and each
slot's component × mask (its RGB means weighted by its mask, on black). A 35-px Tetrominoes image becomes a
105-px cell, so objects, masks and mistakes can be seen at a glance.
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

MIN_CELL_SIDE = 96  # upscale each image by an integer factor to at least this many pixels
GAP = 2  # pixels between cells
LABEL_WIDTH = 72  # the left column holding the row names
BACKGROUND = 32  # grey of the gaps and the label column
TEXT = (230, 230, 230)


def slot_colours(slots: int) -> np.ndarray:
    """One distinct RGB colour in [0, 1] per slot, ``[K, 3]`` (tab10, or tab20 beyond 10 slots)."""
    palette = matplotlib.colormaps["tab10" if slots <= 10 else "tab20"]
    return np.array([palette(k % palette.N)[:3] for k in range(slots)])


def _colour_labels(labels: torch.Tensor, colours: np.ndarray) -> torch.Tensor:
    """Label maps ``[N, H, W]`` → RGB ``[N, 3, H, W]`` in [0, 1], label i painted ``colours[i]``."""
    palette = torch.as_tensor(colours, dtype=torch.float32)  # [C, 3]
    return palette[labels.long()].permute(0, 3, 1, 2)


def _ground_truth_rgb(true_labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Ground-truth label maps (0 = background, black) at the model's resolution, as RGB ``[N, 3, H, W]``."""
    labels = F.interpolate(true_labels[:, None].float(), size=size, mode="nearest")[:, 0]
    entities = int(labels.max().item()) + 1
    colours = np.concatenate([np.zeros((1, 3)), slot_colours(max(entities - 1, 1))[::-1]])
    return _colour_labels(labels, colours)


def example_rows(
    images: torch.Tensor,
    means: torch.Tensor,
    soft_masks: torch.Tensor,
    true_labels: torch.Tensor | None = None,
) -> list[tuple[str, torch.Tensor]]:
    """The grid's rows as (name, RGB ``[N, 3, H, W]`` in [0, 1]) pairs.

    ``images`` ``[N, 3, H, W]`` in [−1, 1]; ``means`` ``[N, K, 3, H, W]`` in [0, 1]; ``soft_masks``
    ``[N, K, 1, H, W]``; ``true_labels`` ``[N, Hm, Wm]`` integer label maps (any resolution).
    """
    images, means, soft_masks = (t.detach().float().cpu() for t in (images, means, soft_masks))
    slots = soft_masks.shape[1]
    rows = [
        ("input", (images + 1) / 2),
        ("reconstruction", (soft_masks * means).sum(dim=1)),
        ("segmentation", _colour_labels(soft_masks[:, :, 0].argmax(dim=1), slot_colours(slots))),
    ]
    if true_labels is not None:
        rows.append(("ground truth", _ground_truth_rgb(true_labels.cpu(), tuple(images.shape[-2:]))))
    rows += [(f"slot {k + 1}", soft_masks[:, k] * means[:, k]) for k in range(slots)]
    return rows


def example_grid(
    images: torch.Tensor,
    means: torch.Tensor,
    soft_masks: torch.Tensor,
    true_labels: torch.Tensor | None = None,
    count: int = 8,
    min_side: int = MIN_CELL_SIDE,
) -> np.ndarray:
    """The first ``count`` examples as one labelled ``[H', W', 3]`` uint8 picture (see ``example_rows``)."""
    rows = example_rows(images[:count], means[:count], soft_masks[:count], _first(true_labels, count))
    columns, _, height, width = rows[0][1].shape
    scale = max(1, math.ceil(min_side / max(height, width)))
    cell_h, cell_w = height * scale, width * scale
    picture = np.full(
        (GAP + len(rows) * (cell_h + GAP), LABEL_WIDTH + GAP + columns * (cell_w + GAP), 3),
        BACKGROUND,
        dtype=np.uint8,
    )
    for r, (_, row) in enumerate(rows):
        upscaled = row.clamp(0, 1).repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
        cells = (upscaled.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)  # [N, h, w, 3]
        top = GAP + r * (cell_h + GAP)
        for c, cell in enumerate(cells):
            left = LABEL_WIDTH + GAP + c * (cell_w + GAP)
            picture[top : top + cell_h, left : left + cell_w] = cell
    canvas = Image.fromarray(picture)
    draw = ImageDraw.Draw(canvas)
    for r, (name, _) in enumerate(rows):
        draw.text((4, GAP + r * (cell_h + GAP) + cell_h // 2 - 5), name, fill=TEXT)
    return np.asarray(canvas)


def _first(labels: torch.Tensor | None, count: int) -> torch.Tensor | None:
    return None if labels is None else labels[:count]
