"""The reference's ``init_weights(module, 'xavier')`` (docs/model.md#initialisation): Xavier-normal with gain
0.02, zero bias.

The gain is ``model.init_gain``; 0.02 is the reference's. Every module that the reference initialises this
way takes it as ``init_gain`` and passes it here; the others keep their own initialisation.
"""

from __future__ import annotations

from torch import nn

XAVIER_GAIN = 0.02


def xavier_init_(*modules: nn.Module, gain: float = XAVIER_GAIN) -> None:
    """Re-initialise every Conv/ConvTranspose/Linear inside ``modules``; other layers keep their own init."""
    for module in modules:
        for layer in module.modules():
            if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
                nn.init.xavier_normal_(layer.weight, gain=gain)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
