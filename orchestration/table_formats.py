"""A ``Table`` as Markdown or LaTeX (booktabs, best values bold, every text escaped), and the aggregated
cells as CSV or JSON with the run ids behind each number. Every file starts with the command that
regenerates it."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence

import pandas as pd

from orchestration.aggregate import SEED_LISTS
from orchestration.tables import DECIMALS, Cell, Table, Text, Value, latex_escape

FORMATS = {"markdown": "md", "latex": "tex", "csv": "csv", "json": "json"}  # format -> file extension


def _number(value: Value, plus_minus: str, minus: str) -> str:
    text = f"{value.mean:+.{DECIMALS}f}" if value.signed else f"{value.mean:.{DECIMALS}f}"
    if value.std is not None:
        text += f"{plus_minus}{value.std:.{DECIMALS}f}"
    return text.replace("-", minus)


def _markdown_cell(cell: Cell) -> str:
    if isinstance(cell, Text):
        text = cell.text
    else:
        text = _number(cell, " ± ", "−")
        text = f"**{text}**" if cell.bold else text
    return text + (f" [{cell.note}]" if cell.note else "")


def markdown(table: Table, command: str) -> str:
    """GitHub Markdown: the regenerating command (a comment), title and caption, the table, the notes."""
    from tabulate import tabulate

    rows = [[_markdown_cell(cell) for cell in row] for row in table.rows]
    align = ["right" if header.numeric else "left" for header in table.headers]
    body = tabulate(rows, headers=[h.text for h in table.headers], tablefmt="github", colalign=align)
    lines = [f"<!-- regenerate: {command} -->", f"**{table.title}.** {table.caption}", "", body]
    if table.notes:
        lines += ["", *(f"[{number}] {note}  " for number, note in enumerate(table.notes, 1))]
    return "\n".join(lines) + "\n"


def _latex_cell(cell: Cell) -> str:
    if isinstance(cell, Text):
        text = latex_escape(cell.text)
    else:
        text = _number(cell, r" $\pm$ ", "$-$")
        text = rf"\textbf{{{text}}}" if cell.bold else text
    return text + (rf"\textsuperscript{{{cell.note}}}" if cell.note else "")


def latex(table: Table, command: str) -> str:
    """A ``table`` float with a booktabs ``tabular`` (needs ``\\usepackage{booktabs}``) and its notes."""
    spec = "".join("r" if header.numeric else "l" for header in table.headers)
    lines = [
        f"% regenerate: {command}",
        r"\begin{table}[ht]",
        r"\centering",
        rf"\caption{{{latex_escape(table.title)}. {latex_escape(table.caption)}}}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(header.latex for header in table.headers) + r" \\",
        r"\midrule",
        *(" & ".join(_latex_cell(cell) for cell in row) + r" \\" for row in table.rows),
        r"\bottomrule",
        r"\end{tabular}",
    ]
    if table.notes:
        lines += [r"\par\smallskip\footnotesize"]
        lines += [
            rf"\textsuperscript{{{n}}}{latex_escape(note)}\par" for n, note in enumerate(table.notes, 1)
        ]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def _plain(value: object) -> object:
    """JSON-safe: NaN becomes null, numpy scalars plain numbers."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


def csv(cells: pd.DataFrame, command: str) -> str:
    """The aggregated numbers, a row per cell; seed lists and run ids space-separated; the command first."""
    flat = cells.copy()
    for column in (*SEED_LISTS, "run_ids"):
        flat[column] = [" ".join(str(v) for v in values) for values in flat[column]]
    buffer = io.StringIO()
    buffer.write(f"# regenerate: {command}\n")
    flat.to_csv(buffer, index=False)
    return buffer.getvalue()


def json_document(cells: pd.DataFrame, command: str, settings: dict[str, object]) -> str:
    """The aggregated numbers per cell with their run ids, the settings behind them and the command."""
    records = [{key: _plain(value) for key, value in row.items()} for row in cells.to_dict("records")]
    return json.dumps({"command": command, **settings, "cells": records}, indent=2, ensure_ascii=False) + "\n"


def render(
    fmt: str, table: Table, cells: pd.DataFrame, command: str, settings: dict[str, object] | None = None
) -> str:
    """One format's text: Markdown and LaTeX lay out ``table``; CSV and JSON hold the ``cells``."""
    if fmt == "markdown":
        return markdown(table, command)
    if fmt == "latex":
        return latex(table, command)
    if fmt == "csv":
        return csv(cells, command)
    if fmt == "json":
        return json_document(cells, command, settings or {})
    raise ValueError(f"table format {fmt!r} is not known (choose one of {', '.join(FORMATS)})")


def parse_formats(formats: str | Sequence[str]) -> list[str]:
    """``all``, one format, or a list; unknown names refused with the choices."""
    names = list(FORMATS) if formats == "all" else [formats] if isinstance(formats, str) else list(formats)
    unknown = [name for name in names if name not in FORMATS]
    if unknown:
        raise ValueError(
            f"table format {unknown[0]!r} is not known (choose all or any of {', '.join(FORMATS)})"
        )
    return names
