"""Render a per-cell summary as the paper's tables: Markdown, LaTeX (booktabs) or CSV (MLflow keeps them:
``orchestration.tracking.grid_runs.log_table``)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import pandas as pd

# metric -> (column title, scale): the paper's units (ARI in %, MSE in 1e-4, KL in nats)
COLUMNS = {
    "eval/fg_ari": ("FG-ARI (%)", 100.0),
    "eval/mse": ("MSE (×10⁻⁴)", 1e4),
    "eval/kl": ("KL (nats)", 1.0),
}
FORMATS = ("markdown", "latex", "csv")


def _label_columns(summary: pd.DataFrame) -> list[str]:
    return [c for c in summary.columns if c not in ("cell_key", "n", "collapsed") and ":" not in c]


def _cells(summary: pd.DataFrame, metrics: Sequence[str], plus_minus: str) -> list[list[str]]:
    rows = []
    for _, row in summary.iterrows():
        cells = [str(row[c]) for c in _label_columns(summary)]
        for metric in metrics:
            _, scale = COLUMNS.get(metric, (metric, 1.0))
            mean, std = row.get(f"{metric}:mean"), row.get(f"{metric}:std")
            missing = mean is None or pd.isna(mean)
            cells.append("–" if missing else f"{scale * mean:.1f}{plus_minus}{scale * std:.1f}")
        cells.append(str(int(row["n"])))
        cells.append(str(int(row.get("collapsed", 0))))
        rows.append(cells)
    return rows


def render(summary: pd.DataFrame, fmt: str = "markdown", metrics: Sequence[str] = tuple(COLUMNS)) -> str:
    """The table as text; each metric as mean ± std over seeds, with n seeds per cell."""
    if fmt not in FORMATS:
        raise ValueError(f"table format {fmt!r} is not known (choose one of {', '.join(FORMATS)})")
    metrics = [m for m in metrics if f"{m}:mean" in summary]
    headers = [*_label_columns(summary), *(COLUMNS.get(m, (m, 1.0))[0] for m in metrics), "n", "collapsed"]
    if fmt == "csv":
        buffer = io.StringIO()
        columns = [*_label_columns(summary), "cell_key", "n", "collapsed"]
        columns += [f"{m}:{stat}" for m in metrics for stat in ("mean", "std")]
        summary[columns].to_csv(buffer, index=False)
        return buffer.getvalue()
    if fmt == "latex":
        rows = _cells(summary, metrics, r" $\pm$ ")
        lines = [
            r"\begin{tabular}{" + "l" * len(_label_columns(summary)) + "r" * (len(metrics) + 2) + "}",
            r"\toprule",
            " & ".join(_latex_escape(h) for h in headers) + r" \\",
            r"\midrule",
            *(" & ".join(_latex_escape(c) if "$" not in c else c for c in row) + r" \\" for row in rows),
            r"\bottomrule",
            r"\end{tabular}",
        ]
        return "\n".join(lines)
    from tabulate import tabulate

    return tabulate(_cells(summary, metrics, " ± "), headers=headers, tablefmt="github")


def _latex_escape(text: str) -> str:
    text = text.replace("×10⁻⁴", r"$\times 10^{-4}$")
    return text.replace("_", r"\_").replace("%", r"\%")
