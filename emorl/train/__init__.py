"""Training loop, distributed set-up, checkpoints and schedules."""
