"""What an evaluation leaves behind: ``results.json``, per-image values, and the same numbers in the logger.

``results.json`` maps each metric to ``{"mean", "std", "n"}`` (NaN values, e.g. images without foreground
objects for mBO, are left out of all three), plus ``per_image`` (the CSV file with one row per test image,
so means, standard deviations and bootstrap intervals can be recomputed), ``eval_type``, ``step`` and,
where segmentation was scored, ``diagnosis`` (label and reason; tagged on the run as ``diagnosis``).
When a logger is given the means go out as metrics ``eval/<metric>`` (standard deviations as
``eval/<metric>_std``) at the checkpoint's step, and the output folder as artifacts under ``eval/<type>``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emorl.logging import Logger

if TYPE_CHECKING:  # torch-free at run time: status.py and the tables import DIAGNOSIS_TAG from here
    from emorl.eval.diagnosis import Diagnosis

RESULTS_FILE = "results.json"
PER_IMAGE_FILE = "per_image.csv"
DIAGNOSIS_TAG = "diagnosis"  # run tag of the collapse check's label: segmenting | collapsed | partial


def summarise(values: np.ndarray | list[float]) -> dict[str, float | int | None]:
    """Mean, population std (as the reference's ``np.std``) and count of the finite values."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(finite.mean()), "std": float(finite.std()), "n": int(finite.size)}


def single_value(value: float, n: int) -> dict[str, float | int | None]:
    """A metric computed once over the whole set (DCI): its value as the mean, no spread."""
    return {"mean": float(value) if math.isfinite(value) else None, "std": None, "n": int(n)}


def write_results(
    out_dir: Path,
    eval_type: str,
    step: int,
    metrics: Mapping[str, Mapping[str, Any]],
    per_image: Mapping[str, np.ndarray] | None = None,
    diagnosis: Diagnosis | None = None,
) -> dict[str, Any]:
    """Write ``results.json`` (fresh, never appended) and, if given, ``per_image.csv``; return the dict."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"eval_type": eval_type, "step": step}
    results.update({name: dict(entry) for name, entry in metrics.items()})
    if diagnosis is not None:
        results["diagnosis"] = {"label": diagnosis.label, "reason": diagnosis.reason}
    if per_image is not None:
        import pandas as pd  # here: status.py imports this module for DIAGNOSIS_TAG alone

        table = pd.DataFrame({key: np.asarray(value) for key, value in per_image.items()})
        table.index.name = "image"
        table.to_csv(out_dir / PER_IMAGE_FILE)
        results["per_image"] = PER_IMAGE_FILE
    (out_dir / RESULTS_FILE).write_text(json.dumps(results, indent=2) + "\n")
    return results


def log_results(logger: Logger | None, results: Mapping[str, Any], out_dir: Path) -> None:
    """Send the metric means (and stds) to the logger and attach the output folder as artifacts."""
    if logger is None:
        return
    scalars: dict[str, float] = {}
    for name, entry in results.items():
        if not isinstance(entry, Mapping):
            continue
        if entry.get("mean") is not None:
            scalars[f"eval/{name}"] = float(entry["mean"])
        if entry.get("std") is not None:
            scalars[f"eval/{name}_std"] = float(entry["std"])
    logger.log_metrics(scalars, step=int(results["step"]))
    if "diagnosis" in results:
        diagnosis = results["diagnosis"]
        logger.set_tags({DIAGNOSIS_TAG: diagnosis["label"], f"{DIAGNOSIS_TAG}_reason": diagnosis["reason"]})
    logger.log_artifact(out_dir, artifact_path=f"eval/{results['eval_type']}")
