"""EfficientMORL re-implemented: model, data, training and evaluation. Knows nothing of SLURM or MLflow."""
