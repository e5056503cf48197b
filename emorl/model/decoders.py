"""Spatial-broadcast image decoders (docs/model.md#decoders): ``iodine``, ``small`` and ``big``.

Every slot is decoded independently, all B·K of them in one batch. The activations take the memory format of
the convolution weights, so ``model.to(memory_format=torch.channels_last)`` switches the whole decoder.

The first convolution of ``iodine``/``small`` reads the tiled z plus the positional map. Convolution is
linear, so conv(tile(z) + P) = Σ_c z_c·conv_c(1) + conv(P): the slot-dependent part is a matmul against the
response of a constant map (a per-channel kernel sum away from the zero-padded border), and conv(P) is one
image shared by all slots. Same numbers, without
running the widest layer over B·K tiled copies of z.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from emorl.model.coordinates import PositionalEmbedding
from emorl.model.init import XAVIER_GAIN, xavier_init_

OUTPUT_CHANNELS = 4  # RGB + mask logit
BIG_DECODER_GRID = 6
BIG_DECODER_OUTPUT = 96


class BroadcastDecoder(nn.Module):
    """Tile z over a grid, add Linear(4 → D)(coordinates), run ``layers``: RGB means and mask logits."""

    def __init__(self, z_size: int, grid_size: int, layers: list[nn.Module], init_gain: float = XAVIER_GAIN):
        super().__init__()
        self.grid_size = grid_size
        self.position = PositionalEmbedding(grid_size, z_size)
        self.layers = nn.Sequential(*layers)
        xavier_init_(self, gain=init_gain)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """z [B, K, D] → (means [B, K, 3, H, W] in [0, 1], mask logits [B, K, 1, H, W])."""
        first, rest = self.layers[0], self.layers[1:]
        slots = z.flatten(0, 1)  # [B·K, D]
        if isinstance(first, nn.Conv2d):
            hidden = self._broadcast_conv(slots, first)
        else:
            hidden = first(self._broadcast(slots))
        output = rest(hidden).unflatten(0, z.shape[:2]).to(z.dtype)  # [B, K, 4, H, W], z's precision
        return torch.sigmoid(output[:, :, :3]), output[:, :, 3:]

    def _memory_format(self) -> torch.memory_format:
        channels_last = self.layers[0].weight.is_contiguous(memory_format=torch.channels_last)
        return torch.channels_last if channels_last else torch.contiguous_format

    def _broadcast(self, slots: Tensor) -> Tensor:
        tiled = slots[:, None, None, :] + self.position()  # [N, Hg, Wg, D]
        return tiled.permute(0, 3, 1, 2).contiguous(memory_format=self._memory_format())  # [N, D, Hg, Wg]

    def _broadcast_conv(self, slots: Tensor, conv: nn.Conv2d) -> Tensor:
        """conv(tile(z) + P), computed as (z · response of a constant map) + conv(P).

        Both terms are built in the decoder's memory format ([N, H', W', O] storage for channels-last), so the
        sum is the layer's output without a copy, and its backward reduces over the outermost dimension.
        """
        weight = conv.weight  # [O, D, k, k]
        channels_last = self._memory_format() == torch.channels_last
        order = (0, 2, 3, 1) if channels_last else (0, 1, 2, 3)  # storage order of an [N, O, H', W'] map
        position = self.position().permute(2, 0, 1)[None]  # [1, D, Hg, Wg]
        position_out = F.conv2d(position, weight, conv.bias, padding=conv.padding).permute(order)
        if conv.padding == (0, 0):  # every output sees the whole kernel: the response is the kernel sum
            slot_out = slots @ weight.sum(dim=(2, 3)).t()  # [N, O]
            slot_out = slot_out[:, None, None, :] if channels_last else slot_out[:, :, None, None]
            hidden = slot_out + position_out
        else:
            out_channels, in_channels, height, width = weight.shape
            ones = slots.new_ones(1, 1, self.grid_size, self.grid_size)
            response = F.conv2d(ones, weight.reshape(-1, 1, height, width), padding=conv.padding)
            response = response.view(out_channels, in_channels, *response.shape[-2:]).transpose(0, 1)
            response = response.permute(order)  # [D, O, H', W'] in storage order
            hidden = torch.addmm(position_out.flatten(), slots, response.flatten(1))  # writes the output once
            hidden = hidden.view(-1, *response.shape[1:])
        return hidden.permute(0, 3, 1, 2) if channels_last else hidden  # [N, O, H', W']


def iodine_decoder(z_size: int, image_size: int, init_gain: float = XAVIER_GAIN) -> BroadcastDecoder:
    """(H+10)² grid, five unpadded 3×3 convs with ELU (IODINE's decoder; CLEVR and Multi-dSprites)."""
    layers: list[nn.Module] = [nn.Conv2d(z_size, 64, 3), nn.ELU(inplace=True)]
    for _ in range(3):
        layers += [nn.Conv2d(64, 64, 3), nn.ELU(inplace=True)]
    layers.append(nn.Conv2d(64, OUTPUT_CHANNELS, 3))
    return BroadcastDecoder(z_size, image_size + 10, layers, init_gain)


def small_decoder(z_size: int, image_size: int, init_gain: float = XAVIER_GAIN) -> BroadcastDecoder:
    """(H+6)² grid, three 5×5 convs (pad 1) with ReLU, then a 3×3 conv (Tetrominoes)."""
    layers: list[nn.Module] = [nn.Conv2d(z_size, 32, 5, padding=1), nn.ReLU(inplace=True)]
    for _ in range(2):
        layers += [nn.Conv2d(32, 32, 5, padding=1), nn.ReLU(inplace=True)]
    layers.append(nn.Conv2d(32, OUTPUT_CHANNELS, 3, padding=1))
    return BroadcastDecoder(z_size, image_size + 6, layers, init_gain)


def big_decoder(z_size: int, image_size: int, init_gain: float = XAVIER_GAIN) -> BroadcastDecoder:
    """6² grid, four stride-2 5×5 transposed convs to 96², two stride-1 ones (Slot Attention's decoder)."""
    if image_size != BIG_DECODER_OUTPUT:
        raise ValueError(
            f"decoder 'big' outputs {BIG_DECODER_OUTPUT}x{BIG_DECODER_OUTPUT} images, not {image_size}"
        )
    layers: list[nn.Module] = []
    for in_channels in (z_size, 64, 64, 64):
        layers += [
            nn.ConvTranspose2d(in_channels, 64, 5, stride=2, padding=2, output_padding=1),
            nn.ReLU(inplace=True),
        ]
    layers += [
        nn.ConvTranspose2d(64, 64, 5, padding=2),
        nn.ReLU(inplace=True),
        nn.ConvTranspose2d(64, OUTPUT_CHANNELS, 3, padding=1),
    ]
    return BroadcastDecoder(z_size, BIG_DECODER_GRID, layers, init_gain)


DECODERS = {"iodine": iodine_decoder, "small": small_decoder, "big": big_decoder}


def build_decoder(
    name: str, z_size: int, image_size: int, init_gain: float = XAVIER_GAIN
) -> BroadcastDecoder:
    """The decoder called ``name`` for square images of side ``image_size``."""
    if name not in DECODERS:
        raise ValueError(f"unknown decoder {name!r} (allowed: {', '.join(DECODERS)})")
    return DECODERS[name](z_size, image_size, init_gain)
