"""The example grid: one labelled picture of many examples, each cell upscaled nearest-neighbour."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emorl.pictures import GAP, LABEL_WIDTH, example_grid, example_rows, slot_colours


def model_output(batch: int, slots: int, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, size, size, generator=generator) * 2 - 1
    means = torch.rand(batch, slots, 3, size, size, generator=generator)
    masks = torch.softmax(torch.randn(batch, slots, 1, size, size, generator=generator) * 3, dim=1)
    return images, means, masks


def cell(picture: np.ndarray, row: int, column: int, side: int) -> np.ndarray:
    top, left = GAP + row * (side + GAP), LABEL_WIDTH + GAP + column * (side + GAP)
    return picture[top : top + side, left : left + side]


def test_grid_has_a_row_per_view_and_slot_and_a_column_per_example():
    images, means, masks = model_output(batch=10, slots=3, size=35)
    picture = example_grid(images, means, masks, count=8)
    side = 35 * 3  # a 35-px image is upscaled 3× to reach at least 96 px
    rows = 3 + 3  # input, reconstruction, segmentation, then one per slot
    assert picture.dtype == np.uint8
    assert picture.shape == (GAP + rows * (side + GAP), LABEL_WIDTH + GAP + 8 * (side + GAP), 3)


def test_cells_are_nearest_neighbour_upscaled_copies():
    images, means, masks = model_output(batch=2, slots=2, size=12)
    picture = example_grid(images, means, masks, count=8)
    scale = 8  # ceil(96 / 12)
    expected = ((images[1] + 1) / 2 * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()  # [12, 12, 3]
    upscaled = np.kron(expected, np.ones((scale, scale, 1), dtype=np.uint8))
    np.testing.assert_array_equal(cell(picture, row=0, column=1, side=12 * scale), upscaled)


def test_segmentation_row_paints_each_pixel_its_argmax_slot_colour():
    images, means, masks = model_output(batch=1, slots=4, size=16)
    rows = dict(example_rows(images, means, masks))
    argmax = masks[0, :, 0].argmax(dim=0)
    colours = torch.as_tensor(slot_colours(4), dtype=torch.float32)
    torch.testing.assert_close(rows["segmentation"][0], colours[argmax].permute(2, 0, 1))
    torch.testing.assert_close(rows["slot 2"][0], masks[0, 1] * means[0, 1])
    torch.testing.assert_close(rows["reconstruction"][0], (masks[0] * means[0]).sum(0))


def test_ground_truth_row_is_added_and_resized_to_the_model_resolution():
    images, means, masks = model_output(batch=2, slots=3, size=16)
    labels = torch.zeros(2, 32, 32, dtype=torch.long)
    labels[:, 4:12, 4:12] = 1  # the ground truth at twice the resolution, like CLEVR's 192² crops
    rows = dict(example_rows(images, means, masks, labels))
    truth = rows["ground truth"]
    assert list(rows)[:4] == ["input", "reconstruction", "segmentation", "ground truth"]
    assert truth.shape == (2, 3, 16, 16)
    assert truth[0, :, 0, 0].sum() == 0 and truth[0, :, 3, 3].sum() > 0  # background black, object coloured


@pytest.mark.parametrize("batch", [3, 8])
def test_fewer_examples_than_asked_gives_fewer_columns(batch: int):
    images, means, masks = model_output(batch=batch, slots=2, size=20)
    picture = example_grid(images, means, masks, count=8)
    side = 20 * 5
    assert picture.shape[1] == LABEL_WIDTH + GAP + batch * (side + GAP)
