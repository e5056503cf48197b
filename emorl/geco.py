"""GECO (Rezende & Viola 2018) exactly as the reference implements it (docs/training.md#geco).

The Lagrange-multiplier parameter ζ (``beta``; the weight applied to the NLL is softplus(ζ)) and the EMA
of the constraint ``C_ema`` are float32 buffers, so they travel in ``state_dict`` and checkpoints. All updates
are tensor ops: no host synchronisation in the training step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from emorl.config import GecoConfig


class GECO(nn.Module):
    """Constraint C − NLL ≥ 0 with C = ``reconstruction_target`` × (C·H·W); active from ``warm_start`` on."""

    beta: Tensor
    C_ema: Tensor

    def __init__(self, cfg: GecoConfig, num_pixels: int):
        super().__init__()
        if num_pixels < 1:
            raise ValueError(f"GECO needs num_pixels = C·H·W >= 1, got {num_pixels}")
        self.cfg = cfg
        self.target = cfg.reconstruction_target * num_pixels
        self.register_buffer("beta", torch.tensor(cfg.beta_init, dtype=torch.float32))
        self.register_buffer("C_ema", torch.tensor(0.0, dtype=torch.float32))

    def active(self, global_step: int) -> bool:
        """Whether the loss takes the GECO form at this step (plain ELBO before the warm start)."""
        return self.cfg.enabled and global_step >= self.cfg.warm_start

    def constraint(self, nll_mean: Tensor) -> Tensor:
        """softplus(ζ)·(C_t + stopgrad(C_ema − C_t)): value softplus(ζ)·C_ema, gradient −softplus(ζ)·∂NLL."""
        constraint = self.target - nll_mean
        return F.softplus(self.beta).detach() * (constraint + (self.C_ema - constraint).detach())

    @torch.no_grad()
    def update(self, nll_mean: Tensor, global_step: int) -> None:
        """After ``optimizer.step()``: EMA of C − NLL (initialised at the warm start), then a step on ζ."""
        if not self.active(global_step):
            return
        constraint = (self.target - nll_mean.detach()).to(self.C_ema)
        if global_step == self.cfg.warm_start:
            self.C_ema.copy_(constraint)
            return
        alpha = self.cfg.ema_alpha
        self.C_ema.mul_(alpha).add_((1.0 - alpha) * constraint)
        step_size = torch.where(
            self.C_ema > 0, self.cfg.step_size * self.cfg.step_size_acceleration, self.cfg.step_size
        )
        self.beta.copy_(torch.clamp(self.beta - step_size * self.C_ema, min=self.cfg.beta_floor))
