"""The Logger protocol the trainer and the evaluation call, and its console implementation.

``emorl`` never imports a tracking backend: the MLflow implementation lives in
``orchestration.tracking.logger`` and satisfies this same protocol.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Logger(Protocol):
    """Where a run reports to. Every method is called on rank 0 only and must not block training."""

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record the flattened, resolved config once per run."""

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Record scalar metrics (plain floats; the caller has already synchronised them)."""

    def log_image(self, key: str, image: np.ndarray, step: int) -> None:
        """Record an ``[H, W, 3]`` uint8 picture, e.g. ``train/examples``."""

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Label the run, e.g. ``diagnosis=collapsed`` (a later value replaces an earlier one)."""

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Attach a file or folder (checkpoint, GIF, results.json) to the run."""

    def close(self, status: str = "FINISHED") -> None:
        """End the run with status FINISHED, FAILED or KILLED, flushing whatever is pending."""


class ConsoleLogger:
    """Prints metrics as plain lines; the trainer's tqdm bar carries the live progress.

    Lines go through ``tqdm.write``, so they appear above an active progress bar instead of breaking it,
    and as ordinary lines when there is no bar (not interactive, or ``progress=false``).
    """

    def __init__(self, stream: Any = None, image_dir: str | Path | None = None):
        self.stream = stream or sys.stdout
        self.image_dir = Path(image_dir) if image_dir else None

    def log_params(self, params: Mapping[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        from tqdm import tqdm

        shown = "  ".join(f"{key}={value:.4g}" for key, value in sorted(metrics.items()))
        tqdm.write(f"step {step}: {shown}", file=self.stream)

    def log_image(self, key: str, image: np.ndarray, step: int) -> None:
        if self.image_dir is None:
            return
        from PIL import Image

        path = self.image_dir / f"{key.replace('/', '_')}_{step:08d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        from tqdm import tqdm

        tqdm.write("  ".join(f"{key}: {value}" for key, value in tags.items()), file=self.stream)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        pass

    def close(self, status: str = "FINISHED") -> None:
        print(f"run ended: {status}", file=self.stream, flush=True)


class LoggerGroup:
    """Sends every call to several loggers, e.g. the console and an MLflow run."""

    def __init__(self, *loggers: Logger):
        self.loggers = loggers

    def log_params(self, params: Mapping[str, Any]) -> None:
        for logger in self.loggers:
            logger.log_params(params)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        for logger in self.loggers:
            logger.log_metrics(metrics, step)

    def log_image(self, key: str, image: np.ndarray, step: int) -> None:
        for logger in self.loggers:
            logger.log_image(key, image, step)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for logger in self.loggers:
            logger.set_tags(tags)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        for logger in self.loggers:
            logger.log_artifact(path, artifact_path)

    def close(self, status: str = "FINISHED") -> None:
        for logger in self.loggers:
            logger.close(status)
