"""Running a trained EMORL on the test split the way the reference's evaluation does
(docs/evaluation.md#running-a-checkpoint).

The first N test images in file order, the test-time number of refinement steps I, and GECO's checkpointed
ζ in the refinement gradients (forward called at ``global_step = warm_start + 1``) when GECO is enabled.
Unlike the reference, images are batched: the model takes the batch size at runtime and the refinement
gradient of a batch-mean loss differs per image only by the 1/B factor that its LayerNorm removes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from emorl.config import ExperimentConfig
from emorl.data.reader import build_dataset
from emorl.model.distributions import sigma
from emorl.train.checkpoint import LoadedRun


def model_device(loaded: LoadedRun) -> torch.device:
    """The device the loaded model's parameters live on (evaluation runs there)."""
    return next(loaded.model.parameters()).device


def test_batches(
    cfg: ExperimentConfig,
    num_images: int,
    device: torch.device,
    *,
    masks: bool = False,
    factors: bool = False,
    progress: bool = True,
    description: str = "eval",
) -> Iterator[dict[str, torch.Tensor]]:
    """Batches of ``eval.batch_size`` holding the first ``num_images`` test items, in file order.

    Fewer images are used when the test file is shorter; each batch dict carries ``imgs`` (and ``masks``,
    ``factors`` when asked) on ``device``.
    """
    dataset = build_dataset(cfg.data, "test", masks=masks, factors=factors)
    count = min(num_images, len(dataset))
    loader = DataLoader(
        Subset(dataset, range(count)),
        batch_size=cfg.eval.batch_size,
        shuffle=False,
        num_workers=cfg.data.num_workers,
    )
    bar = tqdm(loader, desc=description, unit="batch", disable=not progress, leave=False)
    for batch in bar:
        yield {key: value.to(device) for key, value in batch.items()}


def infer(loaded: LoadedRun, cfg: ExperimentConfig, images: torch.Tensor, *, all_stages: bool = False) -> Any:
    """One forward pass with the test-time I and slots, returning the model's ``EMORLOutput``."""
    geco = loaded.geco if cfg.geco.enabled else None
    with torch.no_grad():
        return loaded.model(
            images,
            refinement_steps=cfg.eval.refinement_steps,
            geco=geco,
            global_step=cfg.geco.warm_start + 1,
            kl_beta=1.0,
            num_slots=cfg.eval.num_slots,
            all_stages=all_stages,
            refinement_batch_size=1,  # refine each image as the reference's batch-1 evaluation does
        )


def sample_posterior(output: Any) -> torch.Tensor:
    """One reparameterised draw from the final refined posterior, ``[B, K, D]``."""
    mu, s = output.posterior_mu, output.posterior_s
    return mu + sigma(s) * torch.randn_like(mu)


def posterior_samples(
    loaded: LoadedRun, cfg: ExperimentConfig, num_images: int, progress: bool = True
) -> torch.Tensor:
    """One draw from the final refined posterior per image of the first ``num_images``, ``[N, K, D]``."""
    device = model_device(loaded)
    batches = test_batches(cfg, num_images, device, progress=progress, description="posterior")
    return torch.cat([sample_posterior(infer(loaded, cfg, batch["imgs"])) for batch in batches])
