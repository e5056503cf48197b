"""A grid's results as files and in MLflow: collect, aggregate, lay out, write every format (and the plots)
under ``<output_root>/<grid>/tables/``, and attach them to the grid's table run.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from orchestration.aggregate import aggregate, asked_runs, collect
from orchestration.run_spec import RunSpec
from orchestration.table_formats import FORMATS, markdown, parse_formats, render
from orchestration.tables import LAYOUTS, PAPER_METRICS, build_table
from orchestration.tracking.grid_runs import TableRun, log_tables


@dataclass(frozen=True)
class ReportSettings:
    """What the tables show: the entry points' ``tables`` keys (experiments/conf/ablation_grid.yaml)."""

    layout: str = "generic"  # generic | table1 | table2
    formats: Sequence[str] = tuple(FORMATS)
    metrics: Sequence[str] = PAPER_METRICS
    include_collapsed: bool = True
    paper: bool = False
    bootstrap: int = 0  # resamples for 95 % intervals in CSV/JSON; 0: none
    plots: bool = True

    @classmethod
    def from_config(cls, tables: Mapping[str, object], grid: Mapping[str, object]) -> ReportSettings:
        """From the entry points' ``tables`` keys; a null layout or paper is the grid's ``table`` choice (its
        paper column only with its own layout)."""
        chosen = dict(grid.get("table") or {})
        layout = tables.get("layout") or chosen.get("layout") or "generic"
        if layout not in LAYOUTS:
            raise ValueError(f"tables.layout={layout!r} is not known (choose one of {', '.join(LAYOUTS)})")
        paper = tables.get("paper")
        if paper is None:
            paper = chosen.get("paper", False) if layout == chosen.get("layout") else False
        return cls(
            layout=str(layout),
            formats=tuple(parse_formats(tables.get("formats", "all"))),
            metrics=tuple(tables.get("metrics") or PAPER_METRICS),
            include_collapsed=bool(tables.get("include_collapsed", True)),
            paper=bool(paper),
            bootstrap=int(tables.get("bootstrap") or 0),
            plots=bool(tables.get("plots", True)),
        )


def tables_command(overrides: Sequence[str]) -> str:
    """The command that writes these tables again (the launcher's own keys left out)."""
    kept = [o for o in overrides if o.split("=")[0].lstrip("+~") not in LAUNCH_ONLY]
    return " ".join(["python experiments/tables.py", *map(shlex.quote, kept)])


LAUNCH_ONLY = ("dry_run", "wait", "progress", "print_format", "output", "log_to_mlflow")


@dataclass(frozen=True)
class Report:
    """What was written: the Markdown text, the files, the cells behind them, and the table run's id."""

    markdown: str
    files: list[Path]
    cells: pd.DataFrame
    table_run: TableRun | None


def tables_folder(output_root: str | Path, grid: str) -> Path:
    """Where a grid's tables go: ``<output_root>/<grid>/tables``."""
    return Path(output_root) / grid / "tables"


def make_report(
    specs: Sequence[RunSpec],
    settings: ReportSettings,
    command: str,
    folder: str | Path | None = None,
    log_to_mlflow: bool = True,
) -> Report:
    """Tables (and plots) of the grid ``specs`` make up, from its MLflow runs: written to ``folder``
    (default ``<output_root>/<grid>/tables``) and, with ``log_to_mlflow``, to its table run."""
    first = specs[0]
    uri, experiment, grid = first.tracking.uri, first.experiment, first.grid
    folder = Path(folder) if folder is not None else tables_folder(first.output_root, grid)
    runs = collect(uri, experiment, grid)
    cells = aggregate(runs, asked_runs(specs), settings.include_collapsed, settings.bootstrap)
    table = build_table(
        cells, grid, settings.layout, settings.metrics, settings.include_collapsed, settings.paper
    )
    meta = {
        "grid": grid,
        "layout": settings.layout,
        "include_collapsed": settings.include_collapsed,
        "bootstrap": settings.bootstrap,
    }
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for fmt in settings.formats:
        path = folder / f"{grid}.{FORMATS[fmt]}"
        _write(path, render(fmt, table, cells, command, meta))
        files.append(path)
    if settings.plots:
        from orchestration.plots import write_plots

        files += write_plots(uri, runs, cells, folder, grid, cache_dir=folder.parent / ".history-cache")
    text = markdown(table, command)
    table_run = log_tables(uri, experiment, grid, folder, summary=text) if log_to_mlflow else None
    return Report(text, files, cells, table_run)


def _write(path: Path, text: str) -> None:
    """Whole or not at all: a reader never sees half a table."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    temporary.replace(path)
