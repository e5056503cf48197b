"""A lab's tracking server for real: ``mlflow server`` backed by PostgreSQL, eight toy trainings at once
(local launcher) logging through it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.fixtures.mlflow_server import MlflowServer
from tests.fixtures.postgres_server import PostgresServer
from tests.orchestration.test_local_grid import ablation_grid

pytestmark = [pytest.mark.postgres, pytest.mark.mlflow_server, pytest.mark.slow]
RUNS = 8  # the demo grid's 2 priors × 4 seeds, all training at once
ITERS = 8
# toy size; every step is logged, so every step's metrics must arrive
CONCURRENT = [
    "grid=demo",
    "grid.seeds=[1,2,3,4]",
    f"training.iters={ITERS}",
    "training.log_every=1",
    f"training.checkpoint_every_steps={ITERS}",
    "geco.warm_start=4",
    "data.generate_train=32",
    "data.generate_test=8",
    "eval.num_images=8",
    "eval.batch_size=8",
    f"launcher.array_parallelism={RUNS}",
]


@pytest.fixture
def postgres_mlflow(postgres_server: PostgresServer, tmp_path: Path) -> Iterator[MlflowServer]:
    """An MLflow server on 127.0.0.1 whose backend store is a fresh PostgreSQL database."""
    database = f"mlflow_{tmp_path.name.lower().replace('-', '_')}"[:60]
    postgres_server.create_database(database)
    server = MlflowServer(tmp_path / "server", backend_store_uri=postgres_server.uri(database), workers=2)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_the_postgres_backend_stores_the_server_runs(postgres_server, postgres_mlflow):
    import psycopg

    client = MlflowClient(postgres_mlflow.uri)
    run = client.create_run(client.create_experiment("direct"))
    client.log_metric(run.info.run_id, "x", 1.5, step=3)
    with psycopg.connect(postgres_mlflow.backend_store_uri) as connection:
        stored = connection.execute(
            "SELECT key, value, step FROM metrics WHERE run_uuid = %s", (run.info.run_id,)
        ).fetchall()
    assert stored == [("x", 1.5, 3)]


def test_eight_concurrent_trainings_log_every_step_into_one_run_each(postgres_mlflow, tmp_path):
    done = ablation_grid(
        tmp_path / "out", "tracking=server", f"tracking.uri={postgres_mlflow.uri}", base=CONCURRENT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"submitted {RUNS} runs" in done.stdout
    assert "MLflow unreachable" not in done.stderr

    client = MlflowClient(postgres_mlflow.uri)
    experiment = client.get_experiment_by_name("emorl-demo")
    runs = [run for run in client.search_runs([experiment.experiment_id]) if "run_key" in run.data.tags]
    run_keys = [run.data.tags["run_key"] for run in runs]
    assert len(run_keys) == RUNS and len(set(run_keys)) == RUNS  # one MLflow run per run_key
    assert {run.info.status for run in runs} == {"FINISHED"}
    for run in runs:
        train_keys = [key for key in run.data.metrics if key.startswith("train/")]
        assert "train/total_loss" in train_keys
        for key in train_keys:
            steps = sorted(metric.step for metric in client.get_metric_history(run.info.run_id, key))
            assert steps == list(range(1, ITERS + 1)), (run.data.tags["run_key"], key, steps)
    log = (postgres_mlflow.root / "server.log").read_text(errors="replace")
    assert '" 500 ' not in log and "Traceback" not in log
