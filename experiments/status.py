"""Where a grid stands: per cell, seeds done/running/queued/failed, steps, FG-ARI, failed jobs' log tails.

python experiments/status.py grid=demo
python experiments/status.py grid=table1 launcher=slurm
"""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from orchestration.grid import GridError, expand_configured_grid
from orchestration.ledger import read_ledger
from orchestration.scheduler import live_jobs
from orchestration.status import format_status, grid_status
from orchestration.tracking.grid_runs import tracked_runs


@hydra.main(version_base="1.3", config_path="conf", config_name="status")
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    try:
        specs = expand_configured_grid(cfg, hydra_cfg.job.config_name, hydra_cfg.overrides.task)
    except GridError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
    first = specs[0]
    uri = first.tracking.uri
    tracked = tracked_runs(uri, first.experiment, first.grid)
    ledger = read_ledger(first.output_root, first.grid)
    cells = grid_status(specs, tracked, ledger, live_jobs(ledger), uri=uri, tail_lines=cfg.tail_lines)
    print(format_status(first.grid, cells))


if __name__ == "__main__":
    main()
