"""The four evaluation types and ``evaluate``, which runs one and reports it.

``ari_mse_kl``      segmentation, reconstruction and KL scores per test image
                    (docs/evaluation.md#ari-mse-and-kl)
``disentanglement`` latent ranges, activeness, slot matching, DCI, a traversal grid
                    (docs/evaluation.md#disentanglement)
``gifs``            traversal grids and GIFs of the most active latents for every slot
                    (docs/evaluation.md#gifs)
``figures``         a Figure-6 style PNG and the ``rinfo`` arrays per test image (docs/evaluation.md#figures)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from emorl.config import ExperimentConfig
from emorl.data.layout import dataset_spec
from emorl.eval.diagnosis import diagnose_metrics
from emorl.eval.disentanglement import (
    DCI_METRICS,
    activeness,
    dci,
    dci_factors,
    dci_problem,
    latent_ranges,
    matching_iou,
)
from emorl.eval.figures import sample_figure, save_rinfo, stage_arrays, stage_names, traversal_figure
from emorl.eval.gifs import traversal_frames, write_gif
from emorl.eval.inference import infer, model_device, posterior_samples, test_batches
from emorl.eval.results import log_results, single_value, summarise, write_results
from emorl.eval.scores import score_images
from emorl.eval.segmentation import predicted_label_map, true_label_map, upsample_masks_to_crop
from emorl.eval.traversal import traverse
from emorl.logging import Logger
from emorl.pictures import example_grid
from emorl.train.checkpoint import LoadedRun

EVAL_TYPES = ("ari_mse_kl", "disentanglement", "gifs", "figures")
DCI_ESTIMATORS = 100  # scikit-learn's default, as in disentanglement_lib
GIF_FPS = 4.0
EXAMPLES = 8  # test images in ``examples.png``
EXAMPLES_FILE = "examples.png"

Metrics = dict[str, dict[str, Any]]
PerImage = dict[str, np.ndarray] | None


def evaluate(
    loaded: LoadedRun,
    eval_type: str,
    cfg: ExperimentConfig,
    out_dir: str | Path,
    logger: Logger | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run ``eval_type`` on the test split of ``cfg.data``; write ``out_dir/results.json`` and return it.

    With a logger, the metric means go out as ``eval/<metric>`` at the checkpoint's step and ``out_dir`` as
    artifacts under ``eval/<eval_type>``; where segmentation was scored, the collapse check's verdict
    (``emorl.eval.diagnosis``) goes into results.json and the run's ``diagnosis`` tag.
    """
    if eval_type not in RUNNERS:
        raise ValueError(f"unknown eval type {eval_type!r} (known: {', '.join(EVAL_TYPES)})")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.eval.seed)
    metrics, per_image = RUNNERS[eval_type](loaded, cfg, out_dir, progress)
    diagnosis = diagnose_metrics(metrics, cfg.eval)
    results = write_results(out_dir, eval_type, loaded.step, metrics, per_image, diagnosis)
    log_results(logger, results, out_dir)
    return results


def run_ari_mse_kl(
    loaded: LoadedRun, cfg: ExperimentConfig, out_dir: Path, progress: bool
) -> tuple[Metrics, PerImage]:
    """FG-ARI, ARI, mBO, MSE, KL and ELBO KL per image over the first ``eval.num_images`` test images,
    and ``examples.png``: the first test images, their reconstructions, segmentations and slots."""
    values = score_images(loaded, cfg, progress)
    Image.fromarray(examples_picture(loaded, cfg)).save(out_dir / EXAMPLES_FILE)
    return {name: summarise(column) for name, column in values.items()}, values


def examples_picture(loaded: LoadedRun, cfg: ExperimentConfig, count: int = EXAMPLES) -> np.ndarray:
    """``emorl.pictures.example_grid`` of the first ``count`` test images, with their true segmentation."""
    columns: dict[str, list[torch.Tensor]] = {"imgs": [], "means": [], "masks": [], "labels": []}
    count = min(count, cfg.eval.num_images)
    for batch in test_batches(cfg, count, model_device(loaded), masks=True, progress=False):
        output = infer(loaded, cfg, batch["imgs"])
        columns["imgs"].append(batch["imgs"])
        columns["means"].append(output.means[-1])
        columns["masks"].append(output.log_masks[-1].exp())
        columns["labels"].append(true_label_map(batch["masks"]))
    images, means, masks, labels = (torch.cat(columns[key]) for key in ("imgs", "means", "masks", "labels"))
    return example_grid(images, means, masks, labels, count=count)


def _activeness(
    loaded: LoadedRun, cfg: ExperimentConfig, out_dir: Path, progress: bool
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Posterior samples, latent ranges and activeness over the first ``eval.activeness_images`` images.

    ``z_range.npy`` ([D, 2], min and max) and ``activeness.npy`` ([N, D]) are written fresh each time.
    """
    z = posterior_samples(loaded, cfg, cfg.eval.activeness_images, progress)  # [N, K, D]
    ranges = latent_ranges(z)
    np.save(out_dir / "z_range.npy", ranges)
    slots = torch.from_numpy(np.random.default_rng(cfg.eval.seed).integers(0, z.shape[1], len(z)))
    decode = loaded.model.decoder
    scores = activeness(decode, z, slots, ranges, batch_size=cfg.eval.batch_size, progress=progress)
    np.save(out_dir / "activeness.npy", scores)
    return z, ranges, scores


def _matched_codes(
    loaded: LoadedRun, cfg: ExperimentConfig, progress: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior means of the slots matched to ground-truth objects, their factors, and objects per image."""
    device = model_device(loaded)
    codes, factors, counts = [], [], []
    batches = test_batches(
        cfg, cfg.eval.num_images, device, masks=True, factors=True, progress=progress, description="dci"
    )
    for batch in batches:
        output = infer(loaded, cfg, batch["imgs"])
        mu = output.posterior_mu  # [B, K, D]
        with torch.no_grad():
            soft_masks = torch.softmax(loaded.model.decoder(mu)[1], dim=1)  # masks of the posterior mean
        true_labels = true_label_map(batch["masks"])
        if true_labels.shape[-2:] != soft_masks.shape[-2:]:
            soft_masks = upsample_masks_to_crop(soft_masks, size=true_labels.shape[-1])
        visibility = batch["factors"][..., -1]  # [B, E]
        matches = matching_iou(true_labels, predicted_label_map(soft_masks), visibility, mu.shape[1])
        for b, (entities, slots) in enumerate(matches):
            codes.append(mu[b, torch.from_numpy(slots)].cpu().numpy())
            factors.append(batch["factors"][b, torch.from_numpy(entities)].cpu().numpy())
            counts.append(len(entities))
    return np.concatenate(codes), np.concatenate(factors), np.asarray(counts)


def run_disentanglement(
    loaded: LoadedRun, cfg: ExperimentConfig, out_dir: Path, progress: bool
) -> tuple[Metrics, PerImage]:
    """Activeness, DCI of matched slots against the dataset's factors, and a traversal grid of slot 0."""
    z, ranges, scores = _activeness(loaded, cfg, out_dir, progress)
    names = dataset_spec(cfg.data.name).factor_names
    columns, discrete = dci_factors(names)
    codes, factors, counts = _matched_codes(loaded, cfg, progress)
    np.savez_compressed(out_dir / "dci_inputs.npz", codes=codes, factors=factors, objects_per_image=counts)
    metrics: Metrics = {name: single_value(math.nan, len(codes)) for name in DCI_METRICS}
    problem = dci_problem(codes, factors[:, columns])
    if problem:
        warnings.warn(f"DCI left out of {out_dir / 'results.json'}: {problem}", stacklevel=2)
    else:
        factor_names = [names[c] for c in columns]
        result = dci(codes, factors[:, columns], factor_names, discrete, n_estimators=DCI_ESTIMATORS)
        np.save(out_dir / "dci_importance.npy", result.importance)
        metrics = {name: single_value(value, len(codes)) for name, value in result.metrics().items()}
        for factor, value in result.factor_informativeness.items():
            metrics[f"dci_informativeness_{factor}"] = single_value(value, len(codes))
    metrics["activeness"] = summarise(scores.mean(axis=1))
    metrics["matched_objects"] = summarise(counts)
    _save_traversals(loaded, cfg, z[0], ranges, slots=[0], dims=list(range(z.shape[2])), out_dir=out_dir)
    return metrics, None


def _save_traversals(
    loaded: LoadedRun,
    cfg: ExperimentConfig,
    z: torch.Tensor,
    ranges: np.ndarray,
    slots: list[int],
    dims: list[int],
    out_dir: Path,
) -> dict[int, torch.Tensor]:
    """Traversal grids of ``dims`` for each slot of one posterior sample ``z`` [K, D], as .npy and .png."""
    grids = {}
    folder = out_dir / "traversals"
    folder.mkdir(exist_ok=True)
    for slot in slots:
        images = traverse(
            loaded.model.decoder, z, slot, ranges, cfg.eval.traversal_steps, dims, cfg.eval.batch_size
        )  # [R, S, 3, H, W]
        np.save(folder / f"slot_{slot}.npy", images.cpu().numpy())
        title = f"slot {slot}: latents swept over [min, max] (first test image)"
        traversal_figure(images.cpu().numpy(), dims, ranges, title, folder / f"slot_{slot}.png")
        grids[slot] = images
    return grids


def run_gifs(
    loaded: LoadedRun, cfg: ExperimentConfig, out_dir: Path, progress: bool
) -> tuple[Metrics, PerImage]:
    """GIFs of the ``eval.gif_top_k`` most active latents for every slot of the first test image.

    Every slot is traversed from the *same* posterior sample (the reference draws a new one per slot), and
    the file name holds both the activeness rank and the latent index: ``slot_<s>_rank_<r>_dim_<j>.gif``.
    """
    z, ranges, scores = _activeness(loaded, cfg, out_dir, progress)
    top = [int(j) for j in np.argsort(-scores.mean(axis=0), kind="stable")[: cfg.eval.gif_top_k]]
    grids = _save_traversals(loaded, cfg, z[0], ranges, list(range(z.shape[1])), top, out_dir)
    for slot, images in grids.items():
        for rank, dim in enumerate(top):
            frames = traversal_frames(images[rank].cpu().numpy())
            write_gif(frames, out_dir / "gifs" / f"slot_{slot}_rank_{rank}_dim_{dim}.gif", fps=GIF_FPS)
    return {"activeness": summarise(scores.mean(axis=1))}, None


def run_figures(
    loaded: LoadedRun, cfg: ExperimentConfig, out_dir: Path, progress: bool
) -> tuple[Metrics, PerImage]:
    """A Figure-6 style PNG and an ``rinfo_<i>.npz`` for each of the first ``eval.num_images`` images."""
    device = model_device(loaded)
    names = None
    index = 0
    batches = test_batches(
        cfg, cfg.eval.num_images, device, masks=True, progress=progress, description="figures"
    )
    for batch in batches:
        output = infer(loaded, cfg, batch["imgs"], all_stages=True)
        arrays = stage_arrays(batch["imgs"], output, batch["masks"])
        stages = arrays["outputs/pred_mask"].shape[1]
        names = names or stage_names(cfg.model.stochastic_layers, cfg.eval.refinement_steps, stages)
        for b in range(len(batch["imgs"])):
            save_rinfo(arrays, b, out_dir / "rinfo" / f"rinfo_{index}.npz")
            sample_figure(arrays, b, names, out_dir / "figures" / f"sample_{index}.png")
            index += 1
    return {}, None


RUNNERS: Mapping[str, Callable[[LoadedRun, ExperimentConfig, Path, bool], tuple[Metrics, PerImage]]] = {
    "ari_mse_kl": run_ari_mse_kl,
    "disentanglement": run_disentanglement,
    "gifs": run_gifs,
    "figures": run_figures,
}
