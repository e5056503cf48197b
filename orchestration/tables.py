"""Per-cell aggregates laid out as the paper's tables: Table 1 (FG-ARI % per dataset), Table 2 (ARI %,
MSE ×10⁻⁴, KL per variant and dataset) or a generic one (rows cells, columns metrics); optionally beside
the published numbers and the difference. ``orchestration.table_formats`` writes a ``Table`` out.

Every seed that is not in a number is named in a numbered note: missing, failed, running or collapsed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from orchestration import published
from orchestration.aggregate import SEED_LISTS


@dataclass(frozen=True)
class Metric:
    """How a metric is shown: column title (plain and LaTeX), the paper's scale, which way is better."""

    title: str
    latex: str
    scale: float = 1.0
    better: str | None = None  # "higher" | "lower" | None (never bold)


METRICS = {
    "eval/fg_ari": Metric("FG-ARI (%)", r"FG-ARI (\%)", 100.0, "higher"),
    "eval/ari": Metric("ARI (%)", r"ARI (\%)", 100.0, "higher"),
    "eval/mse": Metric("MSE (×10⁻⁴)", r"MSE ($\times 10^{-4}$)", 1e4, "lower"),
    "eval/kl": Metric("KL (nats)", "KL (nats)", 1.0, "lower"),
    "eval/mbo": Metric("mBO (%)", r"mBO (\%)", 100.0, "higher"),
    "wall_clock_h": Metric("wall clock (h)", "wall clock (h)", 1.0, "lower"),
}
DATASETS = {"clevr6": "CLEVR6", "multi_dsprites": "Multi-dSprites", "tetrominoes": "Tetrominoes"}
PAPER_METRICS = ("eval/fg_ari", "eval/mse", "eval/kl")  # Table 2's columns; the generic layout's default
LAYOUTS = ("generic", "table1", "table2")
DECIMALS = 1


def metric(name: str) -> Metric:
    """The display of ``name``; an unknown metric is shown as it is logged."""
    return METRICS.get(name, Metric(name, name))


@dataclass(frozen=True)
class Value:
    """A number in the table's units: ours (mean ± std over seeds), the paper's, or a signed difference."""

    mean: float
    std: float | None = None
    signed: bool = False
    bold: bool = False
    note: int | None = None


@dataclass(frozen=True)
class Text:
    text: str
    note: int | None = None


@dataclass(frozen=True)
class Header:
    text: str
    latex: str
    numeric: bool = True


Cell = Value | Text


@dataclass
class Table:
    """Headers, rows of cells, the numbered notes the cells point to, and a caption."""

    title: str
    caption: str
    headers: list[Header]
    rows: list[list[Cell]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


Lookup = Callable[[Mapping[str, object], str], "published.Published | None"]  # (labels, metric) -> paper


def _value(row: Mapping[str, object], name: str, note: int | None = None) -> Cell:
    mean = row.get(f"{name}:mean")
    if mean is None or pd.isna(mean):
        return Text("–", note)
    std = row.get(f"{name}:std")
    scale = metric(name).scale
    return Value(scale * float(mean), None if std is None or pd.isna(std) else scale * float(std), note=note)


def _paper_cells(ours: Cell, paper: published.Published | None) -> list[Cell]:
    if paper is None:
        return [Text("–"), Text("–")]
    difference = Text("–") if not isinstance(ours, Value) else Value(ours.mean - paper[0], signed=True)
    return [Value(*paper), difference]


def describe_seeds(row: Mapping[str, object], include_collapsed: bool) -> str | None:
    """The note of a cell whose number is not over all the seeds asked, or that has collapsed seeds."""
    lists = {name: list(row.get(name) or []) for name in SEED_LISTS}
    if not any(lists.values()):
        return None
    parts = [f"{row['finished']} of {row['asked']} seeds finished"]
    for name in ("missing", "failed", "running"):
        if lists[name]:
            parts.append(f"{_seeds(lists[name])} {name}")
    if lists["collapsed"]:
        where = "in the mean" if include_collapsed else "left out of the mean"
        parts.append(f"{_seeds(lists['collapsed'])} collapsed ({where})")
    return "; ".join(parts)


def _seeds(seeds: Sequence[int]) -> str:
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(str(s) for s in seeds)


def _label(row: Mapping[str, object], columns: Sequence[str]) -> str:
    return ", ".join(str(row[c]) for c in columns) or "all"


def _note(
    table: Table, row: Mapping[str, object], labels: Sequence[str], include_collapsed: bool
) -> int | None:
    text = describe_seeds(row, include_collapsed)
    if text is None:
        return None
    table.notes.append(f"{_label(row, labels)}: {text}")
    return len(table.notes)


def _bold_best(table: Table, header_metrics: Sequence[str | None]) -> None:
    """Bold the best of our values in each metric column (two or more values), ties included."""
    for column, name in enumerate(header_metrics):
        better = metric(name).better if name else None
        cells = [row[column] for row in table.rows]
        values = [round(c.mean, DECIMALS) for c in cells if isinstance(c, Value)]
        if better is None or len(values) < 2:
            continue
        best = max(values) if better == "higher" else min(values)
        for row in table.rows:
            cell = row[column]
            if isinstance(cell, Value) and round(cell.mean, DECIMALS) == best:
                row[column] = Value(cell.mean, cell.std, cell.signed, True, cell.note)


def _caption(grid: str, include_collapsed: bool, better: Sequence[str], paper: str | None) -> str:
    collapsed = "included in" if include_collapsed else "left out of"
    parts = [
        f"Grid {grid}: mean ± std (ddof=1) over seeds; seeds = finished of asked; "
        f"collapsed seeds {collapsed} the mean"
    ]
    if better:
        parts.append(f"best per column in bold ({', '.join(better)})")
    if paper:
        parts.append(f"paper = EfficientMORL, ICML 2021, {paper}; Δ = ours − paper")
    return "; ".join(parts) + "."


def _better(metrics: Sequence[str]) -> list[str]:
    return [f"{metric(m).title} {metric(m).better}" for m in metrics if metric(m).better]


def per_cell_table(
    cells: pd.DataFrame,
    grid: str,
    metrics: Sequence[str],
    labels: Sequence[str],
    include_collapsed: bool,
    lookup: Lookup | None = None,
    paper: str | None = None,
    title: str = "Results",
) -> Table:
    """One row per cell (``labels`` name it), one column per metric (with paper and Δ when looked up),
    then the seeds finished of asked."""
    metrics = [m for m in metrics if f"{m}:mean" in cells]
    headers = [Header(c, latex_escape(c), numeric=False) for c in labels]
    column_metrics: list[str | None] = [None] * len(labels)
    for name in metrics:
        headers.append(Header(metric(name).title, metric(name).latex))
        column_metrics.append(name)
        if lookup is not None:
            headers += [Header("paper", "paper"), Header("Δ", r"$\Delta$")]
            column_metrics += [None, None]
    headers.append(Header("seeds", "seeds"))
    table = Table(title, _caption(grid, include_collapsed, _better(metrics), paper), headers)
    for _, row in cells.iterrows():
        line: list[Cell] = [Text(str(row[c])) for c in labels]
        for name in metrics:
            ours = _value(row, name)
            line.append(ours)
            if lookup is not None:
                line += _paper_cells(ours, lookup(row, name))
        line.append(Text(f"{row['finished']}/{row['asked']}", _note(table, row, labels, include_collapsed)))
        table.rows.append(line)
    _bold_best(table, column_metrics)
    return table


def varying_labels(cells: pd.DataFrame, without: Sequence[str] = ()) -> list[str]:
    """The label columns that tell cells apart (constant ones say nothing in a row)."""
    fixed = {"cell_key", "asked", "finished", "n", "run_ids", *SEED_LISTS}
    columns = [c for c in cells.columns if c not in fixed and ":" not in c and c not in without]
    varying = [c for c in columns if cells[c].astype(str).nunique() > 1]
    return varying or columns[:1]


def generic(
    cells: pd.DataFrame, grid: str, metrics: Sequence[str], include_collapsed: bool, paper: bool
) -> Table:
    """Rows cells (by the labels that vary), columns metrics; no published numbers to compare with."""
    if paper:
        raise ValueError(
            "the generic layout has no published numbers; use layout=table1 or table2, or paper=false"
        )
    return per_cell_table(
        cells, grid, metrics, varying_labels(cells), include_collapsed, title=f"Results of {grid}"
    )


def table2(
    cells: pd.DataFrame, grid: str, metrics: Sequence[str], include_collapsed: bool, paper: bool
) -> Table:
    """The paper's Table 2: a row per variant and dataset; ARI %, MSE ×10⁻⁴ and KL."""
    _require(cells, ("variant", "dataset"), "table2")

    def lookup(row: Mapping[str, object], name: str) -> published.Published | None:
        return published.table2(str(row["dataset"]), str(row["variant"]), name)

    return per_cell_table(
        cells,
        grid,
        PAPER_METRICS,
        ["variant", "dataset"],
        include_collapsed,
        lookup if paper else None,
        "Table 2" if paper else None,
        title="Table 2: ablations",
    )


def table1(
    cells: pd.DataFrame, grid: str, metrics: Sequence[str], include_collapsed: bool, paper: bool
) -> Table:
    """The paper's Table 1: FG-ARI (%) with a column per dataset (and paper, Δ); a row per other setting."""
    _require(cells, ("dataset",), "table1")
    name = "eval/fg_ari"
    datasets = list(dict.fromkeys(cells["dataset"]))
    others = [c for c in varying_labels(cells, without=("dataset",)) if cells[c].astype(str).nunique() > 1]
    headers = [Header("model", "model", numeric=False)]
    column_metrics: list[str | None] = [None]
    for dataset in datasets:
        shown = DATASETS.get(dataset, dataset)
        headers.append(Header(shown, latex_escape(shown)))
        column_metrics.append(name)
        if paper:
            headers += [Header("paper", "paper"), Header("Δ", r"$\Delta$")]
            column_metrics += [None, None]
    caption = _caption(grid, include_collapsed, _better([name]), "Table 1" if paper else None)
    table = Table(
        "Table 1: foreground ARI (%)", caption.replace("over seeds", "of FG-ARI (%) over seeds"), headers
    )
    groups = cells.groupby(others, sort=False) if others else [((), cells)]
    for _, group in groups:
        row_name = _label(group.iloc[0], others) if others else "EfficientMORL (ours)"
        line: list[Cell] = [Text(row_name)]
        by_dataset = {row["dataset"]: row for _, row in group.iterrows()}
        for dataset in datasets:
            row = by_dataset.get(dataset)
            ours = (
                Text("–")
                if row is None
                else _value(row, name, _note(table, row, [*others, "dataset"], include_collapsed))
            )
            line.append(ours)
            if paper:
                line += _paper_cells(ours, published.table1(dataset))
        table.rows.append(line)
    _bold_best(table, column_metrics)
    return table


def _require(cells: pd.DataFrame, columns: Sequence[str], layout: str) -> None:
    absent = [c for c in columns if c not in cells]
    if absent:
        raise ValueError(
            f"layout={layout} needs the label column(s) {', '.join(absent)} (found: "
            f"{', '.join(varying_labels(cells)) or 'none'}); use a grid with those axes, or layout=generic"
        )


BUILDERS = {"generic": generic, "table1": table1, "table2": table2}


def build_table(
    cells: pd.DataFrame,
    grid: str,
    layout: str = "generic",
    metrics: Sequence[str] = PAPER_METRICS,
    include_collapsed: bool = True,
    paper: bool = False,
) -> Table:
    """The ``layout`` of the aggregated ``cells`` (``orchestration.aggregate.aggregate``)."""
    if layout not in BUILDERS:
        raise ValueError(f"table layout {layout!r} is not known (choose one of {', '.join(LAYOUTS)})")
    if cells.empty:
        raise ValueError(f"grid {grid} has no runs to tabulate yet")
    return BUILDERS[layout](cells, grid, metrics, include_collapsed, paper)


LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
LATEX_UNICODE = {
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
    "×10⁻⁴": r"$\times 10^{-4}$",
    "−": "$-$",
    "–": "--",
    "·": r"$\cdot$",
}


def latex_escape(text: str) -> str:
    escaped = "".join(LATEX_SPECIALS.get(char, char) for char in text)
    for unicode, latex in LATEX_UNICODE.items():
        escaped = escaped.replace(unicode, latex)
    return escaped
