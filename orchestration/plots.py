"""A grid's figures (matplotlib PNG): training curves per cell, mean with a ±std band over seeds, and each
seed's FG-ARI per cell with collapsed seeds marked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from emorl.eval.results import DIAGNOSIS_TAG
from orchestration.aggregate import COLLAPSED
from orchestration.tables import varying_labels
from orchestration.tracking.grid_runs import History, metric_histories

CURVES = ("train/nll", "train/kl", "eval/fg_ari")  # drawn where a run logged more than one point
FG_ARI = "eval/fg_ari"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def colours(n: int) -> list:
    """``n`` colours of matplotlib's default cycle, repeated."""
    cycle = _pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
    return [cycle[i % len(cycle)] for i in range(n)]


def cell_names(cells: pd.DataFrame) -> dict[str, str]:
    """Each cell's name in words: the values of the labels that vary."""
    columns = varying_labels(cells)
    return {row["cell_key"]: ", ".join(str(row[c]) for c in columns) for _, row in cells.iterrows()}


def curve_bands(histories: dict[str, History], run_ids: list[str], key: str) -> pd.DataFrame | None:
    """Mean and std over the runs of ``key`` by step (steps any run logged), or None under two points."""
    curves = [histories[r][key] for r in run_ids if len(histories.get(r, {}).get(key, [])) > 1]
    if not curves:
        return None
    if all(len(curve) == len(curves[0]) for curve in curves):  # the usual case: one array, no alignment
        points = np.asarray(curves, dtype=float)  # (runs, steps, 2)
        if (points[:, :, 0] == points[0, :, 0]).all():
            values = points[:, :, 1]
            std = values.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(values.shape[1])
            index = pd.Index(points[0, :, 0].astype(int))
            return pd.DataFrame({"mean": values.mean(axis=0), "std": std}, index=index)
    frame = pd.concat([pd.Series(dict(curve)) for curve in curves], axis=1).sort_index()
    return pd.DataFrame({"mean": frame.mean(axis=1), "std": frame.std(axis=1, ddof=1).fillna(0.0)})


MAX_NAMED_CELLS = 10  # above this many cells a figure leaves out its legend and bands, which would hide it


def training_curves(
    histories: dict[str, History], runs: pd.DataFrame, cells: pd.DataFrame, path: Path
) -> bool:
    """One panel per logged curve, one line per cell (with its ±std band and a legend up to
    ``MAX_NAMED_CELLS`` cells, thin lines beyond); False (nothing written) when no curve was logged."""
    names = cell_names(cells)
    by_cell = runs.groupby("cell_key", sort=False)["run_id"].apply(list).to_dict()
    panels = []
    for key in CURVES:
        bands = {cell: curve_bands(histories, by_cell.get(cell, []), key) for cell in names}
        bands = {cell: band for cell, band in bands.items() if band is not None}
        if bands:
            panels.append((key, bands))
    if not panels:
        return False
    named = len(names) <= MAX_NAMED_CELLS
    plt = _pyplot()
    from matplotlib.collections import LineCollection

    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for axis, (key, bands) in zip(axes[0], panels, strict=True):
        if named:
            for cell, band in bands.items():
                steps = band.index.to_numpy()
                axis.plot(steps, band["mean"], label=names[cell])
                axis.fill_between(steps, band["mean"] - band["std"], band["mean"] + band["std"], alpha=0.25)
        else:  # one collection: hundreds of lines drawn as fast as one
            lines = [np.column_stack([band.index.to_numpy(), band["mean"]]) for band in bands.values()]
            axis.add_collection(LineCollection(lines, linewidths=0.6, alpha=0.5, colors=colours(len(lines))))
            axis.autoscale_view()
        axis.set(title=key if named else f"{key} ({len(bands)} cells, means)", xlabel="step")
    if named:
        axes[0][0].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def seed_strip(runs: pd.DataFrame, cells: pd.DataFrame, path: Path) -> bool:
    """Each finished seed's FG-ARI (%) per cell; collapsed seeds as red crosses; False without FG-ARI."""
    if FG_ARI not in runs:
        return False
    finished = runs[(runs["status"] == "FINISHED") & runs[FG_ARI].notna()]
    if finished.empty:
        return False
    names = cell_names(cells)
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(min(max(4.0, 1.2 * len(names)), 20.0), 3.6))
    positions = {cell: position for position, cell in enumerate(names, start=1)}
    seeds = finished[finished["cell_key"].isin(positions)]
    jitter = np.random.default_rng(0).uniform(-0.12, 0.12, len(seeds))
    x = seeds["cell_key"].map(positions).to_numpy() + jitter
    values = 100 * seeds[FG_ARI].to_numpy()
    collapsed = (seeds[DIAGNOSIS_TAG] == COLLAPSED).to_numpy()
    axis.scatter(x[~collapsed], values[~collapsed], color="tab:blue", label="seed")
    if collapsed.any():
        axis.scatter(x[collapsed], values[collapsed], color="tab:red", marker="x", label="collapsed")
    if len(names) <= 4 * MAX_NAMED_CELLS:
        axis.set_xticks(range(1, len(names) + 1), list(names.values()), rotation=20, ha="right")
    else:  # too many to name: cells in the tables' order
        axis.set(xlabel=f"cell (1-{len(names)}, in the tables' order)")
    axis.set(ylabel="FG-ARI (%)", ylim=(-2, 102))
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def write_plots(
    uri: str, runs: pd.DataFrame, cells: pd.DataFrame, folder: Path, grid: str, cache_dir: Path | None = None
) -> list[Path]:
    """The grid's figures in ``folder`` (``<grid>_curves.png``, ``<grid>_fg_ari_seeds.png``) as drawn."""
    written = []
    if not runs.empty:
        ends = [
            (r, None if pd.isna(e) else int(e)) for r, e in zip(runs["run_id"], runs["end_time"], strict=True)
        ]
        histories = metric_histories(uri, ends, CURVES, cache_dir)
        if training_curves(histories, runs, cells, folder / f"{grid}_curves.png"):
            written.append(folder / f"{grid}_curves.png")
    if seed_strip(runs, cells, folder / f"{grid}_fg_ari_seeds.png"):
        written.append(folder / f"{grid}_fg_ari_seeds.png")
    return written
