"""Segmentation scores (docs/evaluation.md#ari-mse-and-kl): FG-ARI, ARI with background, and mean best
overlap.

Every score is computed for a whole batch at once from one contingency table per image,
``n[b, t, k]`` = the number of pixels of true entity ``t`` assigned to slot ``k`` (an einsum of one-hot maps).
Predicted segments are hard: the argmax of the soft masks over the K slots.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.optimize import linear_sum_assignment

GT_CROP = 192  # CLEVR ground-truth masks are 192×192 crops (docs/data.md#preprocessing)


def true_label_map(masks: torch.Tensor) -> torch.Tensor:
    """Integer label map from per-entity 0/255 masks ``[B, E, 1, H, W]``: the largest entity index present.

    Entity 0 is the background, so a pixel no object covers gets label 0 (docs/evaluation.md#ari-mse-and-kl).
    """
    if masks.dim() != 5 or masks.shape[2] != 1:
        raise ValueError(f"true masks must be [B, E, 1, H, W], got shape {list(masks.shape)}")
    present = masks[:, :, 0] > 127.5  # [B, E, H, W]
    index = torch.arange(masks.shape[1], device=masks.device).view(1, -1, 1, 1)
    return (present * index).amax(dim=1)  # [B, H, W]


def predicted_label_map(soft_masks: torch.Tensor) -> torch.Tensor:
    """Hard assignment ``argmax_k π_k`` of soft masks ``[B, K, 1, H, W]``, giving ``[B, H, W]``."""
    if soft_masks.dim() != 5 or soft_masks.shape[2] != 1:
        raise ValueError(f"soft masks must be [B, K, 1, H, W], got shape {list(soft_masks.shape)}")
    return soft_masks[:, :, 0].argmax(dim=1)


def upsample_masks_to_crop(soft_masks: torch.Tensor, size: int = GT_CROP) -> torch.Tensor:
    """Resize soft masks ``[B, K, 1, h, w]`` to ``size``×``size`` as float PIL images with BICUBIC.

    This is how the reference brings CLEVR predictions to the 192×192 ground-truth crop
    (docs/evaluation.md#clevr-resolution);
    PIL's bicubic kernel (a = −0.5) differs from torch's (a = −0.75), so PIL is used for fidelity.
    """
    batch, slots, _, height, width = soft_masks.shape
    if (height, width) == (size, size):
        return soft_masks
    planes = soft_masks.detach().float().cpu().reshape(batch * slots, height, width).numpy()  # mode "F"
    bicubic = Image.Resampling.BICUBIC
    resized = np.stack(
        [np.asarray(Image.fromarray(plane).resize((size, size), bicubic)) for plane in planes]
    )  # [B*K, size, size]
    return torch.from_numpy(resized).view(batch, slots, 1, size, size).to(soft_masks.device)


def contingency(
    true_labels: torch.Tensor, pred_labels: torch.Tensor, num_true: int, num_pred: int
) -> torch.Tensor:
    """Per-image contingency tables ``[B, num_true, num_pred]`` of two ``[B, H, W]`` label maps."""
    if true_labels.shape != pred_labels.shape:
        raise ValueError(
            f"true and predicted label maps differ in shape: {list(true_labels.shape)} vs "
            f"{list(pred_labels.shape)}; upsample the predicted masks to the ground-truth resolution first"
        )
    true_onehot = F.one_hot(true_labels.flatten(1).long(), num_true).float()  # [B, N, T]
    pred_onehot = F.one_hot(pred_labels.flatten(1).long(), num_pred).float()  # [B, N, K]
    # counts stay exact in float32 (N < 2^24); pair counts n(n-1) need float64
    return torch.einsum("bnt,bnk->btk", true_onehot, pred_onehot).double()


def adjusted_rand_index(table: torch.Tensor) -> torch.Tensor:
    """ARI of each contingency table ``[B, T, K]`` with the reference's rules: NaN → 0, one cell → 1."""
    pairs = (table * (table - 1)).sum(dim=(1, 2))
    rows = table.sum(dim=2)  # [B, T] true cluster sizes
    cols = table.sum(dim=1)  # [B, K] predicted cluster sizes
    n = table.sum(dim=(1, 2))
    row_pairs = (rows * (rows - 1)).sum(dim=1)
    col_pairs = (cols * (cols - 1)).sum(dim=1)
    expected = row_pairs * col_pairs / (n * (n - 1))
    maximum = 0.5 * (row_pairs + col_pairs)
    ari = (pairs - expected) / (maximum - expected)
    ari = torch.nan_to_num(ari, nan=0.0, posinf=0.0, neginf=0.0)
    single_cell = (table > 0).sum(dim=(1, 2)) == 1
    return torch.where(single_cell, torch.ones_like(ari), ari)


def ari_scores(
    true_labels: torch.Tensor, pred_labels: torch.Tensor, num_true: int, num_pred: int
) -> dict[str, torch.Tensor]:
    """FG-ARI (background pixels removed) and ARI (background as one more cluster), each ``[B]``."""
    table = contingency(true_labels, pred_labels, num_true, num_pred)  # [B, T, K]
    return {"fg_ari": adjusted_rand_index(table[:, 1:]), "ari": adjusted_rand_index(table)}


def iou_matrix(table: torch.Tensor) -> torch.Tensor:
    """IoU of every true entity with every predicted segment, ``[B, T, K]``; 0 where the union is empty."""
    true_area = table.sum(dim=2, keepdim=True)
    pred_area = table.sum(dim=1, keepdim=True)
    union = true_area + pred_area - table
    return torch.where(union > 0, table / union.clamp(min=1), torch.zeros_like(table))


def overlap_scores(
    true_labels: torch.Tensor, pred_labels: torch.Tensor, num_true: int, num_pred: int
) -> dict[str, np.ndarray]:
    """Mean best overlap over the foreground objects present in each image, ``[B]`` each.

    ``mbo``: every object's best IoU with any predicted segment (segments may be reused), averaged.
    ``mbo_hungarian``: one-to-one Hungarian matching of objects to segments (scipy), unmatched objects
    scoring 0, averaged. Images without foreground objects get NaN (excluded from means by the caller).
    """
    table = contingency(true_labels, pred_labels, num_true, num_pred)
    iou = iou_matrix(table)[:, 1:].cpu().numpy()  # [B, T-1, K], background removed
    present = (table[:, 1:].sum(dim=2) > 0).cpu().numpy()  # [B, T-1]
    best = np.full(len(iou), np.nan)
    matched = np.full(len(iou), np.nan)
    for b, (image_iou, image_present) in enumerate(zip(iou, present, strict=True)):
        objects = image_iou[image_present]  # [n, K]
        if len(objects) == 0:
            continue
        best[b] = objects.max(axis=1).mean()
        rows, cols = linear_sum_assignment(objects, maximize=True)
        matched[b] = objects[rows, cols].sum() / len(objects)
    return {"mbo": best, "mbo_hungarian": matched}
