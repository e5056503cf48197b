"""EMORL: two-stage inference (bottom-up HVAE, then I refinement steps) and the weighted loss of spec §3.8.

Differences from the reference, all behaviour-preserving: B and K are runtime properties; the refinement
gradient is taken without ``create_graph`` (the reference builds a second-order graph and detaches
it); refinement also works under ``torch.no_grad()`` (it enables grad locally, which evaluation needs); models
built with L = 0 hold no encoder and models with L ≤ 1 no prior network, as nothing would read them.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from emorl.config import ConfigError, ModelConfig
from emorl.geco import GECO
from emorl.model.decoders import build_decoder
from emorl.model.distributions import Gaussian, Noise, kl_divergence
from emorl.model.hvae import BottomUpInference
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
        """The same output cut from the autograd graph."""
        values = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            values[item.name] = [t.detach() for t in value] if isinstance(value, list) else value.detach()
        return EMORLOutput(**values)


class EMORL(nn.Module):
    """Efficient Multi-Object Representation Learning (Emami et al., ICML 2021)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        problems = cfg.problems()
        if problems:
            raise ConfigError(problems)
        self.cfg = cfg
        image_size = cfg.input_size[1]
        self.hvae = BottomUpInference(image_size, cfg.z_size, cfg.stochastic_layers, cfg.dual_gru)
        self.prior = HierarchicalPrior(cfg.z_size) if cfg.stochastic_layers >= 2 else None
        self.decoder = build_decoder(cfg.decoder, cfg.z_size, image_size)
        self.refinement = RefinementNetwork(cfg.z_size)
        self.negative_log_likelihood = LIKELIHOODS[cfg.likelihood]
        self.to(memory_format=torch.channels_last)  # conv weights; activations are channels-last too

    def decode(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """z [B, K, D] → (RGB means [B, K, 3, H, W], log masks [B, K, 1, H, W], log-softmax over K)."""
        means, mask_logits = self.decoder(z)
        return means, torch.log_softmax(mask_logits, dim=1)

    def forward(
        self,
        images: Tensor,
        refinement_steps: int | None = None,
        geco: GECO | None = None,
        global_step: int = 0,
        kl_beta: float = 1.0,
        num_slots: int | None = None,
        all_stages: bool = False,
        noise: Noise | None = None,
    ) -> EMORLOutput:
        """Two-stage inference on images [B, 3, H, W] in [−1, 1] and the loss of spec §3.8.

        ``refinement_steps`` (I) and ``num_slots`` (K) default to the config. ``noise`` supplies every
        standard normal draw (default ``torch.randn_like``), e.g. to fix or permute the slots' samples.
        """
        steps = self.cfg.refinement_steps if refinement_steps is None else refinement_steps
        slots = self.cfg.K if num_slots is None else num_slots
        if steps < 0 or slots < 1:
            raise ValueError(f"need refinement_steps >= 0 and num_slots >= 1, got {steps} and {slots}")
        self._check_images(images)
        noise = torch.randn_like if noise is None else noise
        keep_graph = torch.is_grad_enabled()
        targets = (images + 1.0) / 2.0  # [B, 3, H, W] in [0, 1]

        stage1 = self.hvae(images, slots, noise)
        with torch.enable_grad() if steps > 0 else contextlib.nullcontext():
            params = stage1.posteriors or [stage1.initial]
            if steps > 0 and not params[-1][0].requires_grad:  # no graph to λ (no_grad or frozen): make one
                params = [*params[:-1], tuple(t.detach().requires_grad_() for t in params[-1])]
            posterior = Gaussian.from_params(*params[-1])
            means, log_masks = self.decode(posterior.rsample(noise))
            nll = self.negative_log_likelihood(targets, means, log_masks, self.cfg.log_scale)  # [B]
            if stage1.posteriors:
                posteriors = [Gaussian.from_params(*p) for p in params]
                kl, refinement_prior = stage1_kl(self.cfg.prior, posteriors, self.prior, noise)
            else:
                kl, refinement_prior = torch.zeros_like(nll), None
            kl_stage1 = kl
            loss = self._iteration_loss(nll, kl, geco, global_step, kl_beta)
            weights = loss_weights(self.cfg.loss_weights, steps)
            total_loss = weights[0] * loss
            all_means, all_log_masks, deltas = [means], [log_masks], []

            mu, s = params[-1]
            state = self.refinement.initial_state(mu)
            for step in range(1, steps + 1):
                grad_mu, grad_s = torch.autograd.grad(loss, (mu, s), retain_graph=keep_graph)
                delta_mu, delta_s, state = self.refinement(mu, s, grad_mu, grad_s, state)
                deltas.append(torch.cat([delta_mu, delta_s], dim=-1).detach().norm(dim=-1).mean())
                mu, s = mu + delta_mu, s + delta_s
                posterior = Gaussian.from_params(mu, s)
                means, log_masks = self.decode(posterior.rsample(noise))
                nll = self.negative_log_likelihood(targets, means, log_masks, self.cfg.log_scale)
                kl = kl_divergence(posterior, refinement_prior).sum(-1)  # [B]
                loss = self._iteration_loss(nll, kl, geco, global_step, kl_beta)
                total_loss = total_loss + weights[step] * loss
                all_means.append(means)
                all_log_masks.append(log_masks)

        if all_stages:
            all_means, all_log_masks = self._decode_intermediate(stage1.samples[1:], all_means, all_log_masks)
        output = EMORLOutput(
            total_loss=total_loss,
            nll=nll.mean(),
            kl=kl.mean(),
            nll_per_image=nll,
            kl_per_image=kl,
            kl_stage1_per_image=kl_stage1,
            deltas=torch.stack(deltas) if deltas else nll.new_zeros(0),
            means=all_means,
            log_masks=all_log_masks,
            attention=stage1.attention,
            posterior_mu=mu,
            posterior_s=s,
        )
        return output if keep_graph else output.detach()

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
