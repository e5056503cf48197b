"""Loss weights (docs/model.md#loss table) and the GECO form of the per-iteration loss."""

import pytest
import torch

from emorl.config import GecoConfig
from emorl.geco import GECO
from emorl.model import EMORL
from emorl.model.emorl import loss_weights
from tests.model.conftest import seeded_noise, toy_config, toy_images

CODE = {0: [3.0], 1: [2.0, 1.5], 2: [5 / 3, 4 / 3, 1.0], 3: [1.5, 1.25, 1.0, 0.75]}
PAPER = {0: [1.0], 1: [1.0, 0.5], 2: [1.0, 2 / 3, 1 / 3], 3: [1.0, 0.75, 0.5, 0.25]}


@pytest.mark.parametrize("steps", [0, 1, 2, 3])
def test_loss_weights_match_the_spec_table(steps):
    assert loss_weights("code", steps) == pytest.approx(CODE[steps])
    assert loss_weights("paper", steps) == pytest.approx(PAPER[steps])


def test_geco_loss_value_is_beta_kl_minus_softplus_zeta_times_ema():
    cfg = toy_config()
    model = EMORL(cfg)
    geco = GECO(GecoConfig(warm_start=0), num_pixels=3 * 16 * 16)
    geco.C_ema.fill_(-5.0)
    out = model(toy_images(cfg), refinement_steps=0, geco=geco, global_step=0, kl_beta=1.0)
    expected = 3.0 * (out.kl - torch.nn.functional.softplus(geco.beta) * -5.0)
    torch.testing.assert_close(out.total_loss, expected)


def test_geco_waits_for_its_warm_start():
    cfg = toy_config()
    model = EMORL(cfg)
    geco = GECO(GecoConfig(warm_start=1000), num_pixels=3 * 16 * 16)
    images = toy_images(cfg)
    before = model(images, refinement_steps=1, geco=geco, global_step=999, noise=seeded_noise(3))
    plain = model(images, refinement_steps=1, noise=seeded_noise(3))
    torch.testing.assert_close(before.total_loss, plain.total_loss)
