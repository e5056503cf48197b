"""Paper layouts of a grid's results read from a real MLflow server, in every format; the LaTeX compiles."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess

import pandas as pd
import pytest

from orchestration.aggregate import aggregate, collect
from orchestration.table_formats import FORMATS, parse_formats, render
from orchestration.tables import Value, build_table
from tests.orchestration.tracked_grid import ToyRun, asked, log_grid

pytestmark = pytest.mark.mlflow_server

COMMAND = "python experiments/tables.py grid=toy_table2"
RP, BU = {"variant": "reversed_plusplus"}, {"variant": "bottom_up"}
TABLE2_RUNS = [
    ToyRun("rp", RP, 1, "FINISHED", {"eval/fg_ari": 0.90, "eval/mse": 1e-3, "eval/kl": 50.0}, "segmenting"),
    ToyRun("rp", RP, 2, "FINISHED", {"eval/fg_ari": 0.80, "eval/mse": 2e-3, "eval/kl": 60.0}, "segmenting"),
    ToyRun("rp", RP, 3, "FINISHED", {"eval/fg_ari": 0.10, "eval/mse": 9e-3, "eval/kl": 5.0}, "collapsed"),
    ToyRun("bu", BU, 1, "FINISHED", {"eval/fg_ari": 0.60, "eval/mse": 5e-4, "eval/kl": 80.0}, "partial"),
    ToyRun("bu", BU, 2, "FAILED"),
    ToyRun("bu", BU, 3, "MISSING"),
]
TABLE1_RUNS = [
    ToyRun(f"t1-{name}", {"dataset": name}, seed, "FINISHED", {"eval/fg_ari": value}, "segmenting", name)
    for name, values in {"tetrominoes": (0.98, 0.96), "clevr6": (0.90, 0.94)}.items()
    for seed, value in enumerate(values, 1)
]


@pytest.fixture(scope="module")
def cells(mlflow_server: str) -> pd.DataFrame:
    """Table 2's cells with collapsed seeds left out of the mean."""
    log_grid(mlflow_server, "emorl-tables", "toy_table2", TABLE2_RUNS)
    runs = collect(mlflow_server, "emorl-tables", "toy_table2")
    return aggregate(runs, asked(TABLE2_RUNS), include_collapsed=False)


@pytest.fixture(scope="module")
def table1_cells(mlflow_server: str) -> pd.DataFrame:
    log_grid(mlflow_server, "emorl-tables", "toy_table1", TABLE1_RUNS)
    return aggregate(collect(mlflow_server, "emorl-tables", "toy_table1"), asked(TABLE1_RUNS))


def table2_text(cells: pd.DataFrame, fmt: str, paper: bool = True) -> str:
    table = build_table(cells, "toy_table2", "table2", include_collapsed=False, paper=paper)
    return render(fmt, table, cells, COMMAND, {"include_collapsed": False})


def markdown_rows(text: str) -> dict[str, list[str]]:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header, _, *rows = ([cell.strip() for cell in line.strip("|").split("|")] for line in lines)
    return {"header": header, **{row[0]: row for row in rows}}


def test_markdown_round_trips_the_means_and_stds_in_paper_units(cells):
    rows = markdown_rows(table2_text(cells, "markdown", paper=False))
    assert rows["header"] == ["variant", "dataset", "FG-ARI (%)", "MSE (×10⁻⁴)", "KL (nats)", "seeds"]
    by_variant = cells.set_index("variant")
    for column, name, scale in ((2, "eval/fg_ari", 100), (3, "eval/mse", 1e4), (4, "eval/kl", 1)):
        mean, std = re.fullmatch(r"\**([\d.]+) ± ([\d.]+)\**", rows["reversed_plusplus"][column]).groups()
        assert float(mean) == round(scale * by_variant.loc["reversed_plusplus", f"{name}:mean"], 1)
        assert float(std) == round(scale * by_variant.loc["reversed_plusplus", f"{name}:std"], 1)
    assert (
        rows["reversed_plusplus"][2] == "**85.0 ± 7.1**" and rows["bottom_up"][2] == "60.0"
    )  # one seed: no std


def test_best_value_per_column_is_bold_by_direction(cells):
    table = build_table(cells, "toy_table2", "table2", include_collapsed=False)
    bold = {
        (row[0].text, table.headers[i].text)
        for row in table.rows
        for i, c in enumerate(row)
        if getattr(c, "bold", 0)
    }
    assert bold == {
        ("reversed_plusplus", "FG-ARI (%)"),  # higher is better: 85.0 over 60.0
        ("bottom_up", "MSE (×10⁻⁴)"),  # lower is better: 5.0 under 15.0
        ("reversed_plusplus", "KL (nats)"),  # lower is better: 55.0 under 80.0
    }


def test_missing_failed_and_collapsed_seeds_are_named_in_notes(cells):
    text = table2_text(cells, "markdown")
    rows = markdown_rows(text)
    assert rows["bottom_up"][-1] == "1/3 [2]" and rows["reversed_plusplus"][-1] == "3/3 [1]"
    assert (
        "[1] reversed_plusplus, tetrominoes: 3 of 3 seeds finished; seed 3 collapsed (left out of the mean)"
        in text
    )
    assert "[2] bottom_up, tetrominoes: 1 of 3 seeds finished; seed 3 missing; seed 2 failed" in text
    assert "collapsed seeds left out of the mean" in text  # the setting, in the caption


def test_paper_column_and_difference_sit_beside_each_metric(cells):
    rows = markdown_rows(table2_text(cells, "markdown"))
    assert rows["header"][2:5] == ["FG-ARI (%)", "paper", "Δ"]
    assert rows["reversed_plusplus"][3:5] == ["97.9 ± 2.4", "−12.9"]
    assert rows["bottom_up"][9:11] == ["–", "–"]  # the paper has no KL for the bottom-up prior


def test_csv_round_trips_the_numbers_and_run_ids(cells):
    text = table2_text(cells, "csv")
    assert text.startswith(f"# regenerate: {COMMAND}\n")
    seeds = {name: str for name in ("missing", "failed", "running", "collapsed")}
    back = pd.read_csv(io.StringIO(text), comment="#", dtype=seeds).set_index("variant")
    original = cells.set_index("variant")
    for column in ("eval/fg_ari:mean", "eval/fg_ari:std", "eval/mse:mean", "eval/kl:mean", "n", "asked"):
        assert back.loc["reversed_plusplus", column] == pytest.approx(
            original.loc["reversed_plusplus", column]
        )
    assert back.loc["reversed_plusplus", "run_ids"].split() == original.loc["reversed_plusplus", "run_ids"]
    assert str(back.loc["bottom_up", "failed"]) == "2" and str(back.loc["bottom_up", "missing"]) == "3"


def test_json_round_trips_the_numbers_with_run_ids_and_settings(cells):
    document = json.loads(table2_text(cells, "json"))
    assert document["command"] == COMMAND and document["include_collapsed"] is False
    rp = next(cell for cell in document["cells"] if cell["variant"] == "reversed_plusplus")
    original = cells.set_index("variant").loc["reversed_plusplus"]
    assert rp["eval/fg_ari:mean"] == pytest.approx(original["eval/fg_ari:mean"])
    assert rp["run_ids"] == original["run_ids"] and len(rp["run_ids"]) == 2 and rp["collapsed"] == [3]
    bu = next(cell for cell in document["cells"] if cell["variant"] == "bottom_up")
    assert bu["eval/fg_ari:std"] is None  # NaN for one seed is null, not invalid JSON


def test_every_format_carries_the_regenerating_command(cells):
    for fmt in FORMATS:
        assert COMMAND in table2_text(cells, fmt).splitlines()[0] or fmt == "json"


def test_latex_is_booktabs_escaped_and_bold(cells):
    text = table2_text(cells, "latex")
    assert r"\toprule" in text and r"\midrule" in text and r"\bottomrule" in text
    assert r"reversed\_plusplus" in text and r"\textbf{85.0 $\pm$ 7.1}" in text
    assert "_plusplus" not in text.replace(r"\_plusplus", "")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is absent (.ci/run installs texlive)")
def test_latex_table_compiles_with_pdflatex(cells, table1_cells, tmp_path):
    table1 = build_table(table1_cells, "toy_table1", "table1", paper=True)
    body = table2_text(cells, "latex") + render("latex", table1, table1_cells, "python experiments/tables.py")
    document = (
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n" + body + "\\end{document}\n"
    )
    (tmp_path / "tables.tex").write_text(document)
    result = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "tables.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "tables.pdf").stat().st_size > 1000
    assert "Warning" not in "".join(line for line in result.stdout.splitlines() if "Unicode" in line)


def test_table1_has_a_column_per_dataset_beside_the_paper(table1_cells):
    table = build_table(table1_cells, "toy_table1", "table1", paper=True)
    rows = markdown_rows(render("markdown", table, table1_cells, "cmd"))
    assert rows["header"] == ["model", "Tetrominoes", "paper", "Δ", "CLEVR6", "paper", "Δ"]
    assert rows["EfficientMORL (ours)"][1:4] == [
        "97.0 ± 1.4",
        "98.2 ± 1.8",
        "−1.2",
    ]  # one row: nothing to bold
    assert rows["EfficientMORL (ours)"][4:7] == ["92.0 ± 2.8", "96.2 ± 1.6", "−4.2"]


def test_a_paper_layout_needs_its_axes(table1_cells):
    with pytest.raises(ValueError, match=r"layout=table2 needs the label column.* variant"):
        build_table(table1_cells, "toy_table1", "table2")


def test_unknown_layout_and_format_are_refused_with_the_choices(cells):
    with pytest.raises(ValueError, match="generic, table1, table2"):
        build_table(cells, "toy_table2", "table3")
    with pytest.raises(ValueError, match="all or any of markdown, latex, csv, json"):
        parse_formats(["markdown", "html"])


def test_the_generic_layout_rows_are_cells_and_columns_metrics(cells):
    table = build_table(cells, "toy_table2", "generic", ["eval/fg_ari", "eval/kl"])
    assert [h.text for h in table.headers] == ["variant", "FG-ARI (%)", "KL (nats)", "seeds"]
    assert isinstance(table.rows[0][1], Value) and table.rows[0][1].mean == pytest.approx(85.0)
