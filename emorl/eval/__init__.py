"""Evaluation: segmentation scores, disentanglement, figures and GIFs."""
