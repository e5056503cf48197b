"""Aggregation from MLflow (by grid tag) and the rendered tables: mean ± std (n) per cell."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from orchestration.aggregate import grid_results, summarize
from orchestration.tables import render


@pytest.fixture(scope="module")
def uri(tmp_path_factory) -> str:
    """A real MLflow store with a finished 2 cells × 2 seeds grid, one failed run and another grid's run."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('tables') / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("emorl-toy")
    runs = [
        ("toy", "cellA", "reversed_plusplus", 1, "FINISHED", 0.90),
        ("toy", "cellA", "reversed_plusplus", 2, "FINISHED", 0.80),
        ("toy", "cellB", "bottom_up", 1, "FINISHED", 0.60),
        ("toy", "cellB", "bottom_up", 2, "FAILED", 0.10),
        ("other", "cellC", "reversed", 1, "FINISHED", 0.50),
    ]
    for grid, cell, prior, seed, status, fg_ari in runs:
        tags = {"grid": grid, "run_key": f"{cell}-{seed}", "cell_key": cell, "seed": str(seed)}
        tags["diagnosis"] = "segmenting" if fg_ari >= 0.8 else "collapsed"
        run = client.create_run(experiment_id, tags={**tags, "label.model.prior": prior})
        client.log_metric(run.info.run_id, "eval/fg_ari", fg_ari)
        client.log_metric(run.info.run_id, "eval/mse", 1e-3 * seed)
        client.set_terminated(run.info.run_id, status)
    return uri


def test_results_hold_only_finished_runs_of_the_grid(uri):
    results = grid_results(uri, "emorl-toy", "toy")
    assert sorted(results["cell_key"]) == ["cellA", "cellA", "cellB"]
    assert set(results["model.prior"]) == {"reversed_plusplus", "bottom_up"}


def test_summary_is_mean_std_and_n_per_cell(uri):
    summary = summarize(grid_results(uri, "emorl-toy", "toy")).set_index("cell_key")
    assert summary.loc["cellA", "eval/fg_ari:mean"] == pytest.approx(0.85)
    assert summary.loc["cellA", "eval/fg_ari:std"] == pytest.approx(pd.Series([0.9, 0.8]).std())
    assert summary.loc["cellA", "n"] == 2
    assert summary.loc["cellB", "eval/fg_ari:std"] == 0.0  # one seed
    assert summary.loc["cellA", "collapsed"] == 0 and summary.loc["cellB", "collapsed"] == 1


def test_results_carry_each_runs_diagnosis(uri):
    results = grid_results(uri, "emorl-toy", "toy").set_index(["cell_key", "seed"])
    assert results.loc[("cellA", 1), "diagnosis"] == "segmenting"
    assert results.loc[("cellB", 1), "diagnosis"] == "collapsed"


def test_markdown_table_shows_paper_units(uri):
    table = render(summarize(grid_results(uri, "emorl-toy", "toy")), "markdown")
    assert (
        "FG-ARI (%)" in table and "85.0 ± 7.1" in table and "MSE (×10⁻⁴)" in table and "15.0 ± 7.1" in table
    )


def test_latex_table_is_a_booktabs_tabular(uri):
    table = render(summarize(grid_results(uri, "emorl-toy", "toy")), "latex")
    assert table.startswith(r"\begin{tabular}") and r"\toprule" in table and r"85.0 $\pm$ 7.1" in table


def test_csv_table_keeps_raw_numbers(uri):
    table = render(summarize(grid_results(uri, "emorl-toy", "toy")), "csv")
    header, *rows = table.strip().splitlines()
    assert "eval/fg_ari:mean" in header and len(rows) == 2


def test_unknown_format_is_refused_with_the_choices(uri):
    with pytest.raises(ValueError, match="markdown, latex, csv"):
        render(summarize(grid_results(uri, "emorl-toy", "toy")), "html")
