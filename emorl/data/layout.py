"""The reference HDF5 layout of the Multi-Object datasets (docs/data.md), and how to check a file against it.

Every file holds one split group, ``train`` in the training file and ``test`` in the test file::

    <file>.h5
     └─ <split>/
         ├─ imgs     [N, H, W, 3]     uint8    RGB, 0..255
         ├─ masks    [N, E, H, W, 1]  uint8    one binary mask per entity, values 0 or 255
         └─ factors  [N, E, F]        float32  per-entity ground-truth factors (optional)

Entity 0 is always the background; the masks of one image partition its pixels. An entity slot that holds
no object has an all-zero mask and a factor row whose ``visibility`` (always the last column) is 0.

Integer-coded factors start at 1; 0 means "no object" (the background row and empty slots). The generated
look-alikes (``emorl.data.generators``) document in their module docstrings how they match the real data.

tetrominoes
    Files ``tetrominoes.h5`` (group ``train``) and ``tetrominoes_test.h5`` (group ``test``).
    ``imgs`` [N, 35, 35, 3]; ``masks`` [N, 4, 35, 35, 1] (background + exactly 3 tetrominoes);
    ``factors`` [N, 4, 7]: ``x, y`` (piece centre in pixels: column, row), ``shape`` (1..17, the
    shape/orientation), ``color_r, color_g, color_b`` (in [0, 1], one of 6 colours), ``visibility``.

mini_tetrominoes (ours, no reference counterpart)
    Files ``mini_tetrominoes.h5`` (``train``) and ``mini_tetrominoes_test.h5`` (``test``): ``tetrominoes``
    reduced to 12×12 images with 2 pieces of 2-px blocks in different colours, for fast discovery runs.
    ``imgs`` [N, 12, 12, 3]; ``masks`` [N, 3, 12, 12, 1]; ``factors`` [N, 3, 7] as in tetrominoes.

multi_dsprites (colored on grayscale)
    Files ``multi_dsprites_colored_on_grayscale.h5`` (``train``) and
    ``multi_dsprites_colored_on_grayscale_test.h5`` (``test``).
    ``imgs`` [N, 64, 64, 3] (2–5 coloured sprites on a uniform grey background); ``masks`` [N, 6, 64, 64, 1];
    ``factors`` [N, 6, 9]: ``x, y`` (in [0, 1], dSprites' position units), ``shape`` (1 square, 2 ellipse,
    3 heart), ``scale`` (in [0.5, 1]), ``orientation`` (radians), ``color_r, color_g, color_b`` (in [0, 1];
    the grey level for the background), ``visibility``.

clevr6
    Files ``clevr6_with_masks_train.h5`` (``train``) and ``clevr6_with_masks_and_factors_test.h5`` (``test``).
    ``imgs`` [N, 240, 320, 3]; ``masks`` [N, 11, 240, 320, 1] (background + at most 6 objects, in the 11
    entity slots of CLEVR-with-masks); ``factors`` [N, 11, 12]: ``x, y, z`` (world position), ``rotation``
    (degrees), ``size, material, shape, color`` (integer codes), ``pixel_x, pixel_y, pixel_z`` (projected
    centre: column, row, depth), ``visibility``. Columns 0–7 and the last one are where the reference's DCI
    code reads them.
    The reader crops rows 29–220 and columns 64–255 (a 192×192 box) and resizes the image to 96 or 128 pixels
    with PIL BICUBIC (the default filter of the reference's Pillow 7.2); masks are cropped, never resized.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

SPLITS = ("train", "test")


class DatasetError(ValueError):
    """A dataset file that is missing or breaks the reference layout; the message says how to fix it."""


@dataclass(frozen=True)
class DatasetSpec:
    """File names and array geometry of one dataset in the reference layout."""

    name: str
    train_file: str
    test_file: str
    image_size: tuple[int, int]  # raw (H, W)
    max_entities: int  # E, background included
    factor_names: tuple[str, ...]  # F columns, visibility last

    @property
    def num_factors(self) -> int:
        return len(self.factor_names)

    def file_name(self, split: str) -> str:
        """The file that holds ``split`` (whose group is named like the split)."""
        check_split(split)
        return self.train_file if split == "train" else self.test_file


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="tetrominoes",
            train_file="tetrominoes.h5",
            test_file="tetrominoes_test.h5",
            image_size=(35, 35),
            max_entities=4,
            factor_names=("x", "y", "shape", "color_r", "color_g", "color_b", "visibility"),
        ),
        DatasetSpec(
            name="mini_tetrominoes",
            train_file="mini_tetrominoes.h5",
            test_file="mini_tetrominoes_test.h5",
            image_size=(12, 12),
            max_entities=3,
            factor_names=("x", "y", "shape", "color_r", "color_g", "color_b", "visibility"),
        ),
        DatasetSpec(
            name="multi_dsprites",
            train_file="multi_dsprites_colored_on_grayscale.h5",
            test_file="multi_dsprites_colored_on_grayscale_test.h5",
            image_size=(64, 64),
            max_entities=6,
            factor_names=(
                "x", "y", "shape", "scale", "orientation", "color_r", "color_g", "color_b", "visibility",
            ),
        ),
        DatasetSpec(
            name="clevr6",
            train_file="clevr6_with_masks_train.h5",
            test_file="clevr6_with_masks_and_factors_test.h5",
            image_size=(240, 320),
            max_entities=11,
            factor_names=(
                "x", "y", "z", "rotation", "size", "material", "shape", "color",
                "pixel_x", "pixel_y", "pixel_z", "visibility",
            ),
        ),
    )
}


def check_split(split: str) -> None:
    """Raise ``DatasetError`` unless ``split`` is 'train' or 'test'."""
    if split not in SPLITS:
        raise DatasetError(f"split={split!r} is not a split of the reference layout (expected: {SPLITS})")


def dataset_spec(name: str) -> DatasetSpec:
    """The ``DatasetSpec`` of a dataset name, or a ``DatasetError`` listing the known names."""
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    return DATASETS[name]


def dataset_path(name: str, root: str | Path, split: str) -> Path:
    """Where the reference file of ``split`` of dataset ``name`` lives under the data root."""
    return Path(root) / dataset_spec(name).file_name(split)


def spec_for_file(file_name: str) -> tuple[DatasetSpec, str] | None:
    """The dataset and split a reference file name belongs to, or None for any other name."""
    for spec in DATASETS.values():
        for split in SPLITS:
            if spec.file_name(split) == file_name:
                return spec, split
    return None


def generate_hint(path: Path) -> str:
    """How to (re)create the file at ``path``, when it has a reference name."""
    known = spec_for_file(path.name)
    name = known[0].name if known else "NAME"
    return f"regenerate with `emorl-data generate {name} --root {path.parent}`"


@dataclass(frozen=True)
class SplitLayout:
    """What one split group of a file holds: N and each array's shape and dtype."""

    path: Path
    split: str
    length: int
    arrays: dict[str, tuple[tuple[int, ...], np.dtype]]  # key -> (shape, dtype)

    @property
    def has_masks(self) -> bool:
        return "masks" in self.arrays

    @property
    def has_factors(self) -> bool:
        return "factors" in self.arrays


def open_h5(path: Path) -> h5py.File:
    """Open a dataset file read-only; a missing, truncated or non-HDF5 file raises ``DatasetError``.

    HDF5 file locking is off: files are only ever replaced whole (written aside, then renamed), and
    locks fail on many cluster file systems.
    """
    if not path.is_file():
        raise DatasetError(f"{path} does not exist; {generate_hint(path)}")
    try:
        return h5py.File(path, "r", locking=False)
    except OSError as exc:
        raise DatasetError(
            f"{path} is not a readable HDF5 file ({exc}); it may be truncated or corrupt; "
            f"{generate_hint(path)}"
        ) from exc


def inspect_split(
    file: h5py.File, path: Path, split: str, *, masks: bool = False, factors: bool = False
) -> SplitLayout:
    """Check one split group against the reference layout and return what it holds.

    ``masks``/``factors`` say that the caller needs those arrays. Shapes are checked for consistency
    with ``imgs`` and, for files with a reference name, against the dataset's geometry.
    """
    check_split(split)
    name = path.name
    if split not in file:
        found = ", ".join(repr(key) for key in file) or "no groups"
        other = next((s for s in SPLITS if s in file), None)
        fix = f"pass split={other} or {generate_hint(path)}" if other else generate_hint(path)
        raise DatasetError(f"{name} has no group {split!r} (found: {found}); {fix}")
    group = file[split]
    if not isinstance(group, h5py.Group):
        raise DatasetError(f"{name}: {split!r} is an array, expected a group; {generate_hint(path)}")
    known = spec_for_file(name)
    spec = known[0] if known else None

    imgs = _array(group, path, split, "imgs")
    _expect_dtype(path, split, "imgs", imgs, np.uint8)
    if imgs.ndim != 4 or imgs.shape[3] != 3:
        _bad_shape(path, split, "imgs", "[N, H, W, 3]", imgs.shape)
    length, height, width = imgs.shape[:3]
    if spec and (height, width) != spec.image_size:
        _bad_shape(path, split, "imgs", f"[N, {spec.image_size[0]}, {spec.image_size[1]}, 3]", imgs.shape)
    arrays = {"imgs": (tuple(imgs.shape), imgs.dtype)}

    if "masks" in group:
        mask_array = _array(group, path, split, "masks")
        _expect_dtype(path, split, "masks", mask_array, np.uint8)
        entities = spec.max_entities if spec else "E"
        expected = f"[{length}, {entities}, {height}, {width}, 1]"
        shape = mask_array.shape
        wrong_entities = spec is not None and mask_array.ndim == 5 and shape[1] != spec.max_entities
        if mask_array.ndim != 5 or shape[2:] != (height, width, 1) or wrong_entities:
            _bad_shape(path, split, "masks", expected, shape)
        if shape[0] != length:
            _mismatched_length(path, split, "masks", shape[0], length)
        arrays["masks"] = (tuple(shape), mask_array.dtype)
    elif masks:
        raise DatasetError(
            f"{name} group {split!r} has no 'masks' (found: {', '.join(map(repr, group))}) but masks were "
            f"requested; pass masks=false (data.masks=false) or {generate_hint(path)}"
        )

    if "factors" in group:
        factor_array = _array(group, path, split, "factors")
        if not np.issubdtype(factor_array.dtype, np.floating):
            raise DatasetError(
                f"{name} {split}/factors has dtype {factor_array.dtype}, expected a float dtype (float32); "
                f"{generate_hint(path)}"
            )
        shape = factor_array.shape
        entities = arrays["masks"][0][1] if "masks" in arrays else (spec.max_entities if spec else None)
        columns = spec.num_factors if spec else None
        if (
            factor_array.ndim != 3
            or (entities is not None and shape[1] != entities)
            or (columns is not None and shape[2] != columns)
        ):
            expected = f"[{length}, {entities or 'E'}, {columns or 'F'}]"
            _bad_shape(path, split, "factors", expected, shape)
        if shape[0] != length:
            _mismatched_length(path, split, "factors", shape[0], length)
        arrays["factors"] = (tuple(shape), factor_array.dtype)
    elif factors:
        raise DatasetError(
            f"{name} group {split!r} has no 'factors' (found: {', '.join(map(repr, group))}) but factors "
            f"were requested; pass factors=false (data.factors=false) or {generate_hint(path)}"
        )
    return SplitLayout(path=path, split=split, length=length, arrays=arrays)


def _array(group: h5py.Group, path: Path, split: str, key: str) -> h5py.Dataset:
    if key not in group:
        found = ", ".join(repr(k) for k in group) or "nothing"
        raise DatasetError(
            f"{path.name} group {split!r} has no {key!r} (found: {found}); {generate_hint(path)}"
        )
    array = group[key]
    if not isinstance(array, h5py.Dataset):
        raise DatasetError(f"{path.name} {split}/{key} is a group, expected an array; {generate_hint(path)}")
    return array


def _expect_dtype(path: Path, split: str, key: str, array: h5py.Dataset, dtype: type) -> None:
    if array.dtype != dtype:
        raise DatasetError(
            f"{path.name} {split}/{key} has dtype {array.dtype}, expected {np.dtype(dtype)}; "
            f"{generate_hint(path)}"
        )


def _bad_shape(path: Path, split: str, key: str, expected: str, found: tuple[int, ...]) -> None:
    raise DatasetError(
        f"{path.name} {split}/{key} has shape {list(found)} (rank {len(found)}), expected {expected}; "
        f"{generate_hint(path)}"
    )


def _mismatched_length(path: Path, split: str, key: str, found: int, length: int) -> None:
    raise DatasetError(
        f"{path.name} {split}/{key} holds {found} items but {split}/imgs holds {length}; "
        f"the file is inconsistent: {generate_hint(path)}"
    )
