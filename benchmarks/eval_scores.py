"""``ari_mse_kl`` throughput (test images/s): batch 1 as the reference evaluates vs. batched, and the cost of
the segmentation scores alone (contingency tables, ARI, mBO; CLEVR masks upsampled to 192×192).

    python benchmarks/eval_scores.py                                   # tetrominoes, 64 images, batch 1 vs 32
    python benchmarks/eval_scores.py --dataset clevr6 --images 32 --batch-sizes 1 8 --device cuda

A random (untrained) model with the dataset's paper architecture is used; the numbers it scores are
meaningless, the time is not. The first batch (warm-up) is not timed.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch

from emorl.config import DataConfig, EvalConfig, ExperimentConfig, ModelConfig
from emorl.data.writer import write_dataset
from emorl.eval.scores import score_images
from emorl.eval.segmentation import ari_scores, overlap_scores, predicted_label_map, upsample_masks_to_crop
from emorl.model import EMORL
from emorl.train.checkpoint import LoadedRun

ARCHITECTURE = {
    "tetrominoes": {"K": 4, "z_size": 32, "decoder": "small", "input_size": (3, 35, 35)},
    "multi_dsprites": {"K": 6, "z_size": 64, "decoder": "iodine", "input_size": (3, 64, 64)},
    "clevr6": {"K": 7, "z_size": 64, "decoder": "iodine", "input_size": (3, 96, 96)},
}


def scores_per_second(loaded: LoadedRun, cfg: ExperimentConfig, batch_size: int, images: int) -> float:
    """Test images per second through ``score_images`` (one warm-up batch first, not timed)."""
    warm = dataclasses.replace(
        cfg, eval=dataclasses.replace(cfg.eval, num_images=batch_size, batch_size=batch_size)
    )
    score_images(loaded, warm, progress=False)
    timed = dataclasses.replace(
        cfg, eval=dataclasses.replace(cfg.eval, num_images=images, batch_size=batch_size)
    )
    start = time.perf_counter()
    score_images(loaded, timed, progress=False)
    return images / (time.perf_counter() - start)


def segmentation_per_second(dataset: str, slots: int, batch_size: int, repeats: int = 5) -> float:
    """Images per second of the segmentation scores alone, on random label maps and soft masks."""
    size = 192 if dataset == "clevr6" else ARCHITECTURE[dataset]["input_size"][1]
    model_size = ARCHITECTURE[dataset]["input_size"][1]
    entities = {"tetrominoes": 4, "multi_dsprites": 6, "clevr6": 11}[dataset]
    true = torch.randint(0, entities, (batch_size, size, size))
    soft = torch.softmax(torch.randn(batch_size, slots, 1, model_size, model_size), dim=1)
    start = time.perf_counter()
    for _ in range(repeats):
        pred = predicted_label_map(upsample_masks_to_crop(soft, size) if size != model_size else soft)
        ari_scores(true, pred, entities, slots)
        overlap_scores(true, pred, entities, slots)
    return repeats * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", choices=tuple(ARCHITECTURE), default="tetrominoes")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--refinement-steps", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="emorl-bench-eval-"))
    write_dataset(args.dataset, root, 8, args.images + max(args.batch_sizes), seed=0, progress=False)
    cfg = ExperimentConfig(
        model=ModelConfig(**ARCHITECTURE[args.dataset]),
        data=DataConfig(
            name=args.dataset,
            root=str(root),
            num_workers=0,
            clevr_resolution=96 if args.dataset == "clevr6" else None,
        ),
        eval=EvalConfig(refinement_steps=args.refinement_steps),
    )
    model = EMORL(cfg.model).to(args.device).eval()
    loaded = LoadedRun(model=model, geco=None, config=cfg, step=0)
    print(
        f"{args.dataset}: ari_mse_kl on {args.images} test images, I={args.refinement_steps}, {args.device}"
    )
    for batch_size in args.batch_sizes:
        rate = scores_per_second(loaded, cfg, batch_size, args.images)
        metrics = segmentation_per_second(args.dataset, cfg.model.K, batch_size)
        print(
            f"  batch {batch_size:>3}: {rate:8.1f} images/s end to end, {metrics:8.1f} images/s scores alone"
        )


if __name__ == "__main__":
    main()
