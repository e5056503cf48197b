"""A grid's tables: mean ± std per cell with every missing, failed, running or collapsed seed named, in the
paper's layout beside its numbers where the grid asks for it; Markdown, LaTeX, CSV and JSON, and plots,
under <output_root>/<grid>/tables and on the grid's table run in MLflow.

python experiments/tables.py grid=demo
python experiments/tables.py grid=table2_tetrominoes tables.include_collapsed=false print_format=latex
"""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from orchestration.compose import command_line_overrides
from orchestration.grid import GridError, expand_configured_grid
from orchestration.report import ReportSettings, make_report, tables_command
from orchestration.table_formats import FORMATS
from orchestration.tracking.store import TrackingUnavailable


@hydra.main(version_base="1.3", config_path="conf", config_name="tables")
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    overrides = command_line_overrides(hydra_cfg)
    try:
        specs = expand_configured_grid(cfg, hydra_cfg.job.config_name, overrides)
        settings = ReportSettings.from_config(
            OmegaConf.to_container(cfg.tables, resolve=True), OmegaConf.to_container(cfg.grid, resolve=True)
        )
        if cfg.print_format not in FORMATS:
            raise ValueError(
                f"print_format={cfg.print_format!r} is not known (choose one of {', '.join(FORMATS)})"
            )
        report = make_report(specs, settings, tables_command(overrides), cfg.output, cfg.log_to_mlflow)
    except (GridError, ValueError, TrackingUnavailable) as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
    shown = next((p for p in report.files if p.suffix == f".{FORMATS[cfg.print_format]}"), None)
    print(report.markdown if shown is None else shown.read_text())
    print(f"written: {', '.join(str(path) for path in report.files)}", file=sys.stderr)
    if report.table_run:
        print(f"MLflow table run: {report.table_run.where}", file=sys.stderr)


if __name__ == "__main__":
    main()
