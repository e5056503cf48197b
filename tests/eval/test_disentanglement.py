"""Latent ranges, activeness, slot matching and DCI (docs/evaluation.md#disentanglement)."""

import numpy as np
import pytest
import torch

from emorl.eval.disentanglement import activeness, dci, dci_factors, latent_ranges, matching_iou
from emorl.eval.traversal import compose

NAMES = ("x", "y", "shape", "color")
DISCRETE = (False, False, True, True)


def synthetic_factors(rng: np.random.Generator, count: int = 300) -> np.ndarray:
    continuous = rng.uniform(0, 1, (count, 2))
    discrete = rng.integers(0, 4, (count, 2)).astype(float)
    return np.concatenate([continuous, discrete], axis=1)  # [N, 4]


def test_dci_is_high_for_one_code_per_factor():
    rng = np.random.default_rng(0)
    factors = synthetic_factors(rng)
    codes = np.concatenate([factors + 0.01 * rng.normal(size=factors.shape), rng.normal(size=(300, 2))], 1)
    result = dci(codes, factors, NAMES, DISCRETE, n_estimators=10)
    assert result.disentanglement > 0.8
    assert result.completeness > 0.8
    assert result.informativeness_test > 0.8
    assert result.importance.shape == (6, 4)


def test_dci_is_low_for_codes_shuffled_against_the_factors():
    rng = np.random.default_rng(1)
    factors = synthetic_factors(rng)
    codes = factors[rng.permutation(len(factors))] + 0.01 * rng.normal(size=factors.shape)
    result = dci(codes, factors, NAMES, DISCRETE, n_estimators=10)
    assert result.disentanglement < 0.3
    assert result.informativeness_test < 0.4


def test_dci_leaves_out_constant_factors():
    rng = np.random.default_rng(2)
    factors = synthetic_factors(rng)
    factors[:, 3] = 1.0
    result = dci(factors.copy(), factors, NAMES, DISCRETE, n_estimators=5)
    assert set(result.factor_informativeness) == {"x", "y", "shape"}


def test_dci_factors_skip_visibility_and_pixel_coordinates_and_flag_discrete_ones():
    names = ("x", "y", "z", "rotation", "size", "material", "shape", "color", "pixel_x", "pixel_y")
    names += ("pixel_z", "visibility")
    columns, discrete = dci_factors(names)
    assert columns == list(range(8))
    assert discrete == [False] * 4 + [True] * 4


def test_latent_ranges_are_min_and_max_over_images_and_slots():
    z = torch.tensor([[[0.0, 5.0], [-1.0, 2.0]], [[3.0, -4.0], [1.0, 0.0]]])
    assert latent_ranges(z).tolist() == [[-1.0, 3.0], [-4.0, 5.0]]


class LinearDecoder(torch.nn.Module):
    """A slot-wise decoder: RGB means and mask logits linear in each slot's z."""

    def __init__(self, dims: int, size: int = 6):
        super().__init__()
        self.size = size
        self.layer = torch.nn.Linear(dims, 4 * size * size)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.layer(z).view(*z.shape[:2], 4, self.size, self.size)  # [B, K, 4, H, W]
        return torch.sigmoid(out[:, :, :3]), out[:, :, 3:]


def test_activeness_is_zero_for_a_dimension_the_decoder_ignores():
    torch.manual_seed(0)
    decoder = LinearDecoder(dims=5)
    with torch.no_grad():
        decoder.layer.weight[:, 2] = 0
    z = torch.randn(3, 4, 5)
    ranges = latent_ranges(z)
    scores = activeness(decoder, z, torch.tensor([0, 3, 1]), ranges, batch_size=7)
    assert scores.shape == (3, 5)
    assert np.all(scores[:, 2] == 0)
    assert np.all(np.delete(scores, 2, axis=1) > 0)


def test_activeness_equals_the_variance_of_fully_decoded_sweeps():
    torch.manual_seed(1)
    decoder = LinearDecoder(dims=3)
    z = torch.randn(1, 4, 3)
    ranges = latent_ranges(z)
    scores = activeness(decoder, z, torch.tensor([2]), ranges, steps=6)
    sweep = z.repeat(6, 1, 1)
    sweep[:, 2, 1] = torch.linspace(float(ranges[1, 0]), float(ranges[1, 1]), 6)
    means, logits = decoder(sweep)
    expected = compose(means, logits).var(dim=0, unbiased=True).mean()
    assert scores[0, 1] == pytest.approx(expected.item(), rel=1e-5)


def test_matching_iou_pairs_visible_objects_with_their_slots():
    true = torch.zeros(1, 20, 20, dtype=torch.long)
    true[0, :10, :10] = 1
    true[0, 10:, 10:] = 2
    true[0, 0, 19] = 3  # a visible object too small to match
    pred = torch.zeros_like(true)
    pred[0, :10, :10] = 2
    pred[0, 10:, 10:] = 0
    pred[0, :10, 10:] = 1
    pred[0, 10:, :10] = 1
    visibility = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]])
    [(objects, slots)] = matching_iou(true, pred, visibility, num_slots=3)
    assert objects.tolist() == [1, 2]
    assert slots.tolist() == [2, 0]


def test_matching_iou_drops_matches_below_the_iou_threshold():
    true = torch.zeros(1, 40, 40, dtype=torch.long)
    true[0, :10, :10] = 1
    rows, cols = torch.meshgrid(torch.arange(40), torch.arange(40), indexing="ij")
    checkerboard = ((rows + cols) % 2)[None]  # each slot: 50 object pixels of 800, IoU 50/850
    [(objects, slots)] = matching_iou(true, checkerboard, torch.tensor([[1.0, 1.0]]), num_slots=2)
    assert objects.size == 0 and slots.size == 0


@pytest.mark.parametrize("names", [("x", "y", "shape", "visibility")])
def test_dci_factors_for_a_sprite_layout(names):
    assert dci_factors(names) == ([0, 1, 2], [False, False, True])
