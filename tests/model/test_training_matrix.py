"""Every architecture combination builds and trains one step at toy size (16×16, D=8, B=2, K=3)."""

import itertools

import pytest
import torch

from emorl.model import EMORL
from tests.model.conftest import toy_config, toy_images

# Full product over the cheap axes; decoder × likelihood run as their own product (``big`` needs 96×96).
CHEAP = list(
    itertools.product([0, 1, 3], [0, 1, 3], ["reversed_plusplus", "reversed", "bottom_up"], [True, False])
)
HEADS = list(itertools.product(["iodine", "small", "big"], ["gmm", "gaussian"]))


def _train_step(cfg, steps: int, batch: int = 2) -> None:
    torch.manual_seed(0)
    model = EMORL(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.decoder.parameters()]
    out = model(toy_images(cfg, batch=batch), refinement_steps=steps)
    out.total_loss.backward()
    optimizer.step()
    assert torch.isfinite(out.total_loss)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.decoder.parameters(), strict=True))


@pytest.mark.parametrize(("layers", "steps", "prior", "dual_gru"), CHEAP)
def test_architecture_trains_a_step(layers, steps, prior, dual_gru):
    likelihood = ["gmm", "gaussian"][(layers + steps) % 2]
    _train_step(
        toy_config(stochastic_layers=layers, prior=prior, dual_gru=dual_gru, likelihood=likelihood), steps
    )


@pytest.mark.parametrize(("decoder", "likelihood"), HEADS)
def test_decoder_and_likelihood_train_a_step(decoder, likelihood):
    big = decoder == "big"  # 96×96: keep it to one image, two slots and no encoder
    cfg = toy_config(
        decoder=decoder, likelihood=likelihood, stochastic_layers=0 if big else 1, K=2 if big else 3
    )
    _train_step(cfg, steps=1, batch=1 if big else 2)
