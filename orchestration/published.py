"""The published EfficientMORL numbers the paper layouts are compared with, in the paper's units.

Emami, Smith, Kennedy, Tenenbaum: "Efficient Iterative Amortized Inference for Learning Symmetric and
Disentangled Multi-Object Representations", ICML 2021, Table 1 (foreground ARI %, mean ± std over 5 seeds)
and Table 2 (ablations: ARI %, MSE ×10⁻⁴, KL in nats; CLEVR6 10 seeds of 50K steps, Tetrominoes 5 seeds on
a 320-image validation set), as docs/evaluation.md#published-numbers lists them.
"""

from __future__ import annotations

Published = tuple[float, float]  # mean, std

# Table 1, the EfficientMORL row: dataset -> FG-ARI (%)
TABLE1_FG_ARI: dict[str, Published] = {
    "clevr6": (96.2, 1.6),
    "multi_dsprites": (91.2, 0.4),
    "tetrominoes": (98.2, 1.8),
}

# Table 2: (dataset, variant label of the table2_* grids) -> metric -> (mean, std); "–" in the paper is absent
TABLE2: dict[tuple[str, str], dict[str, Published]] = {
    ("clevr6", "no_dual_gru"): {
        "eval/fg_ari": (79.7, 22.3),
        "eval/mse": (8.1, 1.7),
        "eval/kl": (1357.4, 321.6),
    },
    ("clevr6", "no_geco"): {"eval/fg_ari": (79.9, 9.9), "eval/mse": (9.9, 2.5), "eval/kl": (177.5, 14.7)},
    ("clevr6", "full"): {"eval/fg_ari": (82.4, 7.9), "eval/mse": (8.3, 1.1), "eval/kl": (692.7, 281.4)},
    ("tetrominoes", "no_geco"): {
        "eval/fg_ari": (82.2, 17.7),
        "eval/mse": (68.8, 42.2),
        "eval/kl": (45.9, 9.3),
    },
    ("tetrominoes", "bottom_up"): {"eval/fg_ari": (85.7, 11.0), "eval/mse": (17.1, 14.6)},
    ("tetrominoes", "reversed"): {"eval/fg_ari": (86.9, 16.2), "eval/mse": (22.1, 21.4)},
    ("tetrominoes", "reversed_plusplus"): {
        "eval/fg_ari": (97.9, 2.4),
        "eval/mse": (7.0, 6.0),
        "eval/kl": (98.5, 21.4),
    },
}


def table1(dataset: str) -> Published | None:
    """The paper's FG-ARI (%) of EfficientMORL on ``dataset``."""
    return TABLE1_FG_ARI.get(dataset)


def table2(dataset: str, variant: str, metric: str) -> Published | None:
    """The paper's ablation number of ``variant`` on ``dataset`` for ``metric`` (in the paper's units)."""
    return TABLE2.get((dataset, variant), {}).get(metric)
