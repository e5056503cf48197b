"""The refinement network's input is normalised by an explicit batch size, not by whatever batch it sees.

Its input is LayerNorm(∂ batch-mean loss / ∂λ): each image's gradient carries 1/B, which LayerNorm's eps
(1e-5) does not fully cancel, so a large batch measurably changes how each of its images is refined.
"""

import torch

from emorl.model import EMORL
from tests.model.conftest import toy_config, toy_images

BATCH = 64


def refine(model: EMORL, images: torch.Tensor, **kwargs) -> torch.Tensor:
    """Final posterior means with every random draw fixed to zero (z = μ), so images stay independent."""
    with torch.no_grad():
        return model(images, refinement_steps=3, noise=torch.zeros_like, **kwargs).posterior_mu


def test_an_image_refines_alike_alone_and_in_a_batch_when_normalised_per_image():
    torch.manual_seed(0)
    model = EMORL(toy_config())
    images = toy_images(model.cfg, batch=BATCH)
    alone = refine(model, images[:1], refinement_batch_size=1)
    in_batch = refine(model, images, refinement_batch_size=1)[:1]
    torch.testing.assert_close(in_batch, alone, rtol=0, atol=1e-7)


def test_the_default_normalises_by_the_batch_it_sees():
    torch.manual_seed(0)
    model = EMORL(toy_config())
    images = toy_images(model.cfg, batch=BATCH)
    torch.testing.assert_close(refine(model, images), refine(model, images, refinement_batch_size=BATCH))
    assert (refine(model, images)[:1] - refine(model, images[:1])).abs().max() > 5e-7
