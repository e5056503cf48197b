"""Shared pytest set-up. Fixtures that start real services live in tests/fixtures/ and stop them by PID."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")

pytest_plugins = [
    "tests.fixtures.datasets",
    "tests.fixtures.mlflow_server",
    "tests.fixtures.postgres_server",
    "tests.fixtures.slurm_cluster",
]
