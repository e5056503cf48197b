"""The results table of a grid: mean ± std (n seeds) per cell, as Markdown, LaTeX or CSV.

python experiments/tables.py grid=demo
python experiments/tables.py grid=table2_tetrominoes table_format=latex output=table2.tex
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from orchestration.aggregate import grid_results, summarize
from orchestration.config import TrackingConfig
from orchestration.tables import render
from orchestration.tracking.grid_runs import log_table


@hydra.main(version_base="1.3", config_path="conf", config_name="tables")
def main(cfg: DictConfig) -> None:
    metrics = list(cfg.metrics)
    uri = TrackingConfig.from_dict(OmegaConf.to_container(cfg.tracking, resolve=True)).uri
    experiment = cfg.grid.get("experiment") or cfg.grid.name
    results = grid_results(uri, experiment, cfg.grid.name, metrics)
    table = render(summarize(results, metrics), cfg.table_format, metrics)
    print(table)
    if cfg.log_to_mlflow:
        log_table(uri, experiment, cfg.grid.name, table, cfg.table_format)
    if cfg.output:
        Path(cfg.output).write_text(table + "\n")


if __name__ == "__main__":
    main()
