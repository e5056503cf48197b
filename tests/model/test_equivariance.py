"""docs/model.md#symmetry: permuting the slots' noise permutes the slots and leaves the image and loss
alone."""

import pytest
import torch

from emorl.model import EMORL
from tests.model.conftest import seeded_noise, toy_config, toy_images


@pytest.mark.parametrize("prior", ["reversed_plusplus", "bottom_up"])
def test_permuting_slot_samples_permutes_slots_and_keeps_the_loss(prior):
    cfg = toy_config(K=4, prior=prior, likelihood="gmm")
    torch.manual_seed(0)
    model = EMORL(cfg)
    images = toy_images(cfg)
    permutation = torch.tensor([2, 0, 3, 1])
    out = model(images, refinement_steps=2, noise=seeded_noise(5))
    permuted = model(images, refinement_steps=2, noise=seeded_noise(5, permutation))
    torch.testing.assert_close(permuted.posterior_mu, out.posterior_mu[:, permutation])
    torch.testing.assert_close(permuted.posterior_s, out.posterior_s[:, permutation])
    torch.testing.assert_close(permuted.means[-1], out.means[-1][:, permutation])
    torch.testing.assert_close(permuted.log_masks[-1], out.log_masks[-1][:, permutation])
    torch.testing.assert_close(permuted.attention[-1], out.attention[-1][:, permutation])
    torch.testing.assert_close(permuted.reconstruction, out.reconstruction)
    torch.testing.assert_close(permuted.total_loss, out.total_loss)
    torch.testing.assert_close(permuted.kl_per_image, out.kl_per_image)
