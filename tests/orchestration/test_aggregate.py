"""Collect a grid's runs from a real MLflow server and aggregate them per cell, every absent seed named."""

from __future__ import annotations

import numpy as np
import pytest

from orchestration.aggregate import aggregate, asked_runs, collect
from orchestration.compose import Composer
from orchestration.grid import expand_grid
from tests.orchestration.toy_conf import write_toy_conf
from tests.orchestration.tracked_grid import ToyRun, asked, log_grid

pytestmark = pytest.mark.mlflow_server

A = {"model.prior": "reversed_plusplus"}
B = {"model.prior": "bottom_up"}
RUNS = [
    ToyRun("cellA", A, 1, "FINISHED", {"eval/fg_ari": 0.90, "eval/mse": 1e-3, "eval/kl": 50.0}, "segmenting"),
    ToyRun("cellA", A, 2, "FINISHED", {"eval/fg_ari": 0.80, "eval/mse": 2e-3, "eval/kl": 60.0}, "segmenting"),
    ToyRun("cellA", A, 3, "FINISHED", {"eval/fg_ari": 0.05, "eval/mse": 9e-3, "eval/kl": 5.0}, "collapsed"),
    ToyRun("cellB", B, 1, "FINISHED", {"eval/fg_ari": 0.60, "eval/mse": 3e-3, "eval/kl": 40.0}, "partial"),
    ToyRun("cellB", B, 2, "FAILED"),
    ToyRun("cellB", B, 3, "MISSING"),
    ToyRun("cellB", B, 4, "RUNNING"),
]


@pytest.fixture(scope="module")
def uri(mlflow_server: str) -> str:
    log_grid(mlflow_server, "emorl-aggregate", "toy", RUNS)
    log_grid(
        mlflow_server, "emorl-aggregate", "other", [ToyRun("cellC", A, 1, "FINISHED", {"eval/fg_ari": 0.5})]
    )
    return mlflow_server


@pytest.fixture(scope="module")
def runs(uri: str):
    return collect(uri, "emorl-aggregate", "toy")


def test_collect_gives_one_row_per_run_of_the_grid_with_status_and_diagnosis(runs):
    rows = runs.set_index(["cell_key", "seed"])
    assert len(runs) == 6  # the missing seed has no run; the other grid's run is not here
    assert rows.loc[("cellA", 3), "diagnosis"] == "collapsed"
    assert rows.loc[("cellB", 2), "status"] == "FAILED" and rows.loc[("cellB", 4), "status"] == "RUNNING"
    assert (
        rows.loc[("cellA", 1), "eval/kl"] == 50.0
        and rows.loc[("cellA", 1), "model.prior"] == A["model.prior"]
    )
    assert rows.loc[("cellA", 1), "dataset"] == "tetrominoes" and rows.loc[("cellA", 1), "wall_clock_h"] >= 0
    assert runs["run_id"].is_unique


def test_aggregate_is_mean_std_ddof1_and_n_over_finished_seeds(runs):
    cells = aggregate(runs, asked(RUNS)).set_index("cell_key")
    assert cells.loc["cellA", "eval/fg_ari:mean"] == pytest.approx(np.mean([0.9, 0.8, 0.05]))
    assert cells.loc["cellA", "eval/fg_ari:std"] == pytest.approx(np.std([0.9, 0.8, 0.05], ddof=1))
    assert (cells.loc["cellA", "n"], cells.loc["cellA", "finished"], cells.loc["cellA", "asked"]) == (3, 3, 3)
    assert (cells.loc["cellB", "n"], cells.loc["cellB", "finished"], cells.loc["cellB", "asked"]) == (1, 1, 4)
    assert np.isnan(cells.loc["cellB", "eval/fg_ari:std"])  # one seed has no sample std


def test_missing_failed_running_and_collapsed_seeds_are_named(runs):
    cells = aggregate(runs, asked(RUNS)).set_index("cell_key")
    assert cells.loc["cellB", "missing"] == [3]
    assert cells.loc["cellB", "failed"] == [2]
    assert cells.loc["cellB", "running"] == [4]
    assert cells.loc["cellA", "collapsed"] == [3] and cells.loc["cellB", "collapsed"] == []


def test_collapsed_seeds_can_be_left_out_of_the_mean_and_stay_named(runs):
    cells = aggregate(runs, asked(RUNS), include_collapsed=False).set_index("cell_key")
    assert cells.loc["cellA", "eval/fg_ari:mean"] == pytest.approx(0.85)
    assert cells.loc["cellA", "n"] == 2 and cells.loc["cellA", "finished"] == 3
    assert cells.loc["cellA", "collapsed"] == [3]


def test_run_ids_are_those_of_the_seeds_in_the_mean(runs):
    cells = aggregate(runs, asked(RUNS), include_collapsed=False).set_index("cell_key")
    by_seed = runs.set_index(["cell_key", "seed"])["run_id"]
    assert cells.loc["cellA", "run_ids"] == [by_seed[("cellA", 1)], by_seed[("cellA", 2)]]


def test_bootstrap_interval_brackets_the_mean(runs):
    cells = aggregate(runs, asked(RUNS), bootstrap=500).set_index("cell_key")
    low, high = cells.loc["cellA", "eval/fg_ari:ci_low"], cells.loc["cellA", "eval/fg_ari:ci_high"]
    assert low < cells.loc["cellA", "eval/fg_ari:mean"] < high


def test_without_the_grid_the_runs_found_are_the_seeds_asked(runs):
    cells = aggregate(runs).set_index("cell_key")
    assert cells.loc["cellB", "asked"] == 3 and cells.loc["cellB", "missing"] == []


def test_asked_runs_come_from_the_grids_specs(tmp_path):
    composer = Composer("toy", conf_dir=write_toy_conf(tmp_path, tmp_path / "out"))
    grid = {"name": "toy", "axes": [{"product": {"model.prior": ["reversed", "bottom_up"]}}], "seeds": [1, 2]}
    specs = expand_grid(grid, composer)
    frame = asked_runs(specs)
    assert list(frame["seed"]) == [1, 2, 1, 2] and frame["cell_key"].nunique() == 2
    assert set(frame["model.prior"]) == {"reversed", "bottom_up"} and set(frame["dataset"]) == {"tetrominoes"}
