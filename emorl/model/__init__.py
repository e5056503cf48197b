"""The EMORL model, one concept per module."""

from emorl.model.emorl import EMORL, EMORLOutput

__all__ = ["EMORL", "EMORLOutput"]
