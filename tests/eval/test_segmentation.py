"""Segmentation scores against scikit-learn and the reference's rules (docs/evaluation.md#ari-mse-and-kl)."""

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from emorl.eval.segmentation import (
    ari_scores,
    overlap_scores,
    predicted_label_map,
    true_label_map,
    upsample_masks_to_crop,
)


def random_label_maps(seed: int, batch: int = 6, size: int = 20, entities: int = 5, slots: int = 4):
    generator = torch.Generator().manual_seed(seed)
    true = torch.randint(0, entities, (batch, size, size), generator=generator)
    pred = torch.randint(0, slots, (batch, size, size), generator=generator)
    return true, pred, entities, slots


def test_fg_ari_equals_sklearn_on_foreground_pixels():
    true, pred, entities, slots = random_label_maps(0)
    scores = ari_scores(true, pred, entities, slots)["fg_ari"]
    for b in range(len(true)):
        keep = true[b] > 0
        expected = adjusted_rand_score(true[b][keep].numpy(), pred[b][keep].numpy())
        assert scores[b].item() == pytest.approx(expected, abs=1e-10)


def test_ari_with_background_equals_sklearn_on_all_pixels():
    true, pred, entities, slots = random_label_maps(1)
    scores = ari_scores(true, pred, entities, slots)["ari"]
    for b in range(len(true)):
        expected = adjusted_rand_score(true[b].flatten().numpy(), pred[b].flatten().numpy())
        assert scores[b].item() == pytest.approx(expected, abs=1e-10)


def test_perfect_and_permuted_segmentations_score_one():
    true, _, entities, _ = random_label_maps(2, slots=5)
    permuted = torch.tensor([3, 0, 4, 1, 2])[true]
    for pred in (true, permuted):
        scores = ari_scores(true, pred, entities, 5)
        assert torch.allclose(scores["fg_ari"], torch.ones(len(true), dtype=torch.float64))
        assert torch.allclose(scores["ari"], torch.ones(len(true), dtype=torch.float64))


def test_single_object_in_one_slot_scores_one_and_empty_foreground_scores_zero():
    true = torch.zeros(2, 8, 8, dtype=torch.long)
    true[0, 2:5, 2:5] = 1
    pred = torch.zeros(2, 8, 8, dtype=torch.long)
    scores = ari_scores(true, pred, 2, 3)["fg_ari"]
    assert scores.tolist() == [1.0, 0.0]


def test_true_label_map_takes_largest_entity_index():
    masks = torch.zeros(1, 3, 1, 4, 4)
    masks[0, 0] = 255
    masks[0, 1, 0, :2] = 255
    masks[0, 2, 0, 1:3] = 255
    labels = true_label_map(masks)[0]
    assert labels[:, 0].tolist() == [1, 2, 2, 0]


def test_predicted_label_map_is_argmax_over_slots():
    soft = torch.softmax(torch.randn(2, 4, 1, 5, 5), dim=1)
    assert torch.equal(predicted_label_map(soft), soft[:, :, 0].argmax(dim=1))


def test_mbo_is_one_for_perfect_segmentation_and_below_for_merged_objects():
    true = torch.zeros(1, 6, 6, dtype=torch.long)
    true[0, :, :3] = 1
    true[0, :, 3:] = 2
    perfect = overlap_scores(true, true, 3, 3)
    assert perfect["mbo"][0] == pytest.approx(1.0)
    assert perfect["mbo_hungarian"][0] == pytest.approx(1.0)
    merged = torch.zeros_like(true)  # both objects in one segment: IoU 0.5 each
    scores = overlap_scores(true, merged, 3, 3)
    assert scores["mbo"][0] == pytest.approx(0.5)
    assert scores["mbo_hungarian"][0] == pytest.approx(0.25)  # the second object has no segment left


def test_mbo_is_nan_without_foreground_objects():
    true = torch.zeros(1, 4, 4, dtype=torch.long)
    assert np.isnan(overlap_scores(true, true, 2, 2)["mbo"][0])


def test_upsampling_soft_masks_to_the_ground_truth_crop_keeps_the_argmax_of_flat_regions():
    soft = torch.zeros(1, 2, 1, 96, 96)
    soft[0, 0, 0, :, :48] = 1
    soft[0, 1, 0, :, 48:] = 1
    big = upsample_masks_to_crop(soft)
    assert big.shape == (1, 2, 1, 192, 192)
    labels = predicted_label_map(big)[0]
    assert (labels[:, :90] == 0).all() and (labels[:, 102:] == 1).all()
