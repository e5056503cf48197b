"""The EMORL model, one concept per module."""
