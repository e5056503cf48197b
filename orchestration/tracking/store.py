"""The tracking store: its URI, whether it can be reached, and experiments created safely by many jobs."""

from __future__ import annotations

from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient


def local_tracking_uri(root: str | Path) -> str:
    """The embedded SQLite store ``<root>/mlflow.db`` as a URI (mlflow 3 refuses plain file stores)."""
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}"


# MLflow's UI opens an experiment of this kind on its runs table (untagged ones on the GenAI traces view)
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def store_exists(tracking_uri: str) -> bool:
    """False for an embedded SQLite store whose file is not there yet (reading it would create it)."""
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri.removeprefix("sqlite:///")).is_file()
    return True


class TrackingUnavailable(RuntimeError):
    """The tracking store cannot be reached; the message says which and how to fix it."""


def ensure_experiment(tracking_uri: str, name: str, client: MlflowClient | None = None) -> str:
    """The experiment's id, creating it if needed. Safe when a grid's jobs start together. With an embedded
    SQLite store its artifacts go next to the database file (``<root>/mlartifacts``), not into ``./mlruns``
    of whatever the working directory is."""
    client = client or MlflowClient(tracking_uri)
    try:
        experiment = client.get_experiment_by_name(name)
    except MlflowException as exc:
        reason = str(exc).splitlines()[0][:300]
        raise TrackingUnavailable(
            f"the MLflow tracking store {tracking_uri} cannot be reached ({reason}); start the server "
            "(docker/docker-compose.yml, or `mlflow server --host 127.0.0.1`) or use tracking=local"
        ) from exc
    if experiment is not None:
        for key, value in EXPERIMENT_KIND.items():
            if experiment.tags.get(key) != value:
                client.set_experiment_tag(experiment.experiment_id, key, value)
        return experiment.experiment_id
    location = None
    if tracking_uri.startswith("sqlite:///"):
        location = (Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)
    except MlflowException:
        # Jobs of one grid start together: another may have created the experiment since the lookup.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id
