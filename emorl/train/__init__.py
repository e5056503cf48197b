"""Training loop, distributed set-up, checkpoints and schedules."""

from emorl.train.loop import NonFiniteTrainingError, TrainResult, train

__all__ = ["NonFiniteTrainingError", "TrainResult", "train"]
