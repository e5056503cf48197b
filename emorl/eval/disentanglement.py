"""Disentanglement analyses (docs/evaluation.md#disentanglement): latent ranges, activeness, slot matching
and DCI.

DCI follows disentanglement_lib as the paper intends, not the reference file
(docs/reference-differences.md#dci): one
gradient-boosted predictor per factor, a *classifier* for discrete factors and a *regressor* for continuous
ones. The importance matrix is the predictors' ``feature_importances_``. Informativeness is the accuracy of a
classifier and the R² (clipped at 0) of a regressor, averaged over factors; the reference instead re-fits one
regressor for every factor and scores exact-match accuracy, which is ≈0 for real-valued targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.stats import entropy
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
from sklearn.model_selection import train_test_split
from tqdm import tqdm

from emorl.eval.traversal import Decoder, sweep_slot

DISCRETE_FACTORS = frozenset({"shape", "size", "material", "color"})
EXCLUDED_FACTORS = frozenset({"visibility", "pixel_x", "pixel_y", "pixel_z"})
MIN_OBJECT_PIXELS = 50  # smaller (occluded or cropped) objects are not matched (docs/evaluation.md#dci)
MIN_MATCH_IOU = 0.1
MIN_DCI_OBJECTS = 4  # both halves of the 50/50 split need at least two rows
DCI_METRICS = (
    "dci_disentanglement",
    "dci_completeness",
    "dci_informativeness_train",
    "dci_informativeness_test",
)


def latent_ranges(z: torch.Tensor) -> np.ndarray:
    """Per-dimension [min, max] over every sampled slot vector of ``z`` ``[N, K, D]``, giving ``[D, 2]``."""
    flat = z.reshape(-1, z.shape[-1])
    return torch.stack([flat.amin(dim=0), flat.amax(dim=0)], dim=1).cpu().numpy()


def activeness(
    decode: Decoder,
    z: torch.Tensor,
    slots: torch.Tensor,
    ranges: np.ndarray,
    steps: int = 6,
    batch_size: int = 64,
    progress: bool = False,
) -> np.ndarray:
    """Mean image variance when one latent of one slot sweeps its range (docs/evaluation.md#activeness),
    ``[N, D]``.

    For image ``n`` and dimension ``j``, ``z[n, slots[n], j]`` takes ``steps`` equally spaced values from
    ``ranges[j, 0]`` to ``ranges[j, 1]``; the unbiased per-pixel variance over the composed images is averaged
    over pixels and channels. A dimension the decoder ignores scores exactly 0.
    """
    count, _, dims = z.shape
    values = torch.from_numpy(np.linspace(ranges[:, 0], ranges[:, 1], steps, axis=1)).to(z)  # [D, S]
    every = torch.arange(dims)
    scores = np.zeros((count, dims))
    for n in tqdm(range(count), desc="activeness", unit="image", disable=not progress, leave=False):
        images = sweep_slot(decode, z[n], int(slots[n]), every, values, batch_size)  # [D, S, 3, H, W]
        variance = images.flatten(2).var(dim=1, unbiased=True)  # [D, 3*H*W]
        scores[n] = variance.mean(dim=1).cpu().numpy()
    return scores


def matching_iou(
    true_labels: torch.Tensor,
    pred_labels: torch.Tensor,
    visibility: torch.Tensor,
    num_slots: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Match visible ground-truth objects to slots by Hungarian IoU (docs/evaluation.md#dci), per image.

    Objects are the entities whose ``visibility`` is 1 (the background, entity 0, excluded), read from the
    flags rather than assumed contiguous (docs/reference-differences.md#dci). Objects under
    ``MIN_OBJECT_PIXELS`` pixels are dropped,
    as are matches with IoU below ``MIN_MATCH_IOU``. Returns ``(entity indices, slot indices)`` per image.
    """
    entities = visibility.shape[1]
    one_true = torch.nn.functional.one_hot(true_labels.flatten(1).long(), entities).float()  # [B, N, E]
    one_pred = torch.nn.functional.one_hot(pred_labels.flatten(1).long(), num_slots).float()  # [B, N, K]
    inter = torch.einsum("bne,bnk->bek", one_true, one_pred)
    union = one_true.sum(1)[:, :, None] + one_pred.sum(1)[:, None, :] - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter)).cpu().numpy()
    area = one_true.sum(1).cpu().numpy()  # [B, E]
    visible = visibility.cpu().numpy() > 0.5
    matches = []
    for b in range(len(iou)):
        objects = np.flatnonzero(visible[b] & (area[b] >= MIN_OBJECT_PIXELS) & (np.arange(entities) > 0))
        rows, cols = linear_sum_assignment(iou[b][objects], maximize=True)
        keep = iou[b][objects[rows], cols] >= MIN_MATCH_IOU
        matches.append((objects[rows[keep]], cols[keep]))
    return matches


def dci_factors(factor_names: Sequence[str]) -> tuple[list[int], list[bool]]:
    """Columns DCI uses (all but visibility and projected pixel coordinates) and which are discrete."""
    columns = [i for i, name in enumerate(factor_names) if name not in EXCLUDED_FACTORS]
    return columns, [factor_names[i] in DISCRETE_FACTORS for i in columns]


@dataclass(frozen=True)
class DCIResult:
    """DCI scores, the ``[D, F]`` importance matrix and the per-factor informativeness on the test half."""

    disentanglement: float
    completeness: float
    informativeness_train: float
    informativeness_test: float
    importance: np.ndarray
    factor_informativeness: dict[str, float]

    def metrics(self) -> dict[str, float]:
        """The four scores under their ``results.json`` names (``DCI_METRICS``)."""
        scores = (
            self.disentanglement,
            self.completeness,
            self.informativeness_train,
            self.informativeness_test,
        )
        return dict(zip(DCI_METRICS, scores, strict=True))


def dci(
    codes: np.ndarray,
    factors: np.ndarray,
    factor_names: Sequence[str],
    discrete: Sequence[bool],
    *,
    n_estimators: int = 100,
    test_size: float = 0.5,
    random_state: int = 5,
) -> DCIResult:
    """DCI of ``codes`` ``[N, D]`` against ``factors`` ``[N, F]`` on a shuffled 50/50 split
    (docs/evaluation.md#dci).

    Factors that are constant over the whole set carry no information and are left out.
    """
    problem = dci_problem(codes, factors)
    if problem:
        raise ValueError(problem)
    varying = [f for f in range(factors.shape[1]) if np.unique(factors[:, f]).size > 1]
    codes_train, codes_test, y_train, y_test = train_test_split(
        codes, factors[:, varying], test_size=test_size, random_state=random_state, shuffle=True
    )
    importance = np.zeros((codes.shape[1], len(varying)))  # [D, F]
    train_scores, test_scores = [], []
    for column, f in enumerate(varying):
        if discrete[f]:
            predictor = GradientBoostingClassifier(n_estimators=n_estimators, random_state=random_state)
            target_train, target_test = y_train[:, column].astype(int), y_test[:, column].astype(int)
        else:
            predictor = GradientBoostingRegressor(n_estimators=n_estimators, random_state=random_state)
            target_train, target_test = y_train[:, column], y_test[:, column]
        if np.unique(target_train).size < 2:
            train_scores.append(np.nan)
            test_scores.append(np.nan)
            continue
        predictor.fit(codes_train, target_train)
        importance[:, column] = np.abs(predictor.feature_importances_)
        train_scores.append(max(predictor.score(codes_train, target_train), 0.0))
        test_scores.append(max(predictor.score(codes_test, target_test), 0.0))
    return DCIResult(
        disentanglement=_disentanglement(importance),
        completeness=_disentanglement(importance.T),
        informativeness_train=float(np.nanmean(train_scores)),
        informativeness_test=float(np.nanmean(test_scores)),
        importance=importance,
        factor_informativeness={factor_names[f]: float(s) for f, s in zip(varying, test_scores, strict=True)},
    )


def dci_problem(codes: np.ndarray, factors: np.ndarray) -> str | None:
    """Why DCI cannot be computed on these rows (too few, mismatched, nothing varies), or None."""
    if len(codes) != len(factors) or len(codes) < MIN_DCI_OBJECTS:
        return (
            f"DCI needs matching codes and factors with at least {MIN_DCI_OBJECTS} rows (matched objects), "
            f"got {len(codes)} codes and {len(factors)} factor rows; evaluate more images (eval.num_images) "
            "or a model whose slots match objects (IoU >= 0.1)"
        )
    if all(np.unique(factors[:, f]).size < 2 for f in range(factors.shape[1])):
        return "every factor is constant over the matched objects; DCI is undefined"
    return None


def _disentanglement(importance: np.ndarray) -> float:
    """Σ_rows ρ_row (1 − H(row)), entropy in base = number of columns (disentanglement_lib)."""
    if importance.sum() == 0:
        importance = np.ones_like(importance)
    per_row = 1.0 - entropy(importance.T + 1e-11, base=max(importance.shape[1], 2))
    weights = importance.sum(axis=1) / importance.sum()
    return float((per_row * weights).sum())
