"""Image likelihoods (docs/model.md#likelihoods): pixel-wise GMM and the "deterministic mixture" Gaussian.

Both use one fixed σ = exp(log_scale) and omit the −½·ln 2π constant, as the reference does, so the NLL is
unnormalised (it can be negative; its floor is 3·H·W·ln σ). Targets x are in [0, 1].
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def gmm_nll(targets: Tensor, means: Tensor, log_masks: Tensor, log_scale: float) -> Tensor:
    """−Σ_{c,h,w} log Σ_k π_k N(x | y_k, σ²): each colour channel a mixture sharing the pixel's π. → [B]."""
    half_precision = 0.5 * math.exp(-2.0 * log_scale)  # 1 / (2σ²)
    log_components = log_masks - (targets[:, None] - means).square() * half_precision  # [B, K, 3, H, W]
    return (log_scale - torch.logsumexp(log_components, dim=1)).sum(dim=(1, 2, 3))


def gaussian_nll(targets: Tensor, means: Tensor, log_masks: Tensor, log_scale: float) -> Tensor:
    """Σ_{c,h,w} −log N(x | Σ_k π_k y_k, σ²). → [B]."""
    half_precision = 0.5 * math.exp(-2.0 * log_scale)
    mixture = (log_masks.exp() * means).sum(dim=1)  # [B, 3, H, W]
    return ((targets - mixture).square() * half_precision + log_scale).sum(dim=(1, 2, 3))


LIKELIHOODS = {"gmm": gmm_nll, "gaussian": gaussian_nll}
