"""The reader of the reference layout (docs/data.md): items, CLEVR geometry, workers, samplers, bad input."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from emorl.config import DataConfig
from emorl.data.layout import DATASETS, DatasetError, dataset_path
from emorl.data.reader import MultiObjectDataset, build_dataset


def write_h5(path: Path, split: str = "train", **arrays: np.ndarray) -> Path:
    """A hand-built file with one split group holding ``arrays``."""
    with h5py.File(path, "w") as file:
        group = file.create_group(split)
        for key, value in arrays.items():
            group[key] = value
    return path


def index_images(n: int, size: int = 8) -> np.ndarray:
    """[n, size, size, 3] uint8 images whose every pixel holds the image's index."""
    return np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, size, size, 3)).copy()


def decoded_indices(batch: dict[str, torch.Tensor]) -> list[int]:
    """Undo the [−1, 1] scaling of ``index_images`` and read each image's index back."""
    return torch.round((batch["imgs"][:, 0, 0, 0] + 1) * 255 / 2).long().tolist()


def coordinate_clevr_file(path: Path) -> Path:
    """A 240×320 CLEVR-sized file: the image's red channel is the row and its green channel the column
    (clipped to 255); mask 0 holds the row, mask 1 the column modulo 256, mask 2 the column // 256."""
    rows, cols = np.meshgrid(np.arange(240), np.arange(320), indexing="ij")  # [240, 320]
    image = np.stack([rows, np.minimum(cols, 255), np.zeros_like(rows)], axis=-1).astype(np.uint8)
    masks = np.stack([rows, cols % 256, cols // 256], axis=0)[..., None].astype(np.uint8)  # [3, 240, 320, 1]
    return write_h5(path, imgs=image[None], masks=masks[None])


# ---------------------------------------------------------------------------------------------- items


@pytest.mark.parametrize("name", list(DATASETS))
def test_generated_items_have_reference_shapes_dtypes_and_ranges(name: str, request: pytest.FixtureRequest):
    root = request.getfixturevalue(f"{name}_root")
    spec = DATASETS[name]
    dataset = MultiObjectDataset(dataset_path(name, root, "test"), "test", masks=True, factors=True)
    item = dataset[len(dataset) - 1]
    height, width = spec.image_size
    assert item["imgs"].shape == (3, height, width) and item["imgs"].dtype == torch.float32
    assert item["imgs"].min() >= -1.0 and item["imgs"].max() <= 1.0
    assert (
        item["masks"].shape == (spec.max_entities, 1, height, width) and item["masks"].dtype == torch.float32
    )
    assert set(item["masks"].unique().tolist()) <= {0.0, 255.0}
    assert item["factors"].shape == (spec.max_entities, spec.num_factors)
    assert item["factors"].dtype == torch.float32


def test_items_hold_only_what_was_asked(tetrominoes_root: Path):
    dataset = MultiObjectDataset(tetrominoes_root / "tetrominoes.h5", "train")
    assert set(dataset[0]) == {"imgs"}
    assert len(dataset) == 48


def test_pixels_are_scaled_from_0_255_to_minus_1_1(tmp_path: Path):
    image = np.array([0, 51, 255], dtype=np.uint8).reshape(1, 1, 3).repeat(2, axis=0)[None]  # [1, 2, 1, 3]
    dataset = MultiObjectDataset(write_h5(tmp_path / "scale.h5", imgs=image), "train")
    expected = torch.tensor([-1.0, 51 / 255 * 2 - 1, 1.0]).view(3, 1, 1).expand(3, 2, 1)
    torch.testing.assert_close(dataset[0]["imgs"], expected)


def test_masks_are_transposed_to_entity_channel_height_width(tmp_path: Path):
    masks = np.zeros((1, 2, 4, 5, 1), dtype=np.uint8)
    masks[0, 1, 3, 4, 0] = 255
    path = write_h5(tmp_path / "m.h5", imgs=np.zeros((1, 4, 5, 3), np.uint8), masks=masks)
    item = MultiObjectDataset(path, "train", masks=True)[0]
    assert item["masks"].shape == (2, 1, 4, 5)
    assert item["masks"][1, 0, 3, 4] == 255 and item["masks"].sum() == 255


@pytest.mark.parametrize("split", ["train", "test"])
def test_in_memory_items_equal_disk_items(tetrominoes_root: Path, split: str):
    path = dataset_path("tetrominoes", tetrominoes_root, split)
    disk = MultiObjectDataset(path, split, masks=True, factors=True)
    memory = MultiObjectDataset(path, split, masks=True, factors=True, in_memory=True, progress=False)
    for index in range(len(disk)):
        for key, value in disk[index].items():
            assert torch.equal(memory[index][key], value), (index, key)


def test_in_memory_batches_equal_disk_batches(tetrominoes_root: Path):
    path = tetrominoes_root / "tetrominoes.h5"
    loaders = [
        DataLoader(MultiObjectDataset(path, "train", masks=True, in_memory=in_memory), batch_size=5)
        for in_memory in (False, True)
    ]
    for disk_batch, memory_batch in zip(*loaders, strict=True):
        assert disk_batch.keys() == memory_batch.keys()
        for key in disk_batch:
            assert torch.equal(disk_batch[key], memory_batch[key])


def test_in_memory_items_do_not_share_storage_with_the_split(tetrominoes_root: Path):
    dataset = MultiObjectDataset(tetrominoes_root / "tetrominoes.h5", "train", factors=True, in_memory=True)
    dataset[0]["factors"].fill_(-7.0)
    assert (dataset[0]["factors"] != -7.0).any()


# ---------------------------------------------------------------------------------------------- CLEVR


@pytest.mark.parametrize("in_memory", [False, True])
def test_clevr_masks_are_cropped_to_rows_29_220_and_cols_64_255_without_resizing(tmp_path: Path, in_memory):
    dataset = MultiObjectDataset(
        coordinate_clevr_file(tmp_path / "coords.h5"),
        "train",
        masks=True,
        clevr_resolution=96,
        in_memory=in_memory,
    )
    masks = dataset[0]["masks"]  # [3, 1, 192, 192]
    assert masks.shape == (3, 1, 192, 192)
    rows = masks[0, 0, :, 0].long()
    cols = (masks[1, 0, 0, :] + 256 * masks[2, 0, 0, :]).long()
    assert rows.tolist() == list(range(29, 221))
    assert cols.tolist() == list(range(64, 256))


@pytest.mark.parametrize("resolution", [96, 128])
def test_clevr_images_are_cropped_then_resized(tmp_path: Path, resolution: int):
    dataset = MultiObjectDataset(
        coordinate_clevr_file(tmp_path / "c.h5"), "train", clevr_resolution=resolution
    )
    image = dataset[0]["imgs"]
    assert image.shape == (3, resolution, resolution)
    pixels = torch.round((image + 1) * 255 / 2)  # back to 0..255
    # each output pixel samples the centre of its (192/R)-pixel footprint inside the crop box
    centre = (torch.arange(resolution) + 0.5) * (192 / resolution) - 0.5
    row_error = pixels[0] - (29 + centre)[:, None]
    col_error = pixels[1] - (64 + centre)[None, :]
    tolerance = 0.5 if resolution == 96 else 0.25  # rounding of exact half-way values at 2x downsampling
    assert row_error.abs().max() <= tolerance + 1e-4
    assert col_error.abs().max() <= tolerance + 1e-4


@pytest.mark.parametrize("resolution", [96, 128])
def test_generated_clevr6_items_are_resized_and_masks_stay_192(clevr6_root: Path, resolution: int):
    cfg = DataConfig(name="clevr6", root=str(clevr6_root), clevr_resolution=resolution)
    item = build_dataset(cfg, "test", masks=True, factors=True)[0]
    assert item["imgs"].shape == (3, resolution, resolution)
    assert item["masks"].shape == (11, 1, 192, 192)
    assert item["factors"].shape == (11, 12)


def test_generated_clevr6_in_memory_items_equal_disk_items(clevr6_root: Path):
    path = clevr6_root / "clevr6_with_masks_and_factors_test.h5"
    disk = MultiObjectDataset(path, "test", masks=True, clevr_resolution=96)
    memory = MultiObjectDataset(path, "test", masks=True, clevr_resolution=96, in_memory=True, progress=False)
    for index in (0, len(disk) - 1):
        assert torch.equal(disk[index]["imgs"], memory[index]["imgs"])
        assert torch.equal(disk[index]["masks"], memory[index]["masks"])


def test_clevr_resolution_needs_240_by_320_images(tmp_path: Path):
    path = write_h5(tmp_path / "small.h5", imgs=np.zeros((2, 64, 64, 3), np.uint8))
    with pytest.raises(DatasetError, match=r"small\.h5 train/imgs has shape \[2, 64, 64, 3\].*240, 320"):
        MultiObjectDataset(path, "train", clevr_resolution=96)


def test_clevr_resolution_must_be_96_or_128(tmp_path: Path):
    with pytest.raises(DatasetError, match=r"clevr_resolution=64 .*\(96, 128\)"):
        MultiObjectDataset(coordinate_clevr_file(tmp_path / "c.h5"), "train", clevr_resolution=64)


# ---------------------------------------------------------------------------------------------- workers


@pytest.mark.parametrize("in_memory", [False, True])
def test_two_workers_read_every_index_exactly_once(tmp_path: Path, in_memory: bool):
    dataset = MultiObjectDataset(
        write_h5(tmp_path / "i.h5", imgs=index_images(50)), "train", in_memory=in_memory
    )
    dataset[0]  # the parent holds an open handle before the workers fork
    loader = DataLoader(dataset, batch_size=4, shuffle=True, num_workers=2)
    seen = [index for batch in loader for index in decoded_indices(batch)]
    assert sorted(seen) == list(range(50))


def test_two_distributed_sampler_ranks_partition_the_indices(tmp_path: Path):
    dataset = MultiObjectDataset(write_h5(tmp_path / "i.h5", imgs=index_images(50)), "train")
    per_rank = []
    for rank in range(2):
        sampler = DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=3)
        loader = DataLoader(dataset, batch_size=4, sampler=sampler, num_workers=1)
        per_rank.append([index for batch in loader for index in decoded_indices(batch)])
    assert len(per_rank[0]) == len(per_rank[1]) == 25
    assert not set(per_rank[0]) & set(per_rank[1])
    assert sorted(per_rank[0] + per_rank[1]) == list(range(50))


def test_dataset_pickles_after_opening_its_file(tetrominoes_root: Path):
    dataset = MultiObjectDataset(tetrominoes_root / "tetrominoes.h5", "train", masks=True)
    first = dataset[3]
    copy = pickle.loads(pickle.dumps(dataset))
    assert copy._file is None
    assert torch.equal(copy[3]["imgs"], first["imgs"]) and torch.equal(copy[3]["masks"], first["masks"])


def test_file_stays_open_between_items(tetrominoes_root: Path):
    dataset = MultiObjectDataset(tetrominoes_root / "tetrominoes.h5", "train")
    dataset[0]
    handle = dataset._file
    dataset[1]
    assert dataset._file is handle and handle.id.valid


def test_close_releases_the_handle_and_the_next_read_reopens(tetrominoes_root: Path):
    dataset = MultiObjectDataset(tetrominoes_root / "tetrominoes.h5", "train")
    first = dataset[5]["imgs"]
    handle = dataset._file
    dataset.close()
    assert not handle.id.valid
    assert torch.equal(dataset[5]["imgs"], first)


# ---------------------------------------------------------------------------------------------- build_dataset


def test_build_dataset_resolves_the_reference_file_from_the_root(tetrominoes_root: Path):
    cfg = DataConfig(name="tetrominoes", root=str(tetrominoes_root))
    dataset = build_dataset(cfg, "test")
    assert dataset.path == tetrominoes_root / "tetrominoes_test.h5" and len(dataset) == 16


def test_build_dataset_masks_and_factors_override_the_config(tetrominoes_root: Path):
    cfg = DataConfig(name="tetrominoes", root=str(tetrominoes_root), masks=False)
    assert set(build_dataset(cfg, "test", masks=True, factors=True)[0]) == {"imgs", "masks", "factors"}


def test_build_dataset_missing_file_says_how_to_generate_it(tmp_path: Path):
    cfg = DataConfig(name="multi_dsprites", root=str(tmp_path))
    with pytest.raises(
        DatasetError,
        match=r"multi_dsprites_colored_on_grayscale\.h5 does not exist.*"
        r"emorl-data generate multi_dsprites --root",
    ):
        build_dataset(cfg, "train")


def test_build_dataset_generates_a_missing_file_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture):
    cfg = DataConfig(
        name="tetrominoes", root=str(tmp_path), generate_if_missing=True, generate_train=6, generate_test=3
    )
    dataset = build_dataset(cfg, "test")
    assert len(dataset) == 3 and (tmp_path / "tetrominoes.h5").is_file()
    assert "generating tetrominoes" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- bad input


def test_dataset_error_is_a_value_error():
    assert issubclass(DatasetError, ValueError)


def test_missing_file_is_named(tmp_path: Path):
    with pytest.raises(
        DatasetError, match=r"tetrominoes\.h5 does not exist.*emorl-data generate tetrominoes"
    ):
        MultiObjectDataset(tmp_path / "tetrominoes.h5", "train")


def test_missing_split_group_names_the_group_found_instead(tmp_path: Path):
    path = write_h5(tmp_path / "tetrominoes.h5", "test", imgs=np.zeros((1, 35, 35, 3), np.uint8))
    with pytest.raises(DatasetError) as error:
        MultiObjectDataset(path, "train")
    assert str(error.value).startswith("tetrominoes.h5 has no group 'train' (found: 'test'); pass split=test")
    assert "emorl-data generate tetrominoes --root" in str(error.value)


def test_unknown_split_name_is_rejected(tetrominoes_root: Path):
    with pytest.raises(DatasetError, match=r"split='val'.*'train', 'test'"):
        MultiObjectDataset(tetrominoes_root / "tetrominoes.h5", "val")


def test_missing_imgs_array_is_named(tmp_path: Path):
    path = write_h5(tmp_path / "x.h5", masks=np.zeros((1, 2, 4, 4, 1), np.uint8))
    with pytest.raises(DatasetError, match=r"x\.h5 group 'train' has no 'imgs' \(found: 'masks'\)"):
        MultiObjectDataset(path, "train")


def test_wrong_image_rank_names_key_expected_and_found(tmp_path: Path):
    path = write_h5(tmp_path / "x.h5", imgs=np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(
        DatasetError, match=r"x\.h5 train/imgs has shape \[2, 8, 8\] \(rank 3\), expected \[N, H, W, 3\]"
    ):
        MultiObjectDataset(path, "train")


def test_wrong_image_size_for_a_reference_file_names_the_expected_size(tmp_path: Path):
    path = write_h5(tmp_path / "tetrominoes.h5", imgs=np.zeros((2, 64, 64, 3), np.uint8))
    with pytest.raises(
        DatasetError, match=r"tetrominoes\.h5 train/imgs has shape \[2, 64, 64, 3\].*\[N, 35, 35, 3\]"
    ):
        MultiObjectDataset(path, "train")


def test_wrong_image_dtype_names_expected_and_found(tmp_path: Path):
    path = write_h5(tmp_path / "x.h5", imgs=np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(DatasetError, match=r"x\.h5 train/imgs has dtype float32, expected uint8"):
        MultiObjectDataset(path, "train")


def test_wrong_mask_dtype_names_expected_and_found(tmp_path: Path):
    path = write_h5(tmp_path / "x.h5", imgs=np.zeros((2, 8, 8, 3), np.uint8), masks=np.zeros((2, 3, 8, 8, 1)))
    with pytest.raises(DatasetError, match=r"x\.h5 train/masks has dtype float64, expected uint8"):
        MultiObjectDataset(path, "train", masks=True)


def test_wrong_factor_dtype_names_expected_and_found(tmp_path: Path):
    path = write_h5(
        tmp_path / "x.h5", imgs=np.zeros((2, 8, 8, 3), np.uint8), factors=np.zeros((2, 3, 4), np.int64)
    )
    with pytest.raises(DatasetError, match=r"x\.h5 train/factors has dtype int64, expected a float dtype"):
        MultiObjectDataset(path, "train", factors=True)


def test_wrong_mask_shape_names_expected_and_found(tmp_path: Path):
    path = write_h5(
        tmp_path / "x.h5", imgs=np.zeros((2, 8, 8, 3), np.uint8), masks=np.zeros((2, 3, 8, 7, 1), np.uint8)
    )
    with pytest.raises(
        DatasetError, match=r"x\.h5 train/masks has shape \[2, 3, 8, 7, 1\].*\[2, E, 8, 8, 1\]"
    ):
        MultiObjectDataset(path, "train", masks=True)


def test_wrong_entity_count_for_a_reference_file_is_named(tmp_path: Path):
    path = write_h5(
        tmp_path / "tetrominoes.h5",
        imgs=np.zeros((2, 35, 35, 3), np.uint8),
        masks=np.zeros((2, 6, 35, 35, 1), np.uint8),
    )
    with pytest.raises(DatasetError, match=r"train/masks has shape \[2, 6, 35, 35, 1\].*\[2, 4, 35, 35, 1\]"):
        MultiObjectDataset(path, "train", masks=True)


def test_masks_requested_but_absent_says_how_to_fix(tmp_path: Path):
    path = write_h5(tmp_path / "x.h5", imgs=np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(
        DatasetError, match=r"x\.h5 group 'train' has no 'masks' \(found: 'imgs'\).*masks=false"
    ):
        MultiObjectDataset(path, "train", masks=True)


def test_factors_requested_but_absent_says_how_to_fix(tmp_path: Path):
    path = write_h5(tmp_path / "x.h5", imgs=np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(DatasetError, match=r"x\.h5 group 'train' has no 'factors'.*factors=false"):
        MultiObjectDataset(path, "train", factors=True)


def test_mismatched_n_between_imgs_and_masks_is_named(tmp_path: Path):
    path = write_h5(
        tmp_path / "x.h5", imgs=np.zeros((6, 8, 8, 3), np.uint8), masks=np.zeros((5, 2, 8, 8, 1), np.uint8)
    )
    with pytest.raises(DatasetError, match=r"x\.h5 train/masks holds 5 items but train/imgs holds 6"):
        MultiObjectDataset(path, "train")


def test_mismatched_n_between_imgs_and_factors_is_named(tmp_path: Path):
    path = write_h5(
        tmp_path / "x.h5", imgs=np.zeros((6, 8, 8, 3), np.uint8), factors=np.zeros((7, 2, 3), np.float32)
    )
    with pytest.raises(DatasetError, match=r"x\.h5 train/factors holds 7 items but train/imgs holds 6"):
        MultiObjectDataset(path, "train")


def test_truncated_file_is_named(tetrominoes_root: Path, tmp_path: Path):
    data = (tetrominoes_root / "tetrominoes.h5").read_bytes()
    path = tmp_path / "tetrominoes.h5"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"tetrominoes\.h5 is not a readable HDF5 file.*truncated"):
        MultiObjectDataset(path, "train")


def test_non_hdf5_file_is_named(tmp_path: Path):
    path = tmp_path / "clevr6_with_masks_train.h5"
    path.write_text("not an hdf5 file\n")
    with pytest.raises(
        DatasetError,
        match=r"clevr6_with_masks_train\.h5 is not a readable HDF5 file.*"
        r"emorl-data generate clevr6",
    ):
        MultiObjectDataset(path, "train")
