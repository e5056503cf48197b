"""The PyTorch reader of the reference HDF5 layout (docs/data.md).

Unlike the reference, which reopens the file for every item, a ``MultiObjectDataset`` opens its file once
per process (lazily, so DataLoader workers and DistributedSampler ranks each get their own handle) and
keeps it open; ``in_memory=True`` instead loads the whole split, already pre-processed, as uint8 tensors.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from tqdm import tqdm

from emorl.config import DataConfig
from emorl.data.layout import DatasetError, check_split, inspect_split, open_h5
from emorl.data.writer import ensure_dataset

CLEVR_CROP_BOX = (64, 29, 256, 221)  # PIL (left, upper, right, lower): rows 29–220, cols 64–255
CLEVR_RAW_SIZE = (240, 320)  # (H, W)
CLEVR_RESOLUTIONS = (96, 128)


def to_model_range(imgs: torch.Tensor) -> torch.Tensor:
    """uint8 images 0..255 → float32 in [−1, 1] (x/255 ↦ 2x − 1), any shape."""
    return imgs.float().mul_(2.0 / 255.0).sub_(1.0)


class MultiObjectDataset(Dataset):
    """One split of a reference-layout file: items hold ``imgs`` and, when asked, ``masks`` and ``factors``.

    Item shapes: ``imgs`` float32 [3, H, W] in [−1, 1]; ``masks`` float32 [E, 1, Hm, Wm] with values 0/255;
    ``factors`` float32 [E, F]. With ``clevr_resolution`` (96 or 128) the 240×320 CLEVR image is cropped to
    rows 29–220 / cols 64–255 and resized with PIL BICUBIC; its masks are cropped to 192×192, not resized.
    """

    def __init__(
        self,
        path: str | Path,
        split: str,
        masks: bool = False,
        factors: bool = False,
        clevr_resolution: int | None = None,
        in_memory: bool = False,
        progress: bool = True,
    ):
        self.path = Path(path)
        self.split = split
        self.masks = masks
        self.factors = factors
        self.clevr_resolution = clevr_resolution
        self.in_memory = in_memory
        check_split(split)
        with open_h5(self.path) as file:
            self.layout = inspect_split(file, self.path, split, masks=masks, factors=factors)
            self._check_clevr_geometry()
            self._memory = self._load_split(file, progress) if in_memory else None
        self._file: h5py.File | None = None
        self._file_pid: int | None = None
        self._datasets: dict[str, h5py.Dataset] = {}

    def __len__(self) -> int:
        return self.layout.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if self._memory is not None:
            return {key: convert(array[index]) for key, (array, convert) in self._memory.items()}
        arrays = self._arrays()
        item = {"imgs": to_model_range(torch.from_numpy(self._preprocess_image(arrays["imgs"][index])))}
        if self.masks:
            masks = arrays["masks"][(index, slice(None), *self._mask_window())]  # [E, Hm, Wm, 1]
            item["masks"] = torch.from_numpy(masks.transpose(0, 3, 1, 2)).float()  # [E, 1, Hm, Wm]
        if self.factors:
            item["factors"] = torch.from_numpy(np.asarray(arrays["factors"][index], dtype=np.float32))
        return item

    def __getitems__(self, indices: list[int]) -> list[dict[str, torch.Tensor]]:
        """A batch of items, as a DataLoader asks for them; in memory, one gather and one conversion."""
        if self._memory is None:
            return [self[index] for index in indices]
        rows = torch.as_tensor(indices)
        columns = {key: convert(array[rows]).unbind(0) for key, (array, convert) in self._memory.items()}
        return [{key: column[i] for key, column in columns.items()} for i in range(len(indices))]

    def __getstate__(self) -> dict[str, Any]:
        """Picklable for spawned workers: the open HDF5 handle stays behind and is reopened lazily."""
        state = self.__dict__.copy()
        state.update(_file=None, _file_pid=None, _datasets={})
        return state

    def close(self) -> None:
        """Close this process's file handle (reopened on the next disk read)."""
        if self._file is not None:
            self._file.close()
        self._file = None
        self._file_pid = None
        self._datasets = {}

    def _arrays(self) -> dict[str, h5py.Dataset]:
        """The split's arrays, opened once per process (a forked worker must not use its parent's handle)."""
        if self._file is None or self._file_pid != os.getpid():
            self._file = open_h5(self.path)
            self._file_pid = os.getpid()
            group = self._file[self.split]
            self._datasets = {key: group[key] for key in self.layout.arrays}
        return self._datasets

    def _check_clevr_geometry(self) -> None:
        if self.clevr_resolution is None:
            return
        if self.clevr_resolution not in CLEVR_RESOLUTIONS:
            raise DatasetError(
                f"clevr_resolution={self.clevr_resolution!r} is not supported (expected one of "
                f"{CLEVR_RESOLUTIONS}, or None for no crop and resize)"
            )
        shape = self.layout.arrays["imgs"][0]
        if tuple(shape[1:3]) != CLEVR_RAW_SIZE:
            raise DatasetError(
                f"{self.path.name} {self.split}/imgs has shape {list(shape)}, but the CLEVR crop needs "
                f"[N, {CLEVR_RAW_SIZE[0]}, {CLEVR_RAW_SIZE[1]}, 3] images; pass clevr_resolution=None "
                "(data.clevr_resolution=null) for datasets other than clevr6"
            )

    def _preprocess_image(self, image: np.ndarray) -> np.ndarray:
        """[H, W, 3] uint8 → [3, H', W'] uint8, CLEVR-cropped and resized when asked
        (docs/data.md#preprocessing)."""
        if self.clevr_resolution is not None:
            size = (self.clevr_resolution, self.clevr_resolution)
            image = np.asarray(Image.fromarray(image).crop(CLEVR_CROP_BOX).resize(size, Image.BICUBIC))
        return np.ascontiguousarray(image.transpose(2, 0, 1))

    def _mask_window(self) -> tuple[slice, slice]:
        """Rows and columns of the masks to read: the CLEVR crop box when asked, else everything."""
        if self.clevr_resolution is None:
            return slice(None), slice(None)
        left, upper, right, lower = CLEVR_CROP_BOX
        return slice(upper, lower), slice(left, right)

    def _load_split(self, file: h5py.File, progress: bool) -> dict[str, tuple[torch.Tensor, Any]]:
        """The whole split, pre-processed, as tensors, each with its per-item conversion."""
        group = file[self.split]
        if self.clevr_resolution is None:
            imgs = np.ascontiguousarray(group["imgs"][()].transpose(0, 3, 1, 2))  # [N, 3, H, W]
        else:
            size = self.clevr_resolution
            imgs = np.empty((len(self), 3, size, size), dtype=np.uint8)  # [N, 3, R, R]
            description = f"crop+resize {self.path.name}"
            for index in tqdm(range(len(self)), desc=description, disable=None if progress else True):
                imgs[index] = self._preprocess_image(group["imgs"][index])  # raw split may not fit in memory
        memory: dict[str, tuple[torch.Tensor, Any]] = {"imgs": (torch.from_numpy(imgs), to_model_range)}
        if self.masks:
            masks = group["masks"][(slice(None), slice(None), *self._mask_window())]  # [N, E, Hm, Wm, 1]
            masks = np.ascontiguousarray(masks.transpose(0, 1, 4, 2, 3))  # [N, E, 1, Hm, Wm]
            memory["masks"] = (torch.from_numpy(masks), torch.Tensor.float)
        if self.factors:
            factors = np.asarray(group["factors"][()], dtype=np.float32)  # [N, E, F]
            memory["factors"] = (torch.from_numpy(factors), torch.Tensor.clone)
        return memory


def build_dataset(
    cfg: DataConfig, split: str, *, masks: bool | None = None, factors: bool | None = None
) -> MultiObjectDataset:
    """The ``split`` of the dataset named in ``cfg``, read from ``cfg.root``.

    ``masks``/``factors`` override the config's choice (evaluation needs masks even when training did
    not). A missing file is generated (seed 0, ``cfg.generate_train``/``cfg.generate_test`` images) when
    ``cfg.generate_if_missing``; otherwise it raises ``DatasetError`` saying how to generate it.
    """
    path = ensure_dataset(cfg, split)
    return MultiObjectDataset(
        path,
        split,
        masks=cfg.masks if masks is None else masks,
        factors=cfg.factors if factors is None else factors,
        clevr_resolution=cfg.clevr_resolution,
        in_memory=cfg.in_memory,
    )
