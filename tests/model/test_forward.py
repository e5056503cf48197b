"""EMORL forward pass: output contract of docs/model.md#outputs and its invariants."""

import math

import torch

from emorl.model import EMORL, EMORLOutput
from emorl.model.distributions import MIN_VARIANCE, sigma
from tests.model.conftest import seeded_noise, toy_config, toy_images


def test_forward_returns_the_documented_shapes(tiny):
    torch.manual_seed(0)
    out = EMORL(tiny)(toy_images(tiny), refinement_steps=2)
    assert isinstance(out, EMORLOutput)
    assert out.total_loss.shape == out.nll.shape == out.kl.shape == ()
    assert out.nll_per_image.shape == out.kl_per_image.shape == out.kl_stage1_per_image.shape == (2,)
    assert out.deltas.shape == (2,)
    assert len(out.means) == len(out.log_masks) == 3
    assert out.means[-1].shape == (2, 3, 3, 16, 16)
    assert out.log_masks[-1].shape == (2, 3, 1, 16, 16)
    assert len(out.attention) == 3 and out.attention[0].shape == (2, 3, 1, 16, 16)
    assert out.posterior_mu.shape == out.posterior_s.shape == (2, 3, 8)
    assert out.reconstruction.shape == (2, 3, 16, 16)


def test_all_stages_adds_the_intermediate_layers(tiny):
    out = EMORL(tiny)(toy_images(tiny), refinement_steps=1, all_stages=True)
    assert len(out.means) == len(out.log_masks) == (tiny.stochastic_layers - 1) + 2


def test_masks_sum_to_one_over_slots_at_every_stage(tiny):
    out = EMORL(tiny)(toy_images(tiny), refinement_steps=3)
    for log_masks in out.log_masks:
        torch.testing.assert_close(log_masks.exp().sum(dim=1), torch.ones(2, 1, 16, 16))


def test_kl_terms_are_non_negative():
    for prior in ("reversed_plusplus", "reversed", "bottom_up"):
        cfg = toy_config(prior=prior)
        out = EMORL(cfg)(toy_images(cfg), refinement_steps=2)
        assert (out.kl_per_image >= 0).all() and (out.kl_stage1_per_image >= 0).all()


def test_posterior_std_never_drops_below_its_floor(tiny):
    out = EMORL(tiny)(toy_images(tiny), refinement_steps=2)
    assert (sigma(out.posterior_s) >= math.sqrt(MIN_VARIANCE)).all()


def test_batch_size_and_slot_count_are_runtime_properties():
    cfg = toy_config(K=4)
    model = EMORL(cfg)
    out = model(toy_images(cfg, batch=3), refinement_steps=1, num_slots=6)
    assert out.means[-1].shape == (3, 6, 3, 16, 16)
    assert out.posterior_mu.shape == (3, 6, 8)
    assert torch.isfinite(out.total_loss)


def test_same_seed_gives_an_identical_loss(tiny):
    losses = []
    for _ in range(2):
        torch.manual_seed(123)
        model = EMORL(tiny)
        losses.append(model(toy_images(tiny), refinement_steps=2).total_loss)
    assert torch.equal(losses[0], losses[1])


def test_refinement_runs_under_no_grad_with_the_same_result_as_with_grad(tiny):
    """Refinement needs ∂𝓛/∂λ: under no_grad the model enables grad locally and gets the same numbers."""
    model = EMORL(tiny).eval()
    images = toy_images(tiny)
    with_grad = model(images, refinement_steps=3, noise=seeded_noise(7))
    with torch.no_grad():
        without_grad = model(images, refinement_steps=3, noise=seeded_noise(7))
    assert not without_grad.total_loss.requires_grad
    assert torch.isfinite(without_grad.total_loss)
    torch.testing.assert_close(without_grad.total_loss, with_grad.total_loss.detach())
    torch.testing.assert_close(without_grad.means[-1], with_grad.means[-1].detach())
    torch.testing.assert_close(without_grad.deltas, with_grad.deltas)


def test_refinement_gradient_is_taken_without_a_second_order_graph(tiny):
    model = EMORL(tiny)
    seen = []
    model.refinement.register_forward_pre_hook(lambda module, args: seen.append(args[2:4]))
    model(toy_images(tiny), refinement_steps=2).total_loss.backward()
    assert len(seen) == 2
    for grad_mu, grad_s in seen:
        assert grad_mu.grad_fn is None and grad_s.grad_fn is None
        assert not grad_mu.requires_grad and not grad_s.requires_grad


def test_total_loss_with_no_refinement_is_the_weighted_elbo():
    for scheme, weight in (("code", 3.0), ("paper", 1.0)):
        cfg = toy_config(loss_weights=scheme)
        out = EMORL(cfg)(toy_images(cfg), refinement_steps=0)
        torch.testing.assert_close(out.total_loss, weight * (out.nll + out.kl))
        torch.testing.assert_close(out.kl_per_image, out.kl_stage1_per_image)
        assert out.deltas.shape == (0,)


def test_bf16_autocast_trains_with_full_precision_outputs():
    cfg = toy_config(likelihood="gmm")
    model = EMORL(cfg)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(toy_images(cfg), refinement_steps=2)
    out.total_loss.backward()
    assert out.total_loss.dtype == out.means[-1].dtype == out.posterior_mu.dtype == torch.float32
    assert torch.isfinite(out.total_loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_outputs_other_than_the_loss_carry_no_graph(tiny):
    out = EMORL(tiny)(toy_images(tiny), refinement_steps=1)
    assert out.total_loss.requires_grad
    assert not any(t.requires_grad for t in [out.nll, out.kl, out.posterior_mu, *out.means, *out.log_masks])


def test_channels_last_model_computes_the_same_step(tiny):
    torch.manual_seed(0)
    model = EMORL(tiny)
    images = toy_images(tiny)
    out = model(images, refinement_steps=2, noise=seeded_noise(1))
    model.to(memory_format=torch.channels_last)
    assert model.decoder.layers[2].weight.is_contiguous(memory_format=torch.channels_last)
    channels_last = model(images, refinement_steps=2, noise=seeded_noise(1))
    torch.testing.assert_close(channels_last.total_loss, out.total_loss)
    torch.testing.assert_close(channels_last.means[-1], out.means[-1])


def test_no_grad_without_refinement_gives_finite_outputs(tiny):
    with torch.no_grad():
        out = EMORL(tiny)(toy_images(tiny), refinement_steps=0)
    assert not out.total_loss.requires_grad
    assert torch.isfinite(out.total_loss) and torch.isfinite(out.means[-1]).all()


def test_detached_output_keeps_the_values_without_the_graph(tiny):
    out = EMORL(tiny)(toy_images(tiny), refinement_steps=1)
    detached = out.detach()
    assert not detached.total_loss.requires_grad
    assert torch.equal(detached.total_loss, out.total_loss.detach())
    assert len(detached.means) == len(out.means)
