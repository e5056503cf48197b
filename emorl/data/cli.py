"""``emorl-data``: generate the datasets in the reference layout, check them, and summarise what a root holds.

    emorl-data generate tetrominoes --root data --train 2000 --test 320 --seed 0
    emorl-data check --root data
    emorl-data summary --root data [NAME]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from emorl.config import DataConfig
from emorl.data.integrity import MANIFEST_NAME, FileCheck, check_root, read_manifest
from emorl.data.layout import DATASETS, DatasetError, open_h5
from emorl.data.writer import write_dataset

_BLOCK = 256  # images per read when counting objects
_BAR_WIDTH = 30


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``emorl-data`` command; returns the exit status (0 ok, 1 problems found, 2 bad input)."""
    args = _parser().parse_args(argv)
    progress = not args.no_progress
    try:
        if args.command == "generate":
            return _generate(args, progress)
        if args.command == "check":
            return _check(Path(args.root), args.names or None, progress)
        return _summary(Path(args.root), [args.name] if args.name else None, progress)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    defaults = DataConfig()
    parser = argparse.ArgumentParser(
        prog="emorl-data",
        description="Generate the Multi-Object datasets in the reference HDF5 layout; check; summarise.",
        epilog="examples:\n" + __doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    shown = {"formatter_class": argparse.ArgumentDefaultsHelpFormatter}

    generate = commands.add_parser("generate", help="write a dataset and its manifest entries", **shown)
    generate.add_argument("name", choices=list(DATASETS))
    generate.add_argument("--train", type=int, default=defaults.generate_train, help="training images")
    generate.add_argument("--test", type=int, default=defaults.generate_test, help="test images")
    generate.add_argument("--seed", type=int, default=0, help="generator seed (the test split uses 2*seed+1)")

    check = commands.add_parser("check", help="verify layout and SHA-256 of the datasets in a root", **shown)
    check.add_argument("names", nargs="*", metavar="NAME", help=f"only these ({', '.join(DATASETS)})")

    summary = commands.add_parser("summary", help="per file: N, shapes, dtypes, objects, checksum", **shown)
    summary.add_argument("name", nargs="?", choices=list(DATASETS), metavar="NAME", help="only this dataset")

    for command in (generate, check, summary):
        command.add_argument("--root", default=defaults.root, help="data root")
        command.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def _generate(args: argparse.Namespace, progress: bool) -> int:
    sizes = f"{args.train} train + {args.test} test images"
    print(f"Generating {args.name}: {sizes}, seed {args.seed}, in {args.root}")
    paths = write_dataset(args.name, args.root, args.train, args.test, args.seed, progress=progress)
    print(f"Wrote {', '.join(path.name for path in paths)} and updated {MANIFEST_NAME}.\n")
    return _summary(Path(args.root), [args.name], progress)


def _check(root: Path, names: list[str] | None, progress: bool) -> int:
    checks = check_root(root, names, progress)
    if not checks:
        print(f"No datasets under {root}; generate one with `emorl-data generate NAME --root {root}`.")
        return 1
    print(f"Checking {len(checks)} files under {root}")
    width = max(len(check.path.name) for check in checks)
    for check in checks:
        images = f"{check.layout.length} images" if check.layout else "-"
        verdict = "ok" if check.ok else "FAILED"
        name = check.path.name
        print(f"  {verdict:<7}{name:<{width}}  {check.split:<6}{images:>14}   sha256 {check.checksum}")
        for problem in check.problems:
            print(f"         - {problem}")
        for warning in check.warnings:
            print(f"         ! {warning}")
    failed = [check for check in checks if not check.ok]
    if failed:
        count = sum(len(check.problems) for check in failed)
        print(f"{count} problem(s) in {len(failed)} of {len(checks)} files.")
        return 1
    print(f"All {len(checks)} files OK.")
    return 0


def _summary(root: Path, names: list[str] | None, progress: bool) -> int:
    checks = check_root(root, names, progress)
    if not checks:
        print(f"No datasets under {root}; generate one with `emorl-data generate NAME --root {root}`.")
        return 1
    listed = len(read_manifest(root))
    print(f"Data root {root.resolve()}  ({MANIFEST_NAME}: {listed} file{'s' * (listed != 1)})")
    for dataset in dict.fromkeys(check.dataset for check in checks):
        print(f"\n{dataset}")
        for check in (check for check in checks if check.dataset == dataset):
            _print_file(check, progress)
    return 0 if all(check.ok for check in checks) else 1


def _print_file(check: FileCheck, progress: bool) -> None:
    path, layout = check.path, check.layout
    size = f"{path.stat().st_size / 2**20:.1f} MiB" if path.is_file() else "missing"
    images = f"N={layout.length}" if layout else ""
    print(f"  {check.split:<6} {path.name}   {images}   {size}   sha256 {check.checksum}")
    for problem in check.problems:
        print(f"        ✗ {problem}")
    if layout is None:
        return
    for key, (shape, dtype) in layout.arrays.items():
        columns = f"  ({', '.join(DATASETS[check.dataset].factor_names)})" if key == "factors" else ""
        print(f"        {key:<8} {np.dtype(dtype).name:<8} {list(shape)}{columns}")
    if layout.has_masks and layout.length:
        histogram = _objects_per_image(path, check.split, progress)
        print("        objects per image (non-empty foreground masks):")
        for objects, count in sorted(histogram.items()):
            bar = "█" * max(1, round(_BAR_WIDTH * count / layout.length))
            print(f"          {objects:>2}  {bar:<{_BAR_WIDTH}} {count} ({100 * count / layout.length:.0f}%)")


def _objects_per_image(path: Path, split: str, progress: bool) -> Counter[int]:
    """How many images have each number of foreground entities with a non-empty mask."""
    histogram: Counter[int] = Counter()
    with open_h5(path) as file:
        masks = file[split]["masks"]
        starts = range(0, masks.shape[0], _BLOCK)
        bar = tqdm(starts, desc=f"objects {path.name}", leave=False, disable=None if progress else True)
        for start in bar:
            present = masks[start : start + _BLOCK].any(axis=(2, 3, 4))  # [block, E]
            histogram.update(present[:, 1:].sum(axis=1).tolist())
    return histogram


if __name__ == "__main__":
    sys.exit(main())
