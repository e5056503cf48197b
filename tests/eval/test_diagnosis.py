"""The collapse check tells the mean-image plateau from segmentation on constructed model outputs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch

from emorl.config import EvalConfig
from emorl.eval import evaluate
from emorl.eval.diagnosis import DIAGNOSES, diagnose, diagnose_metrics, foreground_slots, mask_entropy
from emorl.eval.segmentation import ari_scores, predicted_label_map
from emorl.logging import ConsoleLogger
from emorl.train.checkpoint import LoadedRun

SLOTS = 4
SIZE = 12


def three_objects(batch: int = 2) -> torch.Tensor:
    """Ground-truth label maps [B, 12, 12]: background 0 and three 3×3 squares labelled 1..3."""
    labels = torch.zeros(batch, SIZE, SIZE, dtype=torch.long)
    for index, (row, col) in enumerate([(1, 1), (1, 7), (7, 4)], start=1):
        labels[:, row : row + 3, col : col + 3] = index
    return labels


def soft_masks_from(assignment: torch.Tensor, sharpness: float) -> torch.Tensor:
    """Soft masks [B, K, 1, H, W] peaked on ``assignment`` (a [B, H, W] slot map) with the given logit gap."""
    logits = torch.nn.functional.one_hot(assignment, SLOTS).permute(0, 3, 1, 2).float() * sharpness
    return torch.softmax(logits, dim=1)[:, :, None]


def measured(true_labels: torch.Tensor, masks: torch.Tensor) -> tuple[float, float, float]:
    """(mean FG-ARI, mean foreground slots, mean mask entropy) as the ari_mse_kl evaluation measures them."""
    predicted = predicted_label_map(masks)
    fg_ari = ari_scores(true_labels, predicted, 4, SLOTS)["fg_ari"].mean().item()
    slots = foreground_slots(true_labels, predicted, SLOTS, share=0.05).mean().item()
    return fg_ari, slots, mask_entropy(masks).mean().item()


def test_a_model_giving_each_object_a_slot_is_segmenting():
    labels = three_objects()
    values = measured(labels, soft_masks_from(labels, sharpness=8.0))
    assert values[0] == pytest.approx(1.0) and values[1] == 3.0 and values[2] < 0.1
    assert diagnose(*values, EvalConfig()).label == "segmenting"


def test_one_slot_owning_the_foreground_is_collapsed():
    labels = three_objects()
    assignment = (labels > 0).long()  # slot 1 paints every object, slot 0 the background
    values = measured(labels, soft_masks_from(assignment, sharpness=8.0))
    assert values[0] == pytest.approx(0.0) and values[1] == 1.0
    diagnosis = diagnose(*values, EvalConfig())
    assert diagnosis.label == "collapsed" and "one slot owns the foreground" in diagnosis.reason


def test_near_uniform_masks_are_collapsed_even_when_their_argmax_spreads_over_slots():
    labels = three_objects()
    noise = torch.randint(0, SLOTS, labels.shape, generator=torch.Generator().manual_seed(0))
    values = measured(labels, soft_masks_from(noise, sharpness=0.05))  # argmax is noise: many slots used
    assert values[1] > 2 and values[2] > 0.99 and abs(values[0]) < 0.2
    diagnosis = diagnose(*values, EvalConfig())
    assert diagnosis.label == "collapsed" and "near uniform" in diagnosis.reason


def test_objects_split_but_wrongly_grouped_are_partial():
    labels = three_objects()
    assignment = labels.clone()
    assignment[:, 7:10, 4:7] = 1  # object 3 joins object 1's slot ...
    assignment[:, 1:4, 7:9] = 1  # ... and so does most of object 2
    values = measured(labels, soft_masks_from(assignment, sharpness=8.0))
    assert values[0] < 0.2 and values[1] == 2.0 and values[2] < 0.1
    assert diagnose(*values, EvalConfig()).label == "partial"


def test_foreground_slots_counts_only_slots_above_the_share_and_is_nan_without_foreground():
    labels = three_objects(batch=1)
    assignment = (labels > 0).long()
    assignment[0, 1, 1] = 2  # one foreground pixel of 27 (3.7 %) goes to slot 2
    predicted = predicted_label_map(soft_masks_from(assignment, sharpness=8.0))
    assert foreground_slots(labels, predicted, SLOTS, share=0.05).item() == 1.0
    assert foreground_slots(labels, predicted, SLOTS, share=0.03).item() == 2.0
    empty = torch.zeros_like(labels)
    assert torch.isnan(foreground_slots(empty, predicted, SLOTS, share=0.05)).all()


def test_thresholds_come_from_the_config():
    values = (0.3, 1.2, 0.4)  # FG-ARI 0.3 with one foreground slot
    assert diagnose(*values, EvalConfig()).label == "partial"
    assert diagnose(*values, EvalConfig(diagnosis_max_fg_ari=0.35)).label == "collapsed"


def test_evaluation_without_segmentation_scores_has_no_diagnosis():
    assert diagnose_metrics({"activeness": {"mean": 0.1, "std": 0.0, "n": 3}}, EvalConfig()) is None


def test_ari_mse_kl_writes_the_diagnosis_and_tags_the_run(tiny_run: LoadedRun, tmp_path: Path):
    stream = io.StringIO()
    results = evaluate(tiny_run, "ari_mse_kl", tiny_run.config, tmp_path, logger=ConsoleLogger(stream))
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["diagnosis"]["label"] in DIAGNOSES
    assert saved["diagnosis"] == results["diagnosis"]
    assert f"diagnosis: {saved['diagnosis']['label']}" in stream.getvalue()
    for name in ("fg_slots", "mask_entropy"):
        assert results[name]["n"] == 8
