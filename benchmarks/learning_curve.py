"""Learning curves: FG-ARI, MSE, KL and GECO ζ against training steps and minutes, as a table and a PNG.

    python benchmarks/learning_curve.py                                  # grid=discovery, seed 1
    python benchmarks/learning_curve.py grid=discovery --seeds 1 2 3 --every 500 --out outputs/curves
    python benchmarks/learning_curve.py grid=demo --every 25              # any grid; its first cell
    python benchmarks/learning_curve.py grid=discovery model.init_gain=0.02   # Hydra overrides, as the grid

Each chosen run of the grid (its first cell, the given seeds) is trained with the real trainer in segments
of ``--every`` steps (a segment resumes bit-exactly from the previous one's checkpoint), and after each
segment the checkpoint is scored on the first ``eval.num_images`` test images as ``eval=ari_mse_kl`` does,
with the collapse diagnosis. Minutes are the training's wall clock (evaluation excluded). Nothing is
logged to MLflow; checkpoints go under ``--out``. Threads: ``torch.set_num_threads`` (``--threads``).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from tabulate import tabulate

from emorl.config import ExperimentConfig
from emorl.eval.diagnosis import diagnose
from emorl.eval.scores import score_images
from emorl.train import train
from emorl.train.checkpoint import load_for_eval
from orchestration.compose import Composer, hydra_initialized
from orchestration.grid import expand_grid

COLUMNS = ("seed", "step", "minutes", "fg_ari", "mse_1e4", "kl", "zeta", "diagnosis")
PANELS = (("fg_ari", "FG-ARI"), ("mse_1e4", "MSE (×10⁻⁴)"), ("kl", "KL (nats)"), ("zeta", "GECO ζ"))


def grid_configs(overrides: list[str], seeds: list[int] | None) -> list[ExperimentConfig]:
    """The typed configs of the grid's first cell for ``seeds`` (default: the grid's first seed)."""
    from hydra import compose

    with hydra_initialized():
        grid = OmegaConf.to_container(compose("ablation_grid", overrides=overrides).grid, resolve=True)
    specs = expand_grid(grid, Composer("ablation_grid", overrides))
    first_cell = [spec for spec in specs if spec.cell_key == specs[0].cell_key]
    wanted = seeds or [first_cell[0].seed]
    chosen = [spec for spec in first_cell if spec.seed in wanted]
    missing = sorted(set(wanted) - {spec.seed for spec in chosen})
    if missing:
        raise SystemExit(
            f"grid {grid['name']!r} has no seed {missing} (seeds: {[s.seed for s in first_cell]})"
        )
    return [spec.config for spec in chosen]


def with_training(cfg: ExperimentConfig, **changes: Any) -> ExperimentConfig:
    return dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, **changes))


def curve(cfg: ExperimentConfig, every: int, minutes: float | None) -> list[dict[str, Any]]:
    """Train ``cfg`` in segments of ``every`` steps, scoring after each; one row per evaluation."""
    rows, trained_s, step = [], 0.0, 0
    while step < cfg.training.iters and (minutes is None or trained_s < minutes * 60):
        segment = with_training(cfg, iters=min(step + every, cfg.training.iters), resume=True)
        start = time.perf_counter()
        result = train(segment, progress=False)
        trained_s += time.perf_counter() - start
        step = result.final_step
        loaded = load_for_eval(result.checkpoint_path)
        scores = score_images(loaded, cfg, progress=False)
        means = {name: float(np.nanmean(values)) for name, values in scores.items()}
        diagnosis = diagnose(means["fg_ari"], means["fg_slots"], means["mask_entropy"], cfg.eval)
        zeta = float(loaded.geco.beta) if loaded.geco is not None and cfg.geco.enabled else float("nan")
        row = {
            "seed": cfg.training.seed,
            "step": step,
            "minutes": trained_s / 60,
            "fg_ari": means["fg_ari"],
            "mse_1e4": means["mse"] * 1e4,
            "kl": means["kl"],
            "zeta": zeta,
            "diagnosis": diagnosis.label,
        }
        rows.append(row)
        print(tabulate([[row[c] for c in COLUMNS]], floatfmt=".3f", tablefmt="plain"), flush=True)
    return rows


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Four panels against training minutes, one line per seed (the steps on the top axis of each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.4), constrained_layout=True)
    for axis, (key, label) in zip(axes, PANELS, strict=True):
        for seed in sorted({row["seed"] for row in rows}):
            mine = [row for row in rows if row["seed"] == seed]
            axis.plot(
                [r["minutes"] for r in mine], [r[key] for r in mine], marker="o", ms=3, label=f"seed {seed}"
            )
        axis.set_xlabel("training minutes")
        axis.set_title(label)
        axis.grid(alpha=0.3)
    axes[0].axhline(0.9, color="grey", ls="--", lw=0.8)
    axes[0].legend(fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. grid=discovery model.K=4")
    parser.add_argument(
        "--seeds", type=int, nargs="+", help="seeds of the grid's first cell (default: its first)"
    )
    parser.add_argument("--every", type=int, default=500, help="steps between evaluations")
    parser.add_argument("--minutes", type=float, help="stop a seed after this many training minutes")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=Path("outputs/learning_curve"))
    args = parser.parse_args()
    overrides = (
        args.overrides
        if any(o.startswith("grid=") for o in args.overrides)
        else ["grid=discovery", *args.overrides]
    )
    torch.set_num_threads(args.threads)

    rows: list[dict[str, Any]] = []
    print("  ".join(COLUMNS))
    for cfg in grid_configs(overrides, args.seeds):
        out = args.out / f"seed{cfg.training.seed}"
        cfg = with_training(cfg, output_dir=str(out))
        for stale in (out / "checkpoints").glob("step-*.pt"):
            stale.unlink()
        rows += curve(cfg, args.every, args.minutes)

    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "learning_curve.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    title = f"{' '.join(overrides)} ({args.threads} threads)"
    plot(rows, args.out / "learning_curve.png", title)
    table = [[row[c] for c in COLUMNS] for row in rows]
    print()
    print(
        tabulate(
            table,
            headers=["seed", "step", "min", "FG-ARI", "MSE ×1e-4", "KL", "ζ", "diagnosis"],
            floatfmt=".3f",
            tablefmt="github",
        )
    )
    print(f"\n{args.out / 'learning_curve.csv'}\n{args.out / 'learning_curve.png'}")


if __name__ == "__main__":
    main()
