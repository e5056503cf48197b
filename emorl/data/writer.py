"""Write generated datasets to disk in the reference layout, with a checksum manifest (docs/data.md)."""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import h5py

from emorl.data import generators
from emorl.data.integrity import ManifestEntry, file_sha256, temporary_sibling, update_manifest
from emorl.data.layout import SPLITS, DatasetError, dataset_path, dataset_spec, inspect_split

if TYPE_CHECKING:
    from emorl.config import DataConfig


def split_seed(seed: int, split: str) -> int:
    """The generator seed of one split: train and test draw from disjoint streams for every seed ≥ 0."""
    return 2 * seed + SPLITS.index(split)


def generator_version() -> str:
    """The package version plus a hash of the generator sources: which code drew the data."""
    digest = hashlib.sha256()
    for source in sorted(Path(generators.__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return f"{metadata.version('emorl-lab')}+gen.{digest.hexdigest()[:12]}"


def write_dataset(
    name: str, root: str | Path, n_train: int, n_test: int, seed: int, progress: bool = True
) -> list[Path]:
    """Generate both files of dataset ``name`` under ``root`` and record them in ``root/manifest.json``.

    Each file is written to a temporary name and renamed when complete, so a reader never sees half a
    file, and concurrent writers of the same dataset (e.g. several ranks) leave identical files behind.
    """
    spec = dataset_spec(name)
    counts = {"train": n_train, "test": n_test}
    for split, count in counts.items():
        if count < 1:
            raise DatasetError(f"{name}: the {split} split needs at least 1 image, got {count}")
    if seed < 0:
        raise DatasetError(f"{name}: seed must be >= 0, got {seed}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    version = generator_version()
    paths, entries = [], []
    for split in SPLITS:
        path = dataset_path(name, root, split)
        _write_split(path, name, split, counts[split], split_seed(seed, split), progress)
        paths.append(path)
        entries.append(
            ManifestEntry(
                file=path.name,
                dataset=spec.name,
                split=split,
                n=counts[split],
                sha256=file_sha256(path),
                size=path.stat().st_size,
                seed=seed,
                split_seed=split_seed(seed, split),
                generator_version=version,
            )
        )
    update_manifest(root, entries)
    return paths


def _write_split(path: Path, name: str, split: str, n: int, seed: int, progress: bool) -> None:
    """Stream the generator's chunks into ``<split>/imgs|masks|factors`` of a new file at ``path``."""
    temporary = temporary_sibling(path)
    try:
        with h5py.File(temporary, "w") as file:
            group = file.create_group(split)
            start = 0
            for chunk in generators.generate_chunks(name, n, seed, progress):
                count = len(chunk["imgs"])
                for key, values in chunk.items():
                    if key not in group:
                        # one HDF5 chunk per item keeps random access cheap; masks are mostly zeros
                        group.create_dataset(
                            key,
                            shape=(n, *values.shape[1:]),
                            dtype=values.dtype,
                            chunks=(1, *values.shape[1:]) if key == "masks" else None,
                            compression="lzf" if key == "masks" else None,
                        )
                    group[key][start : start + count] = values
                start += count
            inspect_split(file, path, split, masks=True, factors=True)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def ensure_dataset(cfg: DataConfig, split: str) -> Path:
    """The path of the ``split`` file of ``cfg``'s dataset, generated first (seed 0, ``cfg.generate_train``/
    ``cfg.generate_test`` images) when it is missing and ``cfg.generate_if_missing``; otherwise a missing
    file raises ``DatasetError`` saying how to generate it. Needs neither torch nor the reader."""
    path = dataset_path(cfg.name, cfg.root, split)
    if path.is_file():
        return path
    if not cfg.generate_if_missing:
        raise DatasetError(
            f"{path} does not exist; generate it with `emorl-data generate {cfg.name} --root {cfg.root}` "
            "or set data.generate_if_missing=true"
        )
    print(
        f"[emorl.data] {path} is missing: generating {cfg.name} "
        f"({cfg.generate_train} train / {cfg.generate_test} test images, seed 0) under {cfg.root}",
        flush=True,
    )
    write_dataset(cfg.name, cfg.root, cfg.generate_train, cfg.generate_test, seed=0)
    return path
