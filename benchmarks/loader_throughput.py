"""Tetrominoes loader throughput (items/s) through a DataLoader: reference-style reopen-per-item vs.
``MultiObjectDataset`` reading from disk (file opened once per worker) vs. in memory. Goal: ≥ 50 000 items/s
in memory.

    python benchmarks/loader_throughput.py                      # generates 20 000 images in a temp root
    python benchmarks/loader_throughput.py --root data --workers 0 2 4 --batch-size 32

Worker start-up and the first batch are not timed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from emorl.data.layout import dataset_path
from emorl.data.reader import MultiObjectDataset
from emorl.data.writer import write_dataset


class ReopenPerItem(Dataset):
    """What the reference's ``HdF5Dataset`` does: open the file in every ``__len__`` and ``__getitem__``."""

    def __init__(self, path: Path, split: str):
        self.path, self.split = path, split

    def __len__(self) -> int:
        with h5py.File(self.path, "r") as file:
            return len(file[self.split]["imgs"])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        with h5py.File(self.path, "r") as file:
            image = np.asarray(
                Image.fromarray(file[self.split]["imgs"][index].astype(np.float32).astype(np.uint8))
            )
        image = image.transpose(2, 0, 1) / 255.0  # [3, H, W]
        return {"imgs": torch.from_numpy(2 * image - 1).float()}


def items_per_second(dataset: Dataset, batch_size: int, workers: int, max_items: int) -> float:
    """Items per second over at most ``max_items`` items after the first batch."""
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=workers, persistent_workers=workers > 0
    )
    batches = iter(loader)
    next(batches)
    count, start = 0, time.perf_counter()
    for batch in batches:
        count += len(batch["imgs"])
        if count >= max_items:
            break
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, help="data root holding tetrominoes.h5 (default: generate one)")
    parser.add_argument("--images", type=int, default=20_000, help="images to generate without --root")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--max-items", type=int, default=20_000, help="items timed per measurement")
    parser.add_argument(
        "--reference-max-items", type=int, default=3_000, help="the same, for the slow reader"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="emorl-loader-") as scratch:
        root = args.root
        if root is None:
            root = Path(scratch)
            print(f"generating {args.images} Tetrominoes images in {root} ...", flush=True)
            write_dataset("tetrominoes", root, args.images, 1, seed=0)
        path = dataset_path("tetrominoes", root, "train")
        readers = {
            "reference (reopen per item)": (ReopenPerItem(path, "train"), args.reference_max_items),
            "open once, from disk": (MultiObjectDataset(path, "train"), args.max_items),
            "in memory": (MultiObjectDataset(path, "train", in_memory=True), args.max_items),
        }
        print(
            f"{path} ({len(readers['in memory'][0])} items), batch size {args.batch_size}, "
            f"torch threads {torch.get_num_threads()}"
        )
        print(f"{'reader':<30}{'workers':>8}{'items/s':>12}")
        for name, (dataset, max_items) in readers.items():
            for workers in args.workers:
                rate = items_per_second(dataset, args.batch_size, workers, max_items)
                print(f"{name:<30}{workers:>8}{rate:>12,.0f}", flush=True)


if __name__ == "__main__":
    main()
