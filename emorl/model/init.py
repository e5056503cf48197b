"""The reference's ``init_weights(module, 'xavier')`` (spec §2.3): Xavier-normal with gain 0.02, zero bias."""

from __future__ import annotations

from torch import nn

XAVIER_GAIN = 0.02


def xavier_init_(*modules: nn.Module) -> None:
    """Re-initialise every Conv/ConvTranspose/Linear inside ``modules``; other layers keep their own init."""
    for module in modules:
        for layer in module.modules():
            if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
                nn.init.xavier_normal_(layer.weight, gain=XAVIER_GAIN)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
