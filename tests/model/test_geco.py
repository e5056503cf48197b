"""GECO (docs/training.md#geco), checked against values computed by hand."""

import pytest
import torch
import torch.nn.functional as F

from emorl.config import GecoConfig
from emorl.geco import GECO

# C = -1.0 per dim × 10 dims = -10; α = 0.9; η = 0.1; acceleration 5; warm start at step 2
CFG = GecoConfig(
    reconstruction_target=-1.0, ema_alpha=0.9, step_size=0.1, step_size_acceleration=5.0, warm_start=2
)


def _state(geco: GECO) -> tuple[float, float]:
    return geco.C_ema.item(), geco.beta.item()


def test_nothing_moves_before_the_warm_start():
    geco = GECO(CFG, num_pixels=10)
    geco.update(torch.tensor(-12.0), global_step=1)
    assert _state(geco) == (0.0, pytest.approx(0.55))
    assert not geco.active(1) and geco.active(2)


def test_warm_start_initialises_the_ema_without_stepping_zeta():
    geco = GECO(CFG, num_pixels=10)
    geco.update(torch.tensor(-12.0), global_step=2)
    assert _state(geco) == pytest.approx((2.0, 0.55))  # C - NLL = -10 + 12


def test_ema_and_zeta_follow_the_update_rule():
    geco = GECO(CFG, num_pixels=10)
    geco.update(torch.tensor(-12.0), global_step=2)  # C_ema = 2
    geco.update(torch.tensor(40.0), global_step=3)  # C_ema = 0.9·2 + 0.1·(-50) = -3.2 → ζ += 0.1·3.2
    assert _state(geco) == pytest.approx((-3.2, 0.55 + 0.32))


def test_positive_ema_steps_faster_and_zeta_stops_at_the_floor():
    geco = GECO(CFG, num_pixels=10)
    geco.update(torch.tensor(-12.0), global_step=2)
    geco.update(torch.tensor(40.0), global_step=3)  # ζ = 0.87, C_ema = -3.2
    geco.update(torch.tensor(-60.0), global_step=4)  # C_ema = -2.88 + 5 = 2.12 → ζ -= 5·0.1·2.12 → floor
    assert _state(geco) == pytest.approx((2.12, 0.55))
    geco.beta.fill_(2.0)
    geco.update(torch.tensor(-10.5), global_step=5)  # C_ema = 1.908 + 0.05 = 1.958 → ζ = 2 - 0.979
    assert _state(geco) == pytest.approx((1.958, 2.0 - 0.979))


def test_constraint_value_is_the_ema_and_its_gradient_the_weighted_nll():
    geco = GECO(CFG, num_pixels=10)
    geco.C_ema.fill_(3.0)
    geco.beta.fill_(1.5)
    nll = torch.tensor(-4.0, requires_grad=True)
    constraint = geco.constraint(nll)
    constraint.backward()
    weight = F.softplus(torch.tensor(1.5))
    torch.testing.assert_close(constraint.detach(), weight * 3.0)
    torch.testing.assert_close(nll.grad, -weight)


def test_state_lives_in_the_state_dict():
    geco = GECO(CFG, num_pixels=10)
    geco.update(torch.tensor(-12.0), global_step=2)
    restored = GECO(CFG, num_pixels=10)
    restored.load_state_dict(geco.state_dict())
    assert set(geco.state_dict()) == {"beta", "C_ema"}
    assert _state(restored) == _state(geco)
    assert geco.beta.dtype == geco.C_ema.dtype == torch.float32


def test_disabled_geco_is_never_active():
    geco = GECO(GecoConfig(enabled=False, warm_start=0), num_pixels=10)
    assert not geco.active(10_000)
