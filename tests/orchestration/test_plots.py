"""The grid's figures: curve bands (mean ± std over seeds, by step) and figures that stay readable and
bounded on a grid of hundreds of cells."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from orchestration.plots import MAX_NAMED_CELLS, curve_bands, seed_strip, training_curves


def test_curve_bands_are_the_mean_and_sample_std_over_runs_by_step():
    histories = {
        "a": {"train/nll": [(0, 1.0), (10, 3.0)]},
        "b": {"train/nll": [(0, 3.0), (10, 5.0)]},
        "c": {"train/nll": [(0, 5.0)]},  # a single point is no curve
    }
    bands = curve_bands(histories, ["a", "b", "c"], "train/nll")
    assert list(bands.index) == [0, 10]
    assert np.allclose(bands["mean"], [2.0, 4.0]) and np.allclose(bands["std"], [np.sqrt(2), np.sqrt(2)])


def test_curves_logged_at_different_steps_are_aligned_by_step():
    histories = {"a": {"k": [(0, 1.0), (10, 3.0)]}, "b": {"k": [(0, 3.0), (20, 7.0)]}}
    bands = curve_bands(histories, ["a", "b"], "k")
    assert list(bands.index) == [0, 10, 20]
    assert np.allclose(bands["mean"], [2.0, 3.0, 7.0]) and np.allclose(bands["std"], [np.sqrt(2), 0, 0])
    assert curve_bands(histories, ["a"], "missing") is None


def many_cells(n: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    cells = pd.DataFrame({"cell_key": [f"c{i}" for i in range(n)], "variant": [f"v{i}" for i in range(n)]})
    runs = pd.DataFrame(
        {
            "run_id": [f"r{i}" for i in range(n)],
            "cell_key": cells["cell_key"],
            "status": "FINISHED",
            "eval/fg_ari": np.linspace(0.1, 0.9, n),
            "diagnosis": ["collapsed" if i % 7 == 0 else "segmenting" for i in range(n)],
        }
    )
    histories = {f"r{i}": {"train/nll": [(step, 10.0 - step + i) for step in range(5)]} for i in range(n)}
    return runs, cells, histories


def test_figures_of_hundreds_of_cells_are_drawn_at_a_bounded_size(tmp_path):
    runs, cells, histories = many_cells(4 * MAX_NAMED_CELLS + 160)
    assert training_curves(histories, runs, cells, tmp_path / "curves.png")
    assert seed_strip(runs, cells, tmp_path / "seeds.png")
    for name in ("curves.png", "seeds.png"):
        width, height = Image.open(tmp_path / name).size
        assert width <= 2000 and height <= 400


def test_a_few_cells_each_get_a_line_in_the_legend(tmp_path):
    runs, cells, histories = many_cells(3)
    assert training_curves(histories, runs, cells, tmp_path / "curves.png")
    assert Image.open(tmp_path / "curves.png").size[0] > 0
