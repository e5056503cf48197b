"""Expand a grid, validate it as a whole, and submit every run that is not finished yet.

    python experiments/ablation_grid.py                                   # demo grid, here; waits; table
    python experiments/ablation_grid.py grid=table1 launcher=slurm dry_run=true
    python experiments/ablation_grid.py grid=table2_clevr6 launcher=slurm \
        launcher.profile=slurm/profiles/CLUSTER.yaml            # a real cluster's partition, account, ...
"""

from __future__ import annotations

import shlex
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from orchestration.compose import command_line_overrides
from orchestration.grid import GridError, expand_configured_grid
from orchestration.plan import decide, format_plan, make_plan
from orchestration.reconcile import grid_state
from orchestration.report import ReportSettings, make_report, tables_command, tables_folder
from orchestration.resources import check_grid_fits
from orchestration.scheduler import cluster_max_array_size
from orchestration.submit import SubmissionError, submit
from orchestration.tracking.store import TrackingUnavailable, ensure_experiment
from orchestration.wait import LocalQueue, Retrier, wait_for


def where_to_look(uri: str, experiment: str, grid: str, overrides: list[str]) -> str:
    if uri.startswith("http"):  # the runs table: MLflow 3.17 opens an experiment's root on its GenAI overview
        browse = f"{uri.rstrip('/')}/#/experiments/{ensure_experiment(uri, experiment)}/runs"
    else:
        browse = f"mlflow ui --backend-store-uri {uri}   (experiment {experiment})"
    same = [o for o in overrides if not o.startswith(("dry_run=", "wait=", "tables.", "grid="))]
    return f"MLflow: {browse}\nstatus: python experiments/status.py {shlex.join([f'grid={grid}', *same])}"


def stopped_waiting(launcher: str, overrides: list[str]) -> str:
    """What Ctrl-C while waiting left behind, and how to go on."""
    same = shlex.join(o for o in overrides if not o.startswith(("dry_run=", "wait=", "table_format=")))
    if launcher == "slurm":
        return (
            "\nstopped waiting; the jobs keep running on the cluster.\n"
            f"  see where they stand: python experiments/status.py {same}\n"
            f"  cancel them:          python experiments/status.py {same} cancel=true"
        )
    return (
        "\nstopped: local runs end with the launcher (their runs are KILLED, checkpoints kept).\n"
        f"  resume them: python experiments/ablation_grid.py {same}"
    )


def run(cfg: DictConfig) -> int:
    """Plan, print, submit, and (local/debug, or wait=true) wait and print the table; the exit code."""
    hydra_cfg = HydraConfig.get()
    overrides = command_line_overrides(hydra_cfg)
    try:
        specs = expand_configured_grid(cfg, hydra_cfg.job.config_name, overrides)
        check_grid_fits(specs)
    except GridError as exc:
        print(exc, file=sys.stderr)
        print("nothing was submitted", file=sys.stderr)
        return 2
    first = specs[0]
    uri, grid, launcher = first.tracking.uri, first.grid, first.launcher
    try:
        if not cfg.dry_run:  # a dry run creates nothing, not even the store
            ensure_experiment(uri, first.experiment)
        state = grid_state(first, update=not cfg.dry_run)
    except TrackingUnavailable as exc:
        print(exc, file=sys.stderr)
        print("nothing was submitted", file=sys.stderr)
        return 2
    statuses = {key: run.status for key, run in state.tracked.items()}
    on_slurm = any(spec.launcher.name == "slurm" for spec in specs)
    decisions = decide(specs, statuses, state.ledger, state.live_jobs)
    max_array = launcher.max_array_size or (cluster_max_array_size() if on_slurm else len(specs))
    plan = make_plan(specs, decisions, max_array)
    print(format_plan(plan))
    if cfg.dry_run:
        print("dry run: nothing submitted")
        return 0

    wait = cfg.wait if cfg.wait is not None else launcher.name in ("local", "debug")
    slots = launcher.array_parallelism
    queue = LocalQueue(plan) if launcher.name == "local" and wait else None
    try:
        submissions, jobs = queue.start(slots) if queue else submit(plan)
    except SubmissionError as exc:
        print(exc, file=sys.stderr)
        return 2
    if submissions:
        ids = ", ".join(sorted({entry.job_id.split("_")[0] for entry in submissions}))
        print(f"submitted {len(submissions)} runs: job ids {ids}")
    if queue and queue.waiting:
        print(f"{len(queue.waiting)} more start as these end (launcher.array_parallelism={slots})")
    elif launcher.name == "local" and len(submissions) > slots:
        print(
            f"wait=false: all {len(submissions)} local runs started at once (array_parallelism={slots} "
            "holds only while the launcher waits)",
            file=sys.stderr,
        )
    print(where_to_look(uri, first.experiment, grid, overrides))
    if not wait:
        return 0
    try:
        failures = wait_for(jobs, submissions, progress=cfg.progress, queue=queue, retrier=Retrier(specs))
    except KeyboardInterrupt:
        print(stopped_waiting(launcher.name, overrides), file=sys.stderr)
        return 130
    for line in failures:
        print(line, file=sys.stderr)
    grid_state(first)  # MLflow up to date: runs whose job is gone ended, what the jobs cost logged
    try:
        settings = ReportSettings.from_config(
            OmegaConf.to_container(cfg.tables, resolve=True), OmegaConf.to_container(cfg.grid, resolve=True)
        )
        report = make_report(specs, settings, tables_command(overrides))
    except ValueError as exc:
        print(f"no tables: {exc}", file=sys.stderr)
        return 1
    print(report.markdown)
    if cfg.grid.get("after_table"):  # what the grid's author wants a reader of its table to know
        print(f"\n{cfg.grid.after_table.strip()}")
    print(f"tables and plots: {tables_folder(first.output_root, grid)}")
    if report.table_run:
        print(f"MLflow table run: {report.table_run.where}")
    return 1 if failures else 0


@hydra.main(version_base="1.3", config_path="conf", config_name="ablation_grid")
def main(cfg: DictConfig) -> None:
    code = run(cfg)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
