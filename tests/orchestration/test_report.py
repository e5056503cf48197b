"""A grid's report end to end against a real MLflow server: files in every format and plots under the
grid's output folder, the same files on the grid's table run, and the entry point that writes them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from orchestration.compose import CONF_DIR, Composer
from orchestration.grid import expand_grid
from orchestration.report import ReportSettings, make_report, tables_command
from orchestration.tracking.grid_runs import grid_table_run, metric_histories, table_experiment
from tests.orchestration.toy_conf import write_toy_conf
from tests.orchestration.tracked_grid import ToyRun, log_grid

pytestmark = pytest.mark.mlflow_server
REPO = Path(__file__).resolve().parents[2]
GRID = {
    "name": "report_toy",
    "experiment": "emorl-report",
    "axes": [{"product": {"variant": {"reversed_plusplus": {}, "bottom_up": {"model.prior": "bottom_up"}}}}],
    "seeds": [1, 2, 3],
}
FG_ARI = {("reversed_plusplus", 1): 0.95, ("reversed_plusplus", 2): 0.85, ("bottom_up", 1): 0.02}


def toy_runs(specs) -> list[ToyRun]:
    """Two seeds of reversed_plusplus finished, bottom_up: one collapsed, one failed, one never started."""
    runs = []
    for spec in specs:
        variant = spec.labels["variant"]
        value = FG_ARI.get((variant, spec.seed))
        status = "FINISHED" if value is not None else "FAILED" if spec.seed == 2 else "MISSING"
        metrics = {"eval/fg_ari": value, "eval/mse": 1e-3, "eval/kl": 30.0} if value is not None else {}
        diagnosis = None if value is None else "collapsed" if value < 0.1 else "segmenting"
        runs.append(
            ToyRun(spec.cell_key, spec.labels, spec.seed, status, metrics, diagnosis, key=spec.run_key)
        )
    return runs


@pytest.fixture(scope="module")
def specs(mlflow_server: str, tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    overrides = ["tracking.kind=server", f"tracking.uri={mlflow_server}"]
    specs = expand_grid(GRID, Composer("toy", overrides, conf_dir=write_toy_conf(root, root / "out")))
    log_grid(mlflow_server, GRID["experiment"], GRID["name"], toy_runs(specs), history_steps=5)
    return specs


@pytest.fixture(scope="module")
def report(specs):
    return make_report(
        specs, ReportSettings(layout="table2", paper=True), "python experiments/tables.py grid=x"
    )


def test_every_format_and_both_plots_land_in_the_grids_tables_folder(specs, report):
    folder = Path(specs[0].output_root) / "report_toy" / "tables"
    names = sorted(path.name for path in report.files)
    assert names == sorted(
        f"report_toy{suffix}"
        for suffix in (".md", ".tex", ".csv", ".json", "_curves.png", "_fg_ari_seeds.png")
    )
    assert all(path.parent == folder and path.stat().st_size > 0 for path in report.files)
    assert all(path.read_bytes()[:4] == b"\x89PNG" for path in report.files if path.suffix == ".png")


def test_the_markdown_names_the_collapsed_failed_and_missing_seeds(report):
    assert (
        "bottom_up, tetrominoes: 1 of 3 seeds finished; seed 3 missing; seed 2 failed; seed 1 collapsed"
        in (report.markdown)
    )
    assert "reversed_plusplus, tetrominoes: 2 of 3 seeds finished; seed 3 missing" in report.markdown
    assert "90.0 ± 7.1" in report.markdown and "97.9 ± 2.4" in report.markdown  # ours beside the paper's


def test_the_files_are_artifacts_of_the_grids_table_run_apart_from_training_runs(mlflow_server, report):
    client = MlflowClient(mlflow_server)
    run = client.get_run(report.table_run.run_id)
    tables = client.get_experiment_by_name(table_experiment("emorl-report"))
    assert run.info.experiment_id == tables.experiment_id and run.info.status == "FINISHED"
    logged = {Path(a.path).name for a in client.list_artifacts(report.table_run.run_id, "tables")}
    assert logged == {path.name for path in report.files}
    training = client.get_experiment_by_name("emorl-report")
    assert (
        "90.0 ± 7.1" in training.tags["mlflow.note.content"]
    )  # the experiment's description shows the table
    assert report.table_run.run_id in training.tags["mlflow.note.content"]
    page = f"{mlflow_server}/#/experiments/{tables.experiment_id}/runs/{report.table_run.run_id}"
    assert report.table_run.where == page


def test_grid_experiments_open_as_model_training_in_the_ui(mlflow_server, report):
    for name in ("emorl-report", table_experiment("emorl-report")):
        kind = MlflowClient(mlflow_server).get_experiment_by_name(name).tags.get("mlflow.experimentKind")
        assert kind == "custom_model_development"


def test_processes_asking_at_once_share_one_table_run(mlflow_server):
    found: list[str] = []
    threads = [
        threading.Thread(target=lambda: found.append(grid_table_run(mlflow_server, "emorl-race", "race")))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name(table_experiment("emorl-race"))
    alive = client.search_runs([experiment.experiment_id], filter_string="tags.grid_table = 'race'")
    assert len(set(found)) == 1 and [run.info.run_id for run in alive] == found[:1]


def test_an_ended_runs_history_is_read_once_then_from_the_cache(mlflow_server, specs, tmp_path):
    client = MlflowClient(mlflow_server)
    run_id = next(
        run.info.run_id
        for run in client.search_runs(
            [client.get_experiment_by_name("emorl-report").experiment_id], "tags.seed = '1'", max_results=1
        )
    )
    end_time = client.get_run(run_id).info.end_time
    first = metric_histories(mlflow_server, [(run_id, end_time)], ["train/nll"], tmp_path)
    assert [step for step, _ in first[run_id]["train/nll"]] == [0, 1, 2, 3, 4]
    cached = tmp_path / f"{run_id}-{end_time}.json"
    cached.write_text(json.dumps({"train/nll": [[7, 1.5]]}))  # a sentinel: only the cache can return it
    assert metric_histories(mlflow_server, [(run_id, end_time)], ["train/nll"], tmp_path)[run_id] == {
        "train/nll": [(7, 1.5)]
    }
    again = metric_histories(mlflow_server, [(run_id, end_time + 1)], ["train/nll"], tmp_path)  # it changed
    assert len(again[run_id]["train/nll"]) == 5


def test_settings_follow_the_grids_table_choice_unless_overridden():
    grid = {"table": {"layout": "table1", "paper": True}}
    assert ReportSettings.from_config({"layout": None, "paper": None}, grid).layout == "table1"
    assert ReportSettings.from_config({"layout": None, "paper": None}, grid).paper is True
    assert ReportSettings.from_config({"layout": "generic", "paper": False}, grid).paper is False
    assert ReportSettings.from_config({"layout": "generic", "paper": None}, grid).paper is False
    assert ReportSettings.from_config({}, {}).layout == "generic"
    with pytest.raises(ValueError, match=r"tables\.layout='table3' is not known"):
        ReportSettings.from_config({"layout": "table3"}, {})


def test_the_regenerating_command_leaves_out_the_launchers_own_keys():
    command = tables_command(["grid=demo", "wait=true", "dry_run=false", "tables.include_collapsed=false"])
    assert command == "python experiments/tables.py grid=demo tables.include_collapsed=false"


@pytest.mark.slow
def test_the_entry_point_writes_every_format_and_logs_it(mlflow_server, tmp_path):
    overrides = ["grid=demo", f"output_root={tmp_path}", "tracking=server", f"tracking.uri={mlflow_server}"]
    demo = yaml.safe_load((CONF_DIR / "grid" / "demo.yaml").read_text())
    specs = expand_grid(demo, Composer("tables", overrides))
    finished = [
        ToyRun(
            s.cell_key,
            s.labels,
            s.seed,
            "FINISHED",
            {"eval/fg_ari": 0.5 + 0.1 * s.seed},
            "partial",
            key=s.run_key,
        )
        for s in specs
    ]
    log_grid(mlflow_server, "emorl-demo", "demo", finished)
    done = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "tables.py"), *overrides, "print_format=latex"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (
        done.stdout.startswith("% regenerate: python experiments/tables.py grid=demo")
        and r"\toprule" in done.stdout
    )
    assert sorted(p.name for p in (tmp_path / "demo" / "tables").iterdir()) == [
        "demo.csv",
        "demo.json",
        "demo.md",
        "demo.tex",
        "demo_fg_ari_seeds.png",
    ]  # no curves: these runs logged no training history
    assert "MLflow table run: http" in done.stderr and "View run" not in done.stdout + done.stderr
