"""Checkpoint files: atomic writes, keep-last-k, resume drift refusal.

The tiny ``nn.Linear`` here only stands in for model weights inside the checkpoint *file mechanics*;
end-to-end resume with the real EMORL is tested in test_loop.py.
"""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from emorl.config import ExperimentConfig
from emorl.train.checkpoint import (
    CheckpointError,
    ConfigDriftError,
    check_resume_config,
    config_drift,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)


def state(step: int) -> dict:
    return {
        "step": step,
        "config": ExperimentConfig().to_dict(),
        "model": {"w": torch.full((3,), float(step))},
    }


def test_save_then_load_round_trips(tmp_path: Path):
    path = save_checkpoint(tmp_path, 7, state(7), keep=3)
    assert path.name == "step-00000007.pt"
    loaded = load_checkpoint(path)
    assert loaded["step"] == 7
    assert torch.equal(loaded["model"]["w"], torch.full((3,), 7.0))


def test_only_the_newest_k_are_kept(tmp_path: Path):
    for step in (10, 20, 30, 40):
        save_checkpoint(tmp_path, step, state(step), keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000030.pt", "step-00000040.pt"]


def test_newest_is_by_step_not_by_name_length(tmp_path: Path):
    save_checkpoint(tmp_path, 99_999_999, state(1), keep=5)
    save_checkpoint(tmp_path, 100_000_000, state(2), keep=5)
    assert latest_checkpoint(tmp_path).name == "step-100000000.pt"


def test_temporary_files_are_never_picked_up(tmp_path: Path):
    save_checkpoint(tmp_path, 5, state(5), keep=3)
    (tmp_path / ".step-00000010.pt.abc.tmp").write_bytes(b"partial")
    assert latest_checkpoint(tmp_path).name == "step-00000005.pt"


def test_kill_during_write_leaves_previous_checkpoint_loadable(tmp_path: Path):
    save_checkpoint(tmp_path, 1, state(1), keep=3)
    # A child process writes a large checkpoint and is SIGKILLed while torch.save is still writing.
    script = textwrap.dedent(
        f"""
        import sys, torch
        from emorl.train import checkpoint
        real_save = torch.save
        def slow_save(obj, f):
            real_save(obj, f)
            f.flush()
            print("written", flush=True)
            import time; time.sleep(60)
        torch.save = slow_save
        checkpoint.save_checkpoint({str(tmp_path)!r}, 2, {{"step": 2, "config": {{}},
                                   "model": {{"w": torch.zeros(2_000_000)}}}}, keep=3)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "written"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers, "the killed write should have left its temporary file behind"
    newest = latest_checkpoint(tmp_path)
    assert newest.name == "step-00000001.pt"
    assert load_checkpoint(newest)["step"] == 1


def test_unreadable_checkpoint_is_a_clear_error(tmp_path: Path):
    bad = tmp_path / "step-00000003.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(bad)


def test_run_folder_resolves_to_newest_checkpoint(tmp_path: Path):
    save_checkpoint(tmp_path / "checkpoints", 4, state(4), keep=3)
    save_checkpoint(tmp_path / "checkpoints", 8, state(8), keep=3)
    assert resolve_checkpoint(tmp_path).name == "step-00000008.pt"
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        resolve_checkpoint(tmp_path / "elsewhere")


def test_allowed_changes_pass_the_drift_check():
    saved = ExperimentConfig().to_dict()
    current = ExperimentConfig().to_dict()
    current["training"]["iters"] = 10
    current["training"]["log_every"] = 1
    current["data"]["num_workers"] = 0
    current["training"]["output_dir"] = "/elsewhere"
    current["eval"]["num_images"] = 5
    assert config_drift(saved, current) == []


def test_resume_with_changed_learning_rate_is_refused():
    saved = ExperimentConfig().to_dict()
    current = ExperimentConfig().to_dict()
    current["training"]["lr"] = 1e-3
    current["model"]["K"] = 9
    with pytest.raises(ConfigDriftError) as caught:
        check_resume_config(Path("ckpt.pt"), saved, current)
    assert caught.value.changes == ["model.K: 4 -> 9", "training.lr: 0.0004 -> 0.001"]
    assert "training.resume=false" in str(caught.value)


def test_successful_save_leaves_no_temporary_file(tmp_path: Path):
    save_checkpoint(tmp_path, 1, state(1), keep=1)
    assert [p.name for p in tmp_path.iterdir()] == ["step-00000001.pt"]


def test_an_older_checkpoint_loads_without_the_keys_the_config_no_longer_has(tmp_path: Path):
    saved = state(3)
    saved["config"]["model"]["refinement_steps"] = 3
    loaded = load_checkpoint(save_checkpoint(tmp_path, 3, saved, keep=1))
    assert config_drift(loaded["config"], ExperimentConfig().to_dict()) == []
