"""Train one EMORL model, tracked in MLflow; resumes from its newest checkpoint when restarted.

    python experiments/train.py dataset=tetrominoes debug=toy
    python experiments/train.py dataset=clevr6 tracking=server tracking.uri=http://127.0.0.1:5000
    torchrun --nproc_per_node=2 experiments/train.py dataset=multi_dsprites

The MLflow run is found (or created) by the config's run_key, so a restart continues the same run.
SIGTERM/SIGINT checkpoint at the next step boundary and end the run KILLED (a second SIGINT aborts at
once); an error ends it FAILED with the traceback attached.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from emorl.config import ExperimentConfig
from emorl.identity import identity_key
from emorl.logging import ConsoleLogger, Logger, LoggerGroup
from emorl.train import train
from orchestration.config import TrackingConfig
from orchestration.tracking.lifetime import tracked_run
from orchestration.tracking.logger import MLflowLogger
from orchestration.tracking.runs import open_run
from orchestration.tracking.store import TrackingUnavailable


def run_name(config: ExperimentConfig, explicit: str | None) -> str:
    """``tetrominoes-L3-I3-seed1``: dataset, stochastic layers, first-curriculum I, seed."""
    if explicit:
        return explicit
    first_steps = config.training.refinement_curriculum[0][1]
    return f"{config.data.name}-L{config.model.stochastic_layers}-I{first_steps}-seed{config.training.seed}"


@hydra.main(config_path="conf", config_name="train", version_base=None)
def main(cfg: DictConfig) -> None:
    cfg.output_root = str(Path(cfg.output_root).expanduser().resolve())
    resolved = OmegaConf.to_container(cfg, resolve=True)
    config = ExperimentConfig.from_dict(resolved)
    logger: Logger | None = None
    tracking = TrackingConfig.from_dict(resolved["tracking"])
    if int(os.environ.get("RANK", "0")) == 0:
        name = run_name(config, resolved["run_name"])
        tags = {
            "entry": "experiments/train.py",
            "dataset": config.data.name,
            "seed": str(config.training.seed),
            "debug": str(resolved["debug"]).lower(),
            "tracking": tracking.kind,
        }
        try:
            run_id = open_run(
                tracking.uri,
                tracking.experiment,
                identity_key(config),
                name,
                tags,
                output_dir=config.training.output_dir,
            )
        except TrackingUnavailable as exc:
            sys.exit(f"{exc}\nnothing was trained")
        mlflow_logger = MLflowLogger(
            tracking.uri, run_id, spool_dir=Path(config.training.output_dir) / "mlflow-spool"
        )
        logger = LoggerGroup(ConsoleLogger(), mlflow_logger)
        print(f"MLflow run {name} ({run_id}) at {tracking.uri}", file=sys.stderr)
    with tracked_run(logger) as stop:
        result = train(config, logger, stop_requested=stop.is_set, progress=resolved["progress"])
        stop.preempted = result.preempted
    state = f"stopped by {stop.signal_name}" if result.preempted else "finished"
    print(f"training {state} at step {result.final_step}; checkpoint {result.checkpoint_path}")
    if tracking.kind == "local":
        print(f"view it: mlflow ui --backend-store-uri {tracking.uri}")


if __name__ == "__main__":
    main()
