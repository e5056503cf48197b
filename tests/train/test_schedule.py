"""The LR schedule (docs/training.md#optimiser) and the refinement curriculum
(docs/training.md#refinement-curriculum)."""

import math

import pytest

from emorl.train.schedule import learning_rate, refinement_steps_at


def lr(step: int) -> float:
    return learning_rate(step, base_lr=4e-4, warmup_steps=10_000, decay_rate=0.5, decay_steps=100_000)


def test_first_update_has_zero_learning_rate():
    assert lr(0) == 0.0


def test_warm_up_is_linear_to_the_base_rate():
    assert lr(2_500) == pytest.approx(1e-4)
    assert lr(10_000) == pytest.approx(4e-4)


def test_decay_halves_every_decay_steps_after_warm_up():
    assert lr(110_000) == pytest.approx(2e-4)
    assert lr(300_000) == pytest.approx(4e-4 * 0.5**2.9)
    assert lr(300_000) == pytest.approx(5.36e-5, rel=1e-3)


def test_no_warm_up_starts_at_the_base_rate():
    assert learning_rate(0, 1e-3, 0, 0.5, 10) == 1e-3


def test_schedule_is_monotone_around_the_hand_over():
    assert lr(9_999) < lr(10_000) and lr(10_001) < lr(10_000)
    assert math.isclose(lr(10_001), 4e-4, rel_tol=1e-5)


def test_curriculum_takes_last_entry_started():
    curriculum = [[-1, 3], [100_000, 1], [200_000, 1]]
    assert refinement_steps_at(0, curriculum) == 3
    assert refinement_steps_at(99_999, curriculum) == 3
    assert refinement_steps_at(100_000, curriculum) == 1
    assert refinement_steps_at(250_000, curriculum) == 1


def test_curriculum_without_an_early_entry_names_the_fix():
    with pytest.raises(ValueError, match=r"start it with \[-1, I\]"):
        refinement_steps_at(5, [[10, 2]])
