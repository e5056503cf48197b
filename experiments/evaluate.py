"""Evaluate one checkpoint and log the numbers and pictures into the MLflow run that trained it.

    python experiments/evaluate.py checkpoint=outputs/train/debug-tetrominoes-seed1 eval=ari_mse_kl
    python experiments/evaluate.py checkpoint=PATH eval=disentanglement|gifs|figures eval.num_images=32
    python experiments/evaluate.py checkpoint=PATH tracking=server tracking.uri=http://HOST:5000

The checkpoint's own config gives the model, data and evaluation settings; non-null ``eval.*``/``data.*``
values from the command line replace them. The training run is the one whose run_key matches the
checkpoint's config (as ``experiments/train.py`` and the grid jobs name it), or ``tracking.run_id``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from emorl.config import ExperimentConfig
from emorl.eval import evaluate
from emorl.identity import identity_key
from emorl.train.checkpoint import LoadedRun, load_for_eval, resolve_checkpoint
from orchestration.config import TrackingConfig
from orchestration.tracking.logger import STATUSES, MLflowLogger
from orchestration.tracking.runs import find_run, recorded_run, run_status


def evaluation_config(checkpoint_config: ExperimentConfig, overrides: dict[str, Any]) -> ExperimentConfig:
    """The checkpoint's config with the non-null ``eval``/``data`` values of ``overrides`` put in."""
    merged = checkpoint_config.to_dict()
    for section in ("eval", "data"):
        merged[section].update({k: v for k, v in (overrides.get(section) or {}).items() if v is not None})
    return ExperimentConfig.from_dict(merged)


def training_run(loaded: LoadedRun, tracking: TrackingConfig) -> str | None:
    """The MLflow run id to log into: ``tracking.run_id``, the run recorded in the training's output
    folder, or the run tagged with the checkpoint's run_key."""
    if tracking.run_id:
        return tracking.run_id
    recorded = recorded_run(loaded.config.training.output_dir, tracking.uri)
    if recorded is not None:
        return recorded
    run_key = identity_key(loaded.config)
    run_id = find_run(run_key, tracking.experiment, tracking.uri)
    if run_id is None:
        print(
            f"no MLflow run with run_key {run_key} in experiment {tracking.experiment!r} at "
            f"{tracking.uri}; results stay on disk only (pass tracking.run_id=ID to log into a run)",
            file=sys.stderr,
        )
    return run_id


@hydra.main(config_path="conf", config_name="evaluate", version_base=None)
def main(cfg: DictConfig) -> None:
    cfg.output_root = str(Path(cfg.output_root).expanduser().resolve())
    resolved = OmegaConf.to_container(cfg, resolve=True)
    checkpoint = resolve_checkpoint(resolved["checkpoint"])
    loaded = load_for_eval(checkpoint, device=resolved["device"])
    config = evaluation_config(loaded.config, resolved)
    eval_type = resolved["eval_type"]
    out_dir = Path(resolved["out_dir"] or Path(config.eval.output_dir) / eval_type)
    tracking = TrackingConfig.from_dict(resolved["tracking"])
    run_id = training_run(loaded, tracking) if resolved["log_to_mlflow"] else None
    logger = MLflowLogger(tracking.uri, run_id) if run_id else None
    status_before = run_status(run_id, tracking.uri) if run_id else None
    print(f"evaluating {checkpoint} (step {loaded.step}): {eval_type} -> {out_dir}", file=sys.stderr)
    try:
        results = evaluate(loaded, eval_type, config, out_dir, logger, progress=resolved["progress"])
    finally:
        if logger is not None:  # keep the training run's own end status (a KILLED run stays KILLED)
            logger.close(status_before if status_before in STATUSES else "FINISHED")
    for name, entry in results.items():
        if isinstance(entry, dict) and entry.get("mean") is not None:
            spread = f" ± {entry['std']:.4g}" if entry.get("std") is not None else ""
            print(f"{name:>28}: {entry['mean']:.4g}{spread} (n={entry['n']})")
    print(f"results: {out_dir / 'results.json'}")
    if run_id:
        print(f"logged into MLflow run {run_id}; view it: mlflow ui --backend-store-uri {tracking.uri}")


if __name__ == "__main__":
    main()
