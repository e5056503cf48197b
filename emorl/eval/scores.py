"""The ``ari_mse_kl`` evaluation (docs/evaluation.md#ari-mse-and-kl): segmentation, reconstruction and KL on
the first N test images.

Per image: FG-ARI and ARI (hard masks against the ground-truth label map; for CLEVR the soft masks are first
resized to the 192×192 ground-truth crop), mean best overlap, MSE at model resolution, the KL of the last
refinement step (what the reference reports as "KL") and the full hierarchical stage-1 KL (``elbo_kl``),
and the collapse check's two measurements (``fg_slots``, ``mask_entropy``; see ``emorl.eval.diagnosis``).
"""

from __future__ import annotations

import numpy as np

from emorl.config import ExperimentConfig
from emorl.eval.diagnosis import foreground_slots, mask_entropy
from emorl.eval.inference import infer, model_device, test_batches
from emorl.eval.segmentation import (
    ari_scores,
    overlap_scores,
    predicted_label_map,
    true_label_map,
    upsample_masks_to_crop,
)
from emorl.train.checkpoint import LoadedRun

PER_IMAGE_METRICS = (
    "fg_ari",
    "ari",
    "mbo",
    "mbo_hungarian",
    "mse",
    "kl",
    "elbo_kl",
    "fg_slots",
    "mask_entropy",
)


def score_images(loaded: LoadedRun, cfg: ExperimentConfig, progress: bool = True) -> dict[str, np.ndarray]:
    """Per-image values of every metric in ``PER_IMAGE_METRICS`` over the first ``eval.num_images`` images."""
    device = model_device(loaded)
    columns: dict[str, list[np.ndarray]] = {name: [] for name in PER_IMAGE_METRICS}
    batches = test_batches(
        cfg, cfg.eval.num_images, device, masks=True, progress=progress, description="ari_mse_kl"
    )
    for batch in batches:
        output = infer(loaded, cfg, batch["imgs"])
        soft_masks = output.log_masks[-1].exp()  # [B, K, 1, H, W]
        columns["mask_entropy"].append(mask_entropy(soft_masks).cpu().numpy())
        true_labels = true_label_map(batch["masks"])  # [B, Hm, Wm]
        if true_labels.shape[-2:] != soft_masks.shape[-2:]:
            soft_masks = upsample_masks_to_crop(soft_masks, size=true_labels.shape[-1])
        pred_labels = predicted_label_map(soft_masks)
        entities, slots = batch["masks"].shape[1], soft_masks.shape[1]
        for name, values in ari_scores(true_labels, pred_labels, entities, slots).items():
            columns[name].append(values.cpu().numpy())
        for name, values in overlap_scores(true_labels, pred_labels, entities, slots).items():
            columns[name].append(values)
        share = cfg.eval.diagnosis_fg_share
        columns["fg_slots"].append(foreground_slots(true_labels, pred_labels, slots, share).cpu().numpy())
        target = (batch["imgs"] + 1) / 2  # x₀₁, [B, 3, H, W]
        columns["mse"].append((target - output.reconstruction).square().flatten(1).mean(1).cpu().numpy())
        columns["kl"].append(output.kl_per_image.cpu().numpy())
        columns["elbo_kl"].append(output.kl_stage1_per_image.cpu().numpy())
    if not columns["mse"]:
        raise ValueError(f"the {cfg.data.name} test split under {cfg.data.root} holds no images to evaluate")
    return {name: np.concatenate(values).astype(np.float64) for name, values in columns.items()}
