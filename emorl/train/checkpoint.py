"""Checkpoints: atomic writes, keep-last-k, resume-time config drift check, and loading for evaluation.

A checkpoint is one ``torch.save`` dict written to a temporary file in the same folder, flushed to disk,
then renamed over its final name ``step-XXXXXXXX.pt`` (a rename within one file system is atomic), so a
crash mid-write leaves the previous checkpoints intact and no partial file ever carries a final name.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from emorl.config import ExperimentConfig, flatten_config
from emorl.identity import CHANGEABLE_ON_RESUME

CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^step-(\d{8,})\.pt$")
# Keys that older checkpoints' configs hold and the config no longer has (I comes from
# training.refinement_curriculum and eval.refinement_steps): dropped when such a checkpoint is read.
RETIRED_KEYS = ("model.refinement_steps",)



class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or does not fit the run that wants it."""


class ConfigDriftError(CheckpointError):
    """Resuming with a config that differs from the checkpoint's in keys that may not change on resume."""

    def __init__(self, path: Path, changes: list[str]):
        self.changes = changes
        super().__init__(
            f"refusing to resume from {path}: the config changed in keys that affect training:\n  - "
            + "\n  - ".join(changes)
            + "\nUse a new training.output_dir for a different experiment, or set training.resume=false "
            f"to start over (allowed changes: {', '.join(sorted(CHANGEABLE_ON_RESUME))})"
        )


def checkpoint_path(directory: Path, step: int) -> Path:
    """The final name of the checkpoint taken after ``step`` completed updates."""
    return Path(directory) / f"step-{step:08d}.pt"


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Complete checkpoints in ``directory``, oldest first (temporary files are never listed)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(match.group(1)), path) for path in directory.iterdir() if (match := _NAME.match(path.name))]
    return [path for _, path in sorted(found)]


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The newest complete checkpoint in ``directory``, or None."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


def save_checkpoint(directory: str | Path, step: int, state: Mapping[str, Any], keep: int) -> Path:
    """Write ``state`` atomically as the checkpoint for ``step`` and delete all but the newest ``keep``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = checkpoint_path(directory, step)
    # Not a with-statement: the temporary file must outlive the handle until it is renamed.
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115
        dir=directory, prefix=f".{final.name}.", suffix=".tmp", delete=False
    )
    try:
        with handle:
            torch.save(dict(state), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, final)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    _fsync_directory(directory)
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return final


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX needs the directory entry flushed too)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read one checkpoint file written by ``save_checkpoint`` (it holds RNG states, so not weights-only)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read ({exc}); delete it to fall back") from exc
    if not isinstance(state, dict) or "config" not in state or "step" not in state:
        raise CheckpointError(f"{path} is not an emorl training checkpoint (no 'config'/'step' entries)")
    for key in RETIRED_KEYS:
        section, name = key.split(".")
        state["config"].get(section, {}).pop(name, None)
    return state


def config_drift(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Keys that may not change on resume yet differ, as 'key: saved -> current' lines."""
    old, new = flatten_config(saved), flatten_config(current)
    return [
        f"{key}: {old.get(key, '<absent>')!r} -> {new.get(key, '<absent>')!r}"
        for key in sorted(old.keys() | new.keys())
        if key not in CHANGEABLE_ON_RESUME and old.get(key) != new.get(key)
    ]


def check_resume_config(path: Path, saved: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    """Raise ``ConfigDriftError`` unless ``current`` differs from ``saved`` only in allowed keys."""
    changes = config_drift(saved, current)
    if changes:
        raise ConfigDriftError(path, changes)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or the newest one under a run folder (``<dir>/checkpoints`` or ``<dir>`` itself)."""
    path = Path(path)
    if path.is_file():
        return path
    for directory in (path / CHECKPOINT_DIR, path):
        newest = latest_checkpoint(directory)
        if newest is not None:
            return newest
    raise CheckpointError(
        f"no checkpoint found at {path} (looked for step-*.pt in {path / CHECKPOINT_DIR} and {path})"
    )


@dataclass
class LoadedRun:
    """A trained model ready for evaluation, with the config and step it was saved with."""

    model: torch.nn.Module
    geco: torch.nn.Module | None
    config: ExperimentConfig
    step: int


def load_for_eval(path: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """Rebuild the EMORL model (eval mode) and GECO from a checkpoint file or a run output folder."""
    from emorl.geco import GECO
    from emorl.model import EMORL

    file = resolve_checkpoint(path)
    state = load_checkpoint(file, map_location=device)
    config = ExperimentConfig.from_dict(state["config"])
    model = EMORL(config.model).to(device)
    model.load_state_dict(state["model"])
    model.eval()
    geco = None
    if state.get("geco") is not None:
        channels, height, width = config.model.input_size
        geco = GECO(config.geco, num_pixels=channels * height * width).to(device)
        geco.load_state_dict(state["geco"])
    return LoadedRun(model=model, geco=geco, config=config, step=int(state["step"]))
