"""Pictures of one sample's inference (the paper's Figure 6) and of latent traversals, as PNG files.

``stage_arrays`` turns a forward pass with ``all_stages=True`` into the reference's ``rinfo`` arrays
(docs/evaluation.md#figures), channels-last and in [0, 1]; ``sample_figure`` draws them: one row per
inference stage (the L
stochastic layers of stage 1, then each refinement step), with the image, the reconstruction, the colourised
soft masks, the colourised hard attention and the K components (each composited on white).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from emorl.pictures import slot_colours


def stage_names(stochastic_layers: int, refinement_steps: int, stages: int) -> list[str]:
    """Row labels for the last ``stages`` of the L + I inference stages."""
    names = [f"layer {t + 1}/{stochastic_layers}" for t in range(stochastic_layers)]
    names += [f"refinement {i + 1}" for i in range(refinement_steps)]
    return names[-stages:] if stages <= len(names) else [f"stage {t}" for t in range(stages)]


def stage_arrays(
    images: torch.Tensor, output: Any, masks: torch.Tensor | None = None
) -> dict[str, np.ndarray]:
    """The ``rinfo`` arrays of a batch (docs/evaluation.md#figures), channels-last numpy.

    ``data/image`` [B,H,W,3]; ``data/true_mask`` [B,E,1,Hm,Wm] (if given); ``outputs/pred_mask`` and
    ``outputs/pred_mask_logits`` (log-probabilities) [B,T,K,H,W,1]; ``outputs/recons`` [B,T,H,W,3];
    ``outputs/components`` [B,T,K,H,W,3] (mask·RGB + (1 − mask) on white); ``outputs/attention``
    [B,T,K,H,W,1] (the last stochastic layer's attention repeated for refinement stages).
    """
    log_masks = torch.stack(output.log_masks, dim=1).cpu()  # [B, T, K, 1, H, W]
    means = torch.stack(output.means, dim=1).cpu()  # [B, T, K, 3, H, W]
    stages = log_masks.shape[1]
    attention = [output.attention[min(t, len(output.attention) - 1)] for t in range(stages)]
    soft = log_masks.exp()
    arrays = {
        "data/image": ((images.cpu() + 1) / 2).permute(0, 2, 3, 1).numpy(),
        "outputs/pred_mask": soft.permute(0, 1, 2, 4, 5, 3).numpy(),
        "outputs/pred_mask_logits": log_masks.permute(0, 1, 2, 4, 5, 3).numpy(),
        "outputs/recons": (soft * means).sum(2).permute(0, 1, 3, 4, 2).numpy(),
        "outputs/components": (soft * means + (1 - soft)).permute(0, 1, 2, 4, 5, 3).numpy(),
        "outputs/attention": torch.stack(attention, 1).cpu().permute(0, 1, 2, 4, 5, 3).numpy(),
    }
    if masks is not None:
        arrays["data/true_mask"] = masks.cpu().numpy()
    return arrays


def save_rinfo(arrays: dict[str, np.ndarray], index: int, path: Path) -> Path:
    """Save sample ``index`` of a batch of ``rinfo`` arrays as one ``.npz`` (keys as in
    docs/evaluation.md#figures)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **{key: value[index : index + 1] for key, value in arrays.items()})
    return path


def sample_figure(arrays: dict[str, np.ndarray], index: int, names: list[str], path: Path) -> Path:
    """Figure-6 style PNG of sample ``index``: per stage, image | recon | masks | attention | K components."""
    image = arrays["data/image"][index]
    soft = arrays["outputs/pred_mask"][index, ..., 0]  # [T, K, H, W]
    attention = arrays["outputs/attention"][index, ..., 0]  # [T, K, H, W]
    stages, slots = soft.shape[:2]
    colours = slot_colours(slots)
    columns = ["image", "reconstruction", "masks", "attention", *[f"slot {k}" for k in range(slots)]]
    figure = Figure(figsize=(1.4 * len(columns), 1.5 * stages + 0.3))
    axes = figure.subplots(stages, len(columns), squeeze=False)
    for t in range(stages):
        row = [
            image,
            arrays["outputs/recons"][index, t],
            np.einsum("khw,kc->hwc", soft[t], colours),
            colours[attention[t].argmax(axis=0)],
            *arrays["outputs/components"][index, t],
        ]
        for c, picture in enumerate(row):
            axis = axes[t, c]
            axis.imshow(np.clip(picture, 0, 1), interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if t == 0:
                axis.set_title(columns[c], fontsize=8)
                if c >= 4:
                    axis.title.set_color(colours[c - 4])
        axes[t, 0].set_ylabel(names[t], fontsize=8)
    figure.tight_layout(pad=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def traversal_figure(
    images: np.ndarray, dims: list[int], ranges: np.ndarray, title: str, path: Path, padding: int = 2
) -> Path:
    """PNG of a traversal grid ``[R, S, 3, H, W]``: one row per latent, labelled with its index and range."""
    from emorl.eval.traversal import tile

    grid = tile(images, padding=padding, pad_value=255)  # white gaps: dark images stay apart
    rows, steps, _, height, width = images.shape
    scale = max(1.0, 48 / height)
    figure = Figure(
        figsize=(steps * (width + padding) * scale / 100 + 1.6, rows * (height + padding) * scale / 100 + 0.5)
    )
    axis = figure.subplots()
    axis.imshow(grid, interpolation="nearest")
    axis.set_yticks([padding + r * (height + padding) + height / 2 for r in range(rows)])
    axis.set_yticklabels([f"z{j} [{ranges[j, 0]:.2f}, {ranges[j, 1]:.2f}]" for j in dims], fontsize=7)
    axis.set_xticks([])
    axis.set_title(title, fontsize=8)
    figure.tight_layout(pad=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path
