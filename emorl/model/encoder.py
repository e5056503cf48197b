"""Image encoder shared by all stochastic layers (docs/model.md#encoder): 4 convs, positional projection, LN
+ MLP."""

from __future__ import annotations

from torch import Tensor, nn

from emorl.model.coordinates import PositionalEmbedding
from emorl.model.init import XAVIER_GAIN, xavier_init_

ENCODER_WIDTH = 64


class ImageEncoder(nn.Module):
    """Maps images [B, 3, H, W] in [-1, 1] to tokens [B, H·W, 64]."""

    def __init__(self, image_size: int, channels: int = ENCODER_WIDTH, init_gain: float = XAVIER_GAIN):
        super().__init__()
        layers: list[nn.Module] = []
        for in_channels in (3, channels, channels, channels):
            layers += [nn.Conv2d(in_channels, channels, 5, padding=2), nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers)
        self.position = PositionalEmbedding(image_size, channels)
        self.mlp = nn.Sequential(
            nn.LayerNorm(channels), nn.Linear(channels, channels), nn.ReLU(), nn.Linear(channels, channels)
        )
        xavier_init_(
            self.convs, self.mlp, gain=init_gain
        )  # the positional projection keeps PyTorch's default init

    def forward(self, images: Tensor) -> Tensor:
        features = self.convs(images)  # [B, C, H, W], in the memory format of the conv weights
        features = features.permute(0, 2, 3, 1) + self.position()  # [B, H, W, C]
        return self.mlp(features.flatten(1, 2))  # [B, HW, C]
