"""``emorl-data generate | check | summary``, run as a real subprocess and in-process."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emorl.data.cli import main


def emorl_data(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "emorl.data.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_generate_then_check_then_summary_end_to_end(tmp_path: Path):
    root = str(tmp_path / "data")
    generated = emorl_data(
        "generate",
        "tetrominoes",
        "--root",
        root,
        "--train",
        "12",
        "--test",
        "4",
        "--seed",
        "3",
        "--no-progress",
    )
    assert generated.returncode == 0, generated.stderr
    assert "Wrote tetrominoes.h5, tetrominoes_test.h5 and updated manifest.json" in generated.stdout

    checked = emorl_data("check", "--root", root, "--no-progress")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "All 2 files OK." in checked.stdout

    summary = emorl_data("summary", "--root", root, "tetrominoes", "--no-progress")
    assert summary.returncode == 0, summary.stdout + summary.stderr
    assert "tetrominoes.h5   N=12" in summary.stdout and "tetrominoes_test.h5   N=4" in summary.stdout
    assert "masks    uint8    [12, 4, 35, 35, 1]" in summary.stdout
    assert "sha256 ok" in summary.stdout
    assert " 3  " in summary.stdout and "12 (100%)" in summary.stdout  # every image holds 3 tetrominoes


def test_check_exits_non_zero_and_names_a_damaged_file(tetrominoes_root: Path, tmp_path: Path):
    root = Path(shutil.copytree(tetrominoes_root, tmp_path / "root"))
    path = root / "tetrominoes_test.h5"
    data = bytearray(path.read_bytes())
    data[-50] ^= 0xFF
    path.write_bytes(bytes(data))
    checked = emorl_data("check", "--root", str(root), "--no-progress")
    assert checked.returncode == 1
    assert "FAILED tetrominoes_test.h5" in checked.stdout
    assert "1 problem(s) in 1 of 2 files." in checked.stdout


def test_check_of_an_empty_root_exits_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture):
    assert main(["check", "--root", str(tmp_path), "--no-progress"]) == 1
    assert "No datasets under" in capsys.readouterr().out


def test_unknown_dataset_name_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture):
    assert main(["check", "--root", str(tmp_path), "clevr7"]) == 2
    assert "unknown dataset 'clevr7'" in capsys.readouterr().err


def test_summary_shows_the_objects_per_image_histogram(
    multi_dsprites_root: Path, capsys: pytest.CaptureFixture
):
    assert main(["summary", "--root", str(multi_dsprites_root), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "factors  float32  [48, 6, 9]" in out
    histogram = [line.split() for line in out.splitlines() if "%)" in line]
    objects = {int(row[0]) for row in histogram}
    assert objects <= {2, 3, 4, 5}
    assert sum(int(row[-2]) for row in histogram) == 48 + 16
