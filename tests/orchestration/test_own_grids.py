"""A grid kept in a folder of one's own (``hydra.searchpath``) plans, shows its status and is named again in
the commands the entry points print."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from orchestration.report import tables_command

REPO = Path(__file__).resolve().parents[2]


def entry_point(script: str, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "experiments" / script), *overrides]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)


def test_a_grid_from_a_folder_of_ones_own_plans_and_shows_its_status(tmp_path):
    (tmp_path / "conf" / "grid").mkdir(parents=True)
    grid = {
        "name": "mine",
        "base": {"dataset": "tetrominoes", "training.iters": 10},
        "axes": [{"product": {"model.z_size": [8, 12, 16]}}],
        "seeds": [1, 2],
    }
    (tmp_path / "conf" / "grid" / "mine.yaml").write_text(yaml.safe_dump(grid))
    overrides = [
        "grid=mine",
        f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
        f"output_root={tmp_path / 'out'}",
    ]

    planned = entry_point("ablation_grid.py", *overrides, "dry_run=true")
    assert planned.returncode == 0, planned.stderr
    assert "new: 6" in planned.stdout

    status = entry_point("status.py", *overrides)
    assert status.returncode == 0, status.stderr
    assert "mine" in status.stdout
    for z_size in (8, 12, 16):
        assert f"model.z_size={z_size} " in status.stdout


def test_printed_commands_quote_what_the_shell_would_split_or_expand():
    command = tables_command(["grid=mine", "hydra.searchpath=[file:///my grids]", "dry_run=true"])
    assert command == "python experiments/tables.py grid=mine 'hydra.searchpath=[file:///my grids]'"
