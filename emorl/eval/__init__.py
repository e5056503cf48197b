"""Evaluation: segmentation scores, disentanglement, figures and GIFs (docs/evaluation.md).

``evaluate(loaded, eval_type, cfg, out_dir, logger=None)`` runs one of ``EVAL_TYPES`` on a checkpoint loaded
with ``emorl.train.checkpoint.load_for_eval`` and writes ``out_dir/results.json``.
"""

from emorl.eval.eval_types import EVAL_TYPES, evaluate

__all__ = ["EVAL_TYPES", "evaluate"]
