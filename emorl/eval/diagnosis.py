"""Is a model segmenting, or sitting on the mean-image plateau? A diagnosis from measurable quantities.

A collapsed EMORL reconstructs the dataset-mean image: either its masks stay near uniform (every slot
paints every pixel a little) or one slot owns the whole foreground, its KL is a few nats and its FG-ARI is
about 0. A segmenting one gives each object its own slot. Per test image we measure

* ``fg_slots``: how many slots own at least ``eval.diagnosis_fg_share`` of the image's ground-truth
  foreground pixels (hard argmax assignment); one slot owning the foreground gives 1;
* ``mask_entropy``: the per-pixel entropy of the soft masks over the K slots divided by ln K, averaged
  over pixels; uniform masks give 1, one-hot masks 0;

and, from their means and the mean FG-ARI, name the run (thresholds in ``eval.diagnosis_*``):

* ``collapsed``: FG-ARI < ``diagnosis_max_fg_ari`` and (fg_slots ≤ ``diagnosis_max_fg_slots`` or
  mask_entropy ≥ ``diagnosis_min_mask_entropy``): the plateau in either of its forms;
* ``segmenting``: FG-ARI ≥ ``diagnosis_min_segmenting_fg_ari`` and fg_slots > ``diagnosis_max_fg_slots``;
* ``partial``: anything in between (e.g. objects split but merged across images, or still learning).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from emorl.config import EvalConfig

DIAGNOSES = ("segmenting", "collapsed", "partial")


def foreground_slots(
    true_labels: torch.Tensor, pred_labels: torch.Tensor, num_slots: int, share: float
) -> torch.Tensor:
    """Per image ``[B]``: slots owning ≥ ``share`` of the foreground pixels (NaN without foreground).

    ``true_labels`` and ``pred_labels`` are ``[B, H, W]`` label maps at the same resolution (0 = background).
    """
    foreground = (true_labels > 0).flatten(1).float()  # [B, N]
    assigned = F.one_hot(pred_labels.flatten(1).long(), num_slots).float()  # [B, N, K]
    owned = torch.einsum("bn,bnk->bk", foreground, assigned)  # [B, K] foreground pixels per slot
    total = foreground.sum(dim=1, keepdim=True)  # [B, 1]
    used = ((owned > 0) & (owned >= share * total)).sum(dim=1).float()
    return torch.where(total[:, 0] > 0, used, torch.full_like(used, math.nan))


def mask_entropy(soft_masks: torch.Tensor) -> torch.Tensor:
    """Per image ``[B]``: the masks' entropy over slots in units of ln K, mean over pixels (0 if K = 1)."""
    slots = soft_masks.shape[1]
    if slots == 1:
        return soft_masks.new_zeros(soft_masks.shape[0])
    probabilities = soft_masks[:, :, 0].clamp_min(1e-12)  # [B, K, H, W]
    entropy = -(probabilities * probabilities.log()).sum(dim=1)  # [B, H, W]
    return entropy.flatten(1).mean(dim=1) / math.log(slots)


@dataclass(frozen=True)
class Diagnosis:
    """A run's label (one of ``DIAGNOSES``) and the measured values that decided it."""

    label: str
    reason: str


def diagnose(fg_ari: float, fg_slots: float, entropy: float, cfg: EvalConfig) -> Diagnosis:
    """Name the run from its mean FG-ARI, foreground slots and mask entropy (thresholds in ``cfg``)."""
    measured = f"FG-ARI {fg_ari:.3f}, foreground slots {fg_slots:.2f}, mask entropy {entropy:.2f}"
    if fg_ari < cfg.diagnosis_max_fg_ari:
        if fg_slots <= cfg.diagnosis_max_fg_slots:
            return Diagnosis("collapsed", f"{measured}: one slot owns the foreground")
        if entropy >= cfg.diagnosis_min_mask_entropy:
            return Diagnosis("collapsed", f"{measured}: the masks are near uniform")
    if fg_ari >= cfg.diagnosis_min_segmenting_fg_ari and fg_slots > cfg.diagnosis_max_fg_slots:
        return Diagnosis("segmenting", f"{measured}: objects get slots of their own")
    return Diagnosis("partial", f"{measured}: neither collapsed nor segmenting")


def diagnose_metrics(metrics: Mapping[str, Mapping[str, Any]], cfg: EvalConfig) -> Diagnosis | None:
    """The diagnosis of an evaluation's metric summaries, or None when it did not score segmentation."""
    needed = ("fg_ari", "fg_slots", "mask_entropy")
    means = [metrics.get(name, {}).get("mean") for name in needed]
    if any(mean is None for mean in means):
        return None
    return diagnose(*means, cfg)
