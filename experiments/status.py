"""Where a grid stands: per cell, seeds done/running/queued/failed, steps, FG-ARI, failed jobs' log tails;
or cancel it (all of it, or some cells and seeds).

python experiments/status.py grid=demo
python experiments/status.py grid=table1 launcher=slurm
python experiments/status.py grid=table1 launcher=slurm cancel=true [cancel_seeds=[1,2]] \
    ['cancel_cells=["model.prior=bottom_up"]']
"""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from orchestration.cancel import cancel, select
from orchestration.compose import command_line_overrides
from orchestration.grid import GridError, expand_configured_grid
from orchestration.reconcile import grid_state
from orchestration.status import format_status, grid_status
from orchestration.tracking.store import TrackingUnavailable


@hydra.main(version_base="1.3", config_path="conf", config_name="status")
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    overrides = command_line_overrides(hydra_cfg)
    try:
        specs = expand_configured_grid(cfg, hydra_cfg.job.config_name, overrides)
    except GridError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
    first = specs[0]
    try:
        state = grid_state(first)
    except TrackingUnavailable as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
    if cfg.cancel:
        try:
            chosen = select(specs, cfg.cancel_cells, cfg.cancel_seeds)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            sys.exit(2)
        print(cancel(chosen, state).summary())
        state = grid_state(first)
    cells = grid_status(specs, state.tracked, state.ledger, state.live_jobs, tail_lines=cfg.tail_lines)
    print(format_status(first.grid, cells))


if __name__ == "__main__":
    main()
