"""The training loop end to end with the real EMORL on real (generated) Tetrominoes files."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from emorl.model import EMORL
from emorl.train import NonFiniteTrainingError, train
from emorl.train.checkpoint import ConfigDriftError, list_checkpoints, load_checkpoint, load_for_eval
from emorl.train.loop import GlobalBatchSampler, assert_finite_state, local_batch_size


def final_state(result) -> dict:
    return load_checkpoint(result.checkpoint_path)


def assert_same_parameters(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


def test_resume_continues_bit_exactly(make_config):
    straight = train(make_config("straight", iters=20), progress=False)
    train(make_config("split", iters=10), progress=False)
    resumed = train(make_config("split", iters=20), progress=False)  # iters may change on resume
    assert straight.final_step == resumed.final_step == 20
    a, b = final_state(straight), final_state(resumed)
    assert_same_parameters(a["model"], b["model"])
    assert_same_parameters(a["geco"], b["geco"])
    assert a["geco"]["beta"] != 0.55, "GECO should have stepped ζ after its warm start"


def test_checkpoints_every_n_steps_keeping_the_last_k(make_config):
    result = train(make_config(iters=7, checkpoint_every_steps=2, keep_checkpoints=2), progress=False)
    names = [p.name for p in list_checkpoints(Path(result.checkpoint_path).parent)]
    assert names == ["step-00000006.pt", "step-00000007.pt"]


def test_checkpoint_holds_config_and_sampler_position(make_config):
    cfg = make_config(iters=3)
    state = final_state(train(cfg, progress=False))
    assert state["config"] == cfg.to_dict()
    assert state["step"] == 3
    assert {"model", "optimizer", "geco", "rng", "nonfinite_steps"} <= state.keys()


def test_resume_with_changed_learning_rate_is_refused(make_config):
    train(make_config(iters=2), progress=False)
    with pytest.raises(ConfigDriftError, match=r"training.lr: 0.0004 -> 0.001"):
        train(make_config(iters=4, lr=1e-3), progress=False)


def test_stop_request_checkpoints_at_the_step_boundary(make_config):
    calls = []

    def stop_requested() -> bool:
        calls.append(1)
        return len(calls) >= 3

    result = train(make_config(iters=10), stop_requested=stop_requested, progress=False)
    assert result.preempted and result.final_step == 3
    assert load_checkpoint(result.checkpoint_path)["step"] == 3
    finished = train(make_config(iters=10), progress=False)
    assert not finished.preempted and finished.final_step == 10


def test_non_finite_steps_are_skipped_and_counted(make_config):
    # A NaN GECO target makes every step from the warm start (3) on non-finite.
    clean = train(make_config("clean", iters=3), progress=False)
    poisoned = train(make_config("nan", iters=6, geco={"reconstruction_target": math.nan}), progress=False)
    assert poisoned.metrics["train/nonfinite_steps"] == 3
    assert_same_parameters(final_state(clean)["model"], final_state(poisoned)["model"])


def test_too_many_non_finite_steps_in_a_row_stop_training(make_config):
    cfg = make_config(
        iters=10,
        max_nonfinite_steps=2,
        checkpoint_every_steps=1,
        keep_checkpoints=20,
        geco={"reconstruction_target": math.nan},
    )
    with pytest.raises(NonFiniteTrainingError, match="2 consecutive steps"):
        train(cfg, progress=False)
    saved = list_checkpoints(Path(cfg.training.output_dir) / "checkpoints")
    assert saved, "the finite steps before should have been checkpointed"
    for path in saved:
        assert all(
            torch.isfinite(t).all() for t in load_checkpoint(path)["model"].values() if t.is_floating_point()
        )


def test_non_finite_model_state_is_never_checkpointed(make_config):
    model = EMORL(make_config().model)
    with torch.no_grad():
        next(model.parameters())[0].fill_(math.nan)
    with pytest.raises(NonFiniteTrainingError, match="non-finite values; not checkpointing"):
        assert_finite_state(model, None)


def test_global_batch_must_split_evenly_over_ranks():
    assert local_batch_size(32, 8) == 4
    with pytest.raises(ValueError, match="not divisible by the 3 ranks"):
        local_batch_size(32, 3)


def test_data_order_depends_on_seed_not_on_world_size():
    single = list(GlobalBatchSampler(20, 4, 0, 1, seed=1, start_step=0, stop_step=12))
    halves = [list(GlobalBatchSampler(20, 4, rank, 2, seed=1, start_step=0, stop_step=12)) for rank in (0, 1)]
    assert [a + b for a, b in zip(*halves, strict=True)] == single
    other_seed = list(GlobalBatchSampler(20, 4, 0, 1, seed=2, start_step=0, stop_step=12))
    assert other_seed != single
    resumed = list(GlobalBatchSampler(20, 4, 0, 1, seed=1, start_step=7, stop_step=12))
    assert resumed == single[7:]


def test_load_for_eval_rebuilds_the_trained_model_from_the_run_folder(make_config):
    cfg = make_config(iters=4)
    trained = final_state(train(cfg, progress=False))
    loaded = load_for_eval(cfg.training.output_dir)
    assert loaded.step == 4 and loaded.config == cfg
    assert not loaded.model.training
    assert_same_parameters(trained["model"], loaded.model.state_dict())
    assert loaded.geco.beta == trained["geco"]["beta"]
    with torch.no_grad():
        out = loaded.model(
            torch.zeros(2, 3, 35, 35), refinement_steps=1, geco=loaded.geco, global_step=loaded.step
        )
    assert out.reconstruction.shape == (2, 3, 35, 35)
