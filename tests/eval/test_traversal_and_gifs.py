"""Latent traversal values and grids (docs/evaluation.md#traversals) and GIF writing
(docs/evaluation.md#gifs)."""

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image

from emorl.eval.gifs import traversal_frames, write_gif
from emorl.eval.traversal import tile, traversal_values, traverse


def test_traversal_is_centred_on_the_middle_of_the_range_and_spans_it():
    ranges = np.array([[-1.0, 3.0], [2.0, 6.0]])
    values = traversal_values(ranges, steps=5)
    assert values[:, 2].tolist() == [1.0, 4.0]
    assert values[:, 0].tolist() == [-1.0, 2.0] and values[:, -1].tolist() == [3.0, 6.0]


def decoder(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Slot k paints the colour sigmoid(z[k, :3]) with a mask logit z[k, 3], on a 4×5 image."""
    means = torch.sigmoid(z[..., :3])[..., None, None].expand(*z.shape[:2], 3, 4, 5)
    logits = z[..., 3][..., None, None, None].expand(*z.shape[:2], 1, 4, 5)
    return means, logits


def test_traverse_changes_only_the_swept_latent_of_the_chosen_slot():
    z = torch.zeros(2, 5)
    ranges = np.array([[-2.0, 2.0]] * 5)
    images = traverse(decoder, z, slot=1, ranges=ranges, steps=3, batch_size=4)
    assert images.shape == (5, 3, 3, 4, 5)
    red = images[0, :, 0, 0, 0]  # sweeping z[1, 0] changes red through slot 1's colour (mask weight 0.5)
    assert red[0] < red[1] < red[2]
    assert torch.allclose(images[4], images[4, :1].expand_as(images[4]))  # z[:, 4] is ignored


def test_traverse_sweeps_only_the_requested_dimensions_in_their_order():
    z = torch.zeros(2, 5)
    ranges = np.array([[-2.0, 2.0]] * 5)
    every = traverse(decoder, z, slot=0, ranges=ranges, steps=3)
    chosen = traverse(decoder, z, slot=0, ranges=ranges, steps=3, dims=[3, 0])
    assert torch.equal(chosen, every[[3, 0]])


def test_traverse_refuses_a_missing_slot():
    with pytest.raises(ValueError, match="K=2"):
        traverse(decoder, torch.zeros(2, 4), slot=2, ranges=np.zeros((4, 2)))


def test_tile_has_make_grid_geometry():
    grid = tile(np.ones((3, 4, 3, 5, 6)), padding=2)
    assert grid.shape == (3 * 7 + 2, 4 * 8 + 2, 3)
    assert grid[0].max() == 0 and grid[2, 2].tolist() == [255, 255, 255]


def test_gif_has_one_frame_per_traversal_step_even_when_the_image_does_not_change(tmp_path):
    still = np.full((8, 3, 35, 35), 0.5, np.float32)
    path = write_gif(traversal_frames(still), tmp_path / "slot_0_dim_3.gif", fps=4)
    frames = iio.imread(path, index=None)
    assert frames.shape[0] == 8
    assert frames.shape[1] >= 128  # 35-pixel images are enlarged
    assert Image.open(path).info["loop"] == 0


def test_gif_refuses_identical_consecutive_frames(tmp_path):
    with pytest.raises(ValueError, match="identical"):
        write_gif(np.zeros((3, 4, 4, 3), np.uint8), tmp_path / "x.gif")


def test_gif_refuses_a_frame_rate_that_would_skip_frames(tmp_path):
    moving = np.arange(8, dtype=np.float32)[:, None, None, None].repeat(3, 1).repeat(4, 2).repeat(4, 3) / 8
    with pytest.raises(ValueError, match="skip frames"):
        write_gif(traversal_frames(moving), tmp_path / "x.gif", fps=10)
