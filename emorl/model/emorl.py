"""EMORL: two-stage inference (bottom-up HVAE, then I refinement steps) and the weighted loss of
docs/model.md#loss.

Differences from the reference; the gradients and values are the same (tests/model/test_gradients.py):
* B and K are runtime properties, not fixed at construction.
* The refinement gradient ∂𝓛/∂λ is taken without ``create_graph`` (the reference builds a second-order
  graph and detaches it). Each iteration's parameter gradients are taken together with it, so every decoder
  pass is differentiated once (not twice) and its activations are freed before the next one is built.
* Refinement also works under ``torch.no_grad()`` (it enables grad locally, which evaluation needs).
* Models with L = 0 hold no encoder and models with L ≤ 1 no prior network, as nothing would read them.
Only ``total_loss`` carries a graph; every other output is detached.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn

from emorl.config import ConfigError, ModelConfig
from emorl.geco import GECO
from emorl.model.decoders import build_decoder
from emorl.model.distributions import Gaussian, Noise, kl_divergence
from emorl.model.hvae import BottomUpInference, Stage1
from emorl.model.likelihood import LIKELIHOODS
from emorl.model.prior import HierarchicalPrior, stage1_kl
from emorl.model.refinement import RefinementNetwork


def loss_weights(scheme: str, refinement_steps: int) -> list[float]:
    """w_0..w_I for the current I.

    ``code``: w_r = (I+3−r)/(I+1) for every r; ``paper`` (Eq. 8): w_0 = 1, w_i = (I−i+1)/(I+1).
    """
    steps = refinement_steps
    if scheme == "code":
        return [(steps + 3 - r) / (steps + 1) for r in range(steps + 1)]
    if scheme == "paper":
        return [1.0] + [(steps - i + 1) / (steps + 1) for i in range(1, steps + 1)]
    raise ValueError(f"unknown loss_weights {scheme!r} (allowed: 'code', 'paper')")


@dataclass
class EMORLOutput:
    """Everything one forward pass returns; lists are indexed by stage (last = final refinement step)."""

    total_loss: Tensor  # [] Σ_r w_r 𝓛_r
    nll: Tensor  # [] batch-mean NLL of the last iteration
    kl: Tensor  # [] batch-mean KL of the last iteration (the reference's reported KL)
    nll_per_image: Tensor  # [B]
    kl_per_image: Tensor  # [B]
    kl_stage1_per_image: Tensor  # [B] full hierarchical stage-1 KL ("ELBO KL")
    deltas: Tensor  # [I] mean L2 norm of each refinement update
    means: list[Tensor]  # each [B, K, 3, H, W] in [0, 1]
    log_masks: list[Tensor]  # each [B, K, 1, H, W], log-softmax over K
    attention: list[Tensor]  # per stochastic layer, [B, K, 1, H, W]
    posterior_mu: Tensor  # [B, K, D] final (refined) posterior
    posterior_s: Tensor  # [B, K, D]; sigma(s) is the standard deviation

    @property
    def reconstruction(self) -> Tensor:
        """Σ_k π_k y_k of the final stage, [B, 3, H, W] in [0, 1]."""
        return (self.log_masks[-1].exp() * self.means[-1]).sum(dim=1)

    def detach(self) -> EMORLOutput:
        """The same output cut from the autograd graph (``total_loss`` is the only field that has one)."""
        values = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            values[item.name] = [v.detach() for v in value] if isinstance(value, list) else value.detach()
        return EMORLOutput(**values)


@dataclass
class _Call:
    """What every pass of one forward call shares."""

    targets: Tensor  # [B, 3, H, W] in [0, 1]
    noise: Noise
    steps: int  # I
    weights: list[float]  # w_0..w_I
    gradients: _DeferredGradients
    loss: Callable[[Tensor, Tensor], Tensor]  # 𝓛_r from the NLL and KL [B]
    gradient_scale: float  # B / refinement_batch_size: ∂𝓛/∂λ as if the mean ran over that batch


@dataclass
class _Pass:
    """One scored posterior λ = (μ, s) [B, K, D]: its decoding, NLL and KL [B], ∂𝓛/∂λ for the next step."""

    mu: Tensor
    s: Tensor
    means: Tensor
    log_masks: Tensor
    nll: Tensor
    kl: Tensor
    grad_mu: Tensor | None  # None after the last pass
    grad_s: Tensor | None
    delta: Tensor | None = None  # [] mean norm of the update that made it (refinement passes)


@dataclass
class _SharedPrior:
    """The stage-1 prior every refinement KL reads, its leaf copies, and the stage-1 (tensor, leaf) pairs
    through which its gathered gradients are passed back."""

    prior: Gaussian
    leaves: Gaussian
    stage1_pairs: list[tuple[Tensor, Tensor]]


class EMORL(nn.Module):
    """Efficient Multi-Object Representation Learning (Emami et al., ICML 2021)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        problems = cfg.problems()
        if problems:
            raise ConfigError(problems)
        self.cfg = cfg
        image_size = cfg.input_size[1]
        gain = cfg.init_gain
        self.hvae = BottomUpInference(image_size, cfg.z_size, cfg.stochastic_layers, cfg.dual_gru, gain)
        self.prior = HierarchicalPrior(cfg.z_size, init_gain=gain) if cfg.stochastic_layers >= 2 else None
        decoder_gain = gain if cfg.decoder_init_gain is None else cfg.decoder_init_gain
        self.decoder = build_decoder(cfg.decoder, cfg.z_size, image_size, decoder_gain)
        self.refinement = RefinementNetwork(cfg.z_size, init_gain=gain)
        self.negative_log_likelihood = LIKELIHOODS[cfg.likelihood]

    def decode(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """z [B, K, D] → (RGB means [B, K, 3, H, W], log masks [B, K, 1, H, W], log-softmax over K)."""
        means, mask_logits = self.decoder(z)
        return means, torch.log_softmax(mask_logits, dim=1)

    def forward(
        self,
        images: Tensor,
        refinement_steps: int,
        geco: GECO | None = None,
        global_step: int = 0,
        kl_beta: float = 1.0,
        num_slots: int | None = None,
        all_stages: bool = False,
        noise: Noise | None = None,
        refinement_batch_size: int | None = None,
    ) -> EMORLOutput:
        """Two-stage inference on images [B, 3, H, W] in [−1, 1] and the loss of docs/model.md#loss.

        ``refinement_steps`` is I (the trainer's curriculum, or ``eval.refinement_steps``); ``num_slots``
        (K) defaults to the config. ``noise`` supplies every
        standard normal draw (default ``torch.randn_like``), e.g. to fix or permute the slots' samples.
        ``refinement_batch_size`` is the batch whose mean loss the refinement network differentiates
        (default B): the global batch under DDP, so each rank refines exactly as one process would; 1 at
        evaluation, so a batched evaluation refines each image as the reference's batch-1 evaluation does.
        """
        steps = refinement_steps
        slots = self.cfg.K if num_slots is None else num_slots
        if steps < 0 or slots < 1:
            raise ValueError(f"need refinement_steps >= 0 and num_slots >= 1, got {steps} and {slots}")
        self._check_images(images)
        noise = torch.randn_like if noise is None else noise
        call = _Call(
            targets=(images + 1.0) / 2.0,  # [B, 3, H, W] in [0, 1]
            noise=noise,
            steps=steps,
            weights=loss_weights(self.cfg.loss_weights, steps),
            gradients=_DeferredGradients(training=torch.is_grad_enabled()),
            loss=partial(self._iteration_loss, geco=geco, global_step=global_step, kl_beta=kl_beta),
            gradient_scale=images.shape[0] / (refinement_batch_size or images.shape[0]),
        )

        stage1 = self.hvae(images, slots, noise)
        needs_grad = call.gradients.training or steps > 0  # refinement needs ∂𝓛/∂λ even under no_grad
        with torch.set_grad_enabled(needs_grad):
            first, kl_stage1, shared = self._stage1_pass(stage1, call)
            passes, state = [first], self.refinement.initial_state(first.mu)
            for step in range(1, steps + 1):
                refined, state = self._refinement_pass(passes[-1], state, step, shared, call)
                passes.append(refined)
            if shared is not None:
                call.gradients.pass_through(
                    shared.prior, shared.leaves, shared.stage1_pairs, self.prior.parameters()
                )
        return self._output(passes, kl_stage1, stage1, call, all_stages)

    def _stage1_pass(self, stage1: Stage1, call: _Call) -> tuple[_Pass, Tensor, _SharedPrior | None]:
        """𝓛_0 on the bottom-up posteriors λ^(l,0); its gradient reaches them (and so the encoder).

        Returns the pass, the full hierarchical stage-1 KL [B] and, when the refinement KLs read the
        stage-1 prior (reversed++ with L ≥ 2 and I > 0), that prior with its leaf copies.
        """
        params = stage1.posteriors or [stage1.initial]  # (μ, s) per layer; the last one is λ^(L,0)
        leaves = [(_leaf(mu), _leaf(s)) for mu, s in params]
        means, log_masks, nll = self._reconstruct(Gaussian.from_params(*leaves[-1]), call)
        kl, refinement_prior = torch.zeros_like(nll), None
        if stage1.posteriors:
            posteriors = [Gaussian.from_params(*leaf) for leaf in leaves]
            kl, refinement_prior = stage1_kl(self.cfg.prior, posteriors, self.prior, call.noise)
        stage1_pairs = _pairs(reversed(params), reversed(leaves))  # λ^(L,0) first
        shared = None
        if refinement_prior is not None and call.steps > 0:
            leaf_prior = Gaussian(_leaf(refinement_prior.mean), _leaf(refinement_prior.var))
            shared = _SharedPrior(refinement_prior, leaf_prior, stage1_pairs)
        direct = [*self.decoder.parameters(), *(self.prior.parameters() if self.prior else [])]
        grad_mu, grad_s = call.gradients.take(
            call.loss(nll, kl), call.weights[0], stage1_pairs, direct, call.steps > 0, shared is not None
        )
        mu, s = params[-1]
        return _Pass(mu, s, means, log_masks, nll, kl, grad_mu, grad_s), kl.detach(), shared

    def _refinement_pass(
        self, previous: _Pass, state: Tensor, step: int, shared: _SharedPrior | None, call: _Call
    ) -> tuple[_Pass, Tensor]:
        """Refinement step i: λ^(L,i) = λ^(L,i−1) + Δ(λ, ∂𝓛_(i−1)/∂λ), then 𝓛_i on it."""
        delta_mu, delta_s, state = self.refinement(
            previous.mu,
            previous.s,
            previous.grad_mu * call.gradient_scale,
            previous.grad_s * call.gradient_scale,
            state,
        )
        delta = torch.cat([delta_mu, delta_s], dim=-1).detach().norm(dim=-1).mean()
        mu, s = previous.mu + delta_mu, previous.s + delta_s
        leaf = (_leaf(mu), _leaf(s))
        posterior = Gaussian.from_params(*leaf)
        means, log_masks, nll = self._reconstruct(posterior, call)
        kl = kl_divergence(posterior, shared.leaves if shared else None).sum(-1)  # [B]
        pairs = _pairs([(mu, s)], [leaf])
        if shared is not None:  # every refinement KL reads it: its gradients are gathered on the leaves
            pairs += [(shared.leaves.mean, shared.leaves.mean), (shared.leaves.var, shared.leaves.var)]
        grad_mu, grad_s = call.gradients.take(
            call.loss(nll, kl), call.weights[step], pairs, self.decoder.parameters(), step < call.steps
        )
        return _Pass(mu, s, means, log_masks, nll, kl, grad_mu, grad_s, delta), state

    def _output(
        self, passes: list[_Pass], kl_stage1: Tensor, stage1: Stage1, call: _Call, all_stages: bool
    ) -> EMORLOutput:
        """The detached outputs of every pass and the total loss (the one field with a graph)."""
        means, log_masks = [p.means for p in passes], [p.log_masks for p in passes]
        if all_stages:
            means, log_masks = self._decode_intermediate(stage1.samples[1:], means, log_masks)
        last = passes[-1]
        nll, kl = last.nll.detach(), last.kl.detach()
        deltas = [p.delta for p in passes[1:]]
        return EMORLOutput(
            total_loss=call.gradients.total_loss(),
            nll=nll.mean(),
            kl=kl.mean(),
            nll_per_image=nll,
            kl_per_image=kl,
            kl_stage1_per_image=kl_stage1,
            deltas=torch.stack(deltas) if deltas else nll.new_zeros(0),
            means=means,
            log_masks=log_masks,
            attention=stage1.attention,
            posterior_mu=last.mu.detach(),
            posterior_s=last.s.detach(),
        )

    def _reconstruct(self, posterior: Gaussian, call: _Call) -> tuple[Tensor, Tensor, Tensor]:
        """Sample z ~ q, decode it: (means, log masks) detached for the outputs, and the NLL [B]."""
        means, log_masks = self.decode(posterior.rsample(call.noise))
        nll = self.negative_log_likelihood(call.targets, means, log_masks, self.cfg.log_scale)
        return means.detach(), log_masks.detach(), nll

    def _iteration_loss(
        self, nll: Tensor, kl: Tensor, geco: GECO | None, global_step: int, kl_beta: float
    ) -> Tensor:
        """𝓛_r: mean(NLL + β·KL), or β·mean(KL) − GECO constraint once GECO is active (and β ≠ 0)."""
        if geco is None or kl_beta == 0 or not geco.active(global_step):
            return (nll + kl_beta * kl).mean()
        return kl_beta * kl.mean() - geco.constraint(nll.mean())

    def _decode_intermediate(
        self, samples: list[Tensor], means: list[Tensor], log_masks: list[Tensor]
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Prepend the decodings of the intermediate layers' samples z¹..z^(L−1) (for figures; no graph)."""
        with torch.no_grad():
            decoded = [self.decode(z) for z in samples]
        return [m for m, _ in decoded] + means, [lm for _, lm in decoded] + log_masks

    def _check_images(self, images: Tensor) -> None:
        expected = tuple(self.cfg.input_size)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"EMORL expects images [B, {', '.join(map(str, expected))}] (model.input_size), "
                f"got {list(images.shape)}"
            )


def _leaf(tensor: Tensor) -> Tensor:
    """A detached copy that gathers its own gradient: where one iteration's loss graph stops."""
    return tensor.detach().requires_grad_()


def _pairs(
    attached: Iterable[tuple[Tensor, Tensor]], leaves: Iterable[tuple[Tensor, Tensor]]
) -> list[tuple[Tensor, Tensor]]:
    """Flatten (μ, s) tuples into (attached tensor, its detached leaf copy) pairs, μ before s."""
    return [pair for a, l in zip(attached, leaves, strict=True) for pair in zip(a, l, strict=True)]


class _DeferredGradients:
    """Each iteration's gradients, taken as soon as its loss is known and handed over to one ``backward()``.

    Every 𝓛_r is computed from detached leaf copies of the tensors it reads (its λ, the stage-1 posteriors,
    the reused prior). ``take`` differentiates 𝓛_r with respect to those leaves and to the parameters 𝓛_r
    reaches directly (decoder, prior network) and frees 𝓛_r's graph. ``total_loss`` is Σ ⟨w_r·∂𝓛_r/∂t, t⟩
    over the attached tensors t: its backward() gives exactly the gradient of Σ_r w_r·𝓛_r through the single
    graph the reference builds, but walks each decoder pass once instead of twice and frees it early.
    The refinement network gets the unweighted ∂𝓛_r/∂λ, without a second-order graph.
    """

    def __init__(self, training: bool):
        self.training = training  # False under no_grad: only the refinement gradients are taken
        self.value: Tensor | float = 0.0
        self.gradients: dict[int, tuple[Tensor, Tensor]] = {}  # id(t) → (t, accumulated gradient)

    def take(
        self,
        loss: Tensor,
        weight: float,
        pairs: list[tuple[Tensor, Tensor]],
        parameters: Iterable[Tensor],
        need_lambda: bool,
        retain: bool = False,
    ) -> tuple[Tensor | None, Tensor | None]:
        """Record w·𝓛; return ∂𝓛/∂(μ, s) of the first two pairs (λ) if ``need_lambda``, else (None, None)."""
        self.value = self.value + weight * loss.detach()
        if not self.training:
            if not need_lambda:
                return None, None
            pairs, parameters = pairs[:2], []
        parameters = [p for p in parameters if p.requires_grad]
        inputs = [leaf for _, leaf in pairs] + parameters
        grads = torch.autograd.grad(loss, inputs, retain_graph=retain, allow_unused=True)
        if self.training:
            for target, grad in zip([a for a, _ in pairs] + parameters, grads, strict=True):
                self._add(target, grad, weight)
        return (grads[0], grads[1]) if need_lambda else (None, None)

    def pass_through(
        self,
        prior: Gaussian,
        reused: Gaussian,
        pairs: list[tuple[Tensor, Tensor]],
        parameters: Iterable[Tensor],
    ) -> None:
        """Carry the gradients gathered on the reused prior's leaves back through the prior network."""
        if not self.training:
            return
        contributions = [self.gradients.pop(id(t), (t, None))[1] for t in (reused.mean, reused.var)]
        surrogate = sum(
            (t * g).sum()
            for t, g in zip((prior.mean, prior.var), contributions, strict=True)
            if g is not None
        )
        if not isinstance(surrogate, Tensor):
            return
        parameters = [p for p in parameters if p.requires_grad]
        grads = torch.autograd.grad(surrogate, [leaf for _, leaf in pairs] + parameters, allow_unused=True)
        for target, grad in zip([a for a, _ in pairs] + parameters, grads, strict=True):
            self._add(target, grad, 1.0)

    def total_loss(self) -> Tensor:
        """Σ_r w_r·𝓛_r as a value; its backward() delivers the gathered gradients."""
        value = torch.as_tensor(self.value)
        if not self.training or not self.gradients:
            return value
        surrogate = sum((t * g).sum() for t, g in self.gradients.values())
        return surrogate - surrogate.detach() + value

    def _add(self, target: Tensor, grad: Tensor | None, weight: float) -> None:
        if grad is None or not target.requires_grad:
            return
        previous = self.gradients.get(id(target))
        grad = weight * grad if previous is None else previous[1] + weight * grad
        self.gradients[id(target)] = (target, grad)
