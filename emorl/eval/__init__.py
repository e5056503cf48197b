"""Evaluation: segmentation scores, disentanglement, figures and GIFs (docs/evaluation.md).

``evaluate(loaded, eval_type, cfg, out_dir, logger=None)`` runs one of ``EVAL_TYPES`` on a checkpoint loaded
with ``emorl.train.checkpoint.load_for_eval`` and writes ``out_dir/results.json``.

Both are loaded on first use, so the torch-free parts (``emorl.eval.results``, ``emorl.eval.diagnosis``)
can be imported by ``status.py`` and the tables without paying for torch and scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emorl.eval.eval_types import EVAL_TYPES, evaluate

__all__ = ["EVAL_TYPES", "evaluate"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from emorl.eval import eval_types

        return getattr(eval_types, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
