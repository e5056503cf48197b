"""The writer's manifest and the checks of ``emorl-data check`` (layout, size, N, SHA-256)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from emorl.data.integrity import MANIFEST_NAME, check_root, read_manifest
from emorl.data.layout import DatasetError
from emorl.data.writer import generator_version, write_dataset


@pytest.fixture
def root_copy(tetrominoes_root: Path, tmp_path: Path) -> Path:
    """A private copy of the tetrominoes root that a test may damage."""
    return Path(shutil.copytree(tetrominoes_root, tmp_path / "root"))


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_manifest_records_checksum_size_counts_seed_and_version(tetrominoes_root: Path):
    manifest = read_manifest(tetrominoes_root)
    assert set(manifest) == {"tetrominoes.h5", "tetrominoes_test.h5"}
    for split, name, n in (("train", "tetrominoes.h5", 48), ("test", "tetrominoes_test.h5", 16)):
        entry, path = manifest[name], tetrominoes_root / name
        assert entry.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert entry.size == path.stat().st_size
        assert (entry.dataset, entry.split, entry.n, entry.seed) == ("tetrominoes", split, n, 0)
        assert entry.generator_version == generator_version()


def test_fresh_root_passes_every_check(tetrominoes_root: Path):
    checks = check_root(tetrominoes_root, progress=False)
    assert [check.path.name for check in checks] == ["tetrominoes.h5", "tetrominoes_test.h5"]
    assert all(check.ok and check.checksum == "ok" and not check.warnings for check in checks)


def test_flipped_data_byte_is_caught_by_the_checksum(root_copy: Path):
    path = root_copy / "tetrominoes.h5"
    flip_byte(path, path.stat().st_size - 100)
    check = check_root(root_copy, progress=False)[0]
    assert check.checksum == "MISMATCH" and not check.ok
    assert any("tetrominoes.h5 has SHA-256" in problem for problem in check.problems)


def test_truncated_file_fails_size_and_layout_checks(root_copy: Path):
    path = root_copy / "tetrominoes_test.h5"
    path.write_bytes(path.read_bytes()[:1000])
    check = check_root(root_copy, progress=False)[1]
    assert not check.ok
    assert any("not a readable HDF5 file" in problem for problem in check.problems)
    assert any("has 1000 bytes" in problem for problem in check.problems)


def test_missing_file_of_a_dataset_is_reported(root_copy: Path):
    (root_copy / "tetrominoes_test.h5").unlink()
    checks = check_root(root_copy, progress=False)
    assert checks[0].ok and not checks[1].ok
    assert "tetrominoes_test.h5 is missing" in checks[1].problems[0]


def test_file_not_in_manifest_is_layout_checked_with_a_warning(root_copy: Path):
    (root_copy / MANIFEST_NAME).unlink()
    checks = check_root(root_copy, progress=False)
    assert all(check.ok and check.checksum == "not in manifest" for check in checks)
    assert all("checksum cannot be verified" in check.warnings[0] for check in checks)


def test_layout_problem_is_reported_by_the_check(tmp_path: Path):
    path = tmp_path / "tetrominoes.h5"
    with h5py.File(path, "w") as file:
        file.create_group("test")["imgs"] = np.zeros((2, 35, 35, 3), np.uint8)
    check = check_root(tmp_path, progress=False)[0]
    assert any("has no group 'train' (found: 'test')" in problem for problem in check.problems)


def test_corrupt_manifest_is_named(root_copy: Path):
    (root_copy / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(DatasetError, match=r"manifest\.json is not a valid manifest"):
        read_manifest(root_copy)


def test_writing_a_second_dataset_keeps_the_first_in_the_manifest(root_copy: Path):
    write_dataset("multi_dsprites", root_copy, 3, 2, seed=1, progress=False)
    manifest = read_manifest(root_copy)
    assert {"tetrominoes.h5", "multi_dsprites_colored_on_grayscale_test.h5"} <= set(manifest)
    assert json.loads((root_copy / MANIFEST_NAME).read_text())["format"] == 1


def test_same_seed_writes_byte_identical_files(tetrominoes_root: Path, tmp_path: Path):
    write_dataset("tetrominoes", tmp_path, 48, 16, seed=0, progress=False)
    assert read_manifest(tmp_path) == read_manifest(tetrominoes_root)


def test_train_and_test_splits_hold_different_images(tetrominoes_root: Path):
    with (
        h5py.File(tetrominoes_root / "tetrominoes.h5") as train,
        h5py.File(tetrominoes_root / "tetrominoes_test.h5") as test,
    ):
        assert not np.array_equal(train["train/imgs"][:16], test["test/imgs"][:])


def test_writer_refuses_an_empty_split(tmp_path: Path):
    with pytest.raises(DatasetError, match=r"tetrominoes: the test split needs at least 1 image, got 0"):
        write_dataset("tetrominoes", tmp_path, 4, 0, seed=0, progress=False)


def test_writer_leaves_only_the_two_files_and_the_manifest(tetrominoes_root: Path):
    assert sorted(path.name for path in tetrominoes_root.iterdir()) == [
        MANIFEST_NAME,
        "tetrominoes.h5",
        "tetrominoes_test.h5",
    ]
