"""Dataset integrity: the ``manifest.json`` of a data root (SHA-256 per file) and the checks behind
``emorl-data check``: every file present, in the reference layout, and byte-identical to what was written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from emorl.data.layout import (
    DATASETS,
    SPLITS,
    DatasetError,
    SplitLayout,
    dataset_spec,
    generate_hint,
    inspect_split,
    open_h5,
)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
_HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class ManifestEntry:
    """What the writer recorded about one file it wrote."""

    file: str  # name relative to the data root
    dataset: str
    split: str
    n: int
    sha256: str
    size: int  # bytes
    seed: int  # the seed given to the writer
    split_seed: int  # the seed the generator drew this split with
    generator_version: str


def file_sha256(path: Path, progress: bool = False) -> str:
    """Hex SHA-256 of a file, read in blocks (with a byte progress bar when asked and interactive)."""
    digest = hashlib.sha256()
    with (
        path.open("rb") as stream,
        tqdm(
            total=path.stat().st_size,
            desc=f"sha256 {path.name}",
            unit="B",
            unit_scale=True,
            leave=False,
            disable=None if progress else True,
        ) as bar,
    ):
        while block := stream.read(_HASH_BLOCK):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def temporary_sibling(path: Path) -> Path:
    """A private name next to ``path`` to write to before renaming: unique per host and process, so
    concurrent writers (ranks, jobs on a shared file system) never write into the same file."""
    return path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")


def read_manifest(root: str | Path) -> dict[str, ManifestEntry]:
    """The manifest's entries by file name; empty when the root has no manifest."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
        return {name: ManifestEntry(**entry) for name, entry in raw["files"].items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetError(
            f"{path} is not a valid manifest ({type(exc).__name__}: {exc}); delete it and regenerate the "
            "datasets with `emorl-data generate NAME --root ROOT`"
        ) from exc


def update_manifest(root: str | Path, entries: Iterable[ManifestEntry]) -> Path:
    """Add or replace entries in ``root/manifest.json`` (written atomically; other entries are kept)."""
    root = Path(root)
    files = {name: dataclasses.asdict(entry) for name, entry in read_manifest(root).items()}
    files.update({entry.file: dataclasses.asdict(entry) for entry in entries})
    path = root / MANIFEST_NAME
    temporary = temporary_sibling(path)
    document = {"format": MANIFEST_FORMAT, "files": dict(sorted(files.items()))}
    temporary.write_text(json.dumps(document, indent=2) + "\n")
    temporary.replace(path)
    return path


@dataclass
class FileCheck:
    """The verdict on one dataset file: layout, checksum and what is wrong with it."""

    path: Path
    dataset: str
    split: str
    checksum: str = "not checked"  # "ok", "MISMATCH", "not in manifest" or "not checked"
    layout: SplitLayout | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_root(
    root: str | Path, names: Iterable[str] | None = None, progress: bool = True
) -> list[FileCheck]:
    """Check both files of every dataset found under ``root`` (or of ``names``) against layout and manifest.

    A dataset counts as found when one of its files exists or is listed in the manifest. Files that
    exist but are not in the manifest (e.g. downloaded reference files) are layout-checked and get a
    warning, since their checksum cannot be verified.
    """
    root = Path(root)
    manifest = read_manifest(root)
    if names is None:
        specs = [
            spec
            for spec in DATASETS.values()
            if any((root / spec.file_name(s)).exists() or spec.file_name(s) in manifest for s in SPLITS)
        ]
    else:
        specs = [dataset_spec(name) for name in names]
    return [
        check_file(root / spec.file_name(split), spec.name, split, manifest, progress)
        for spec in specs
        for split in SPLITS
    ]


def check_file(
    path: Path, dataset: str, split: str, manifest: dict[str, ManifestEntry], progress: bool = True
) -> FileCheck:
    """Check one file: it exists, its split group follows the layout, and size, N and SHA-256 match."""
    check = FileCheck(path=path, dataset=dataset, split=split)
    if not path.is_file():
        check.problems.append(f"{path} is missing; {generate_hint(path)}")
        return check
    try:
        with open_h5(path) as file:
            check.layout = inspect_split(file, path, split)
    except DatasetError as exc:
        check.problems.append(str(exc))
    entry = manifest.get(path.name)
    if entry is None:
        check.checksum = "not in manifest"
        check.warnings.append(f"{path.name} is not in {MANIFEST_NAME}, so its checksum cannot be verified")
        return check
    size = path.stat().st_size
    if size != entry.size:
        check.problems.append(
            f"{path.name} has {size} bytes, {MANIFEST_NAME} expects {entry.size}; {generate_hint(path)}"
        )
    if check.layout is not None and check.layout.length != entry.n:
        check.problems.append(
            f"{path.name} {split}/imgs holds {check.layout.length} items, {MANIFEST_NAME} expects {entry.n}"
        )
    digest = file_sha256(path, progress)
    check.checksum = "ok" if digest == entry.sha256 else "MISMATCH"
    if digest != entry.sha256:
        check.problems.append(
            f"{path.name} has SHA-256 {digest[:16]}…, {MANIFEST_NAME} expects {entry.sha256[:16]}…: the file "
            f"changed after it was written; {generate_hint(path)}"
        )
    return check
