"""The tracking store: its URI, whether it can be reached (and takes the login from the environment), and
experiments created safely by many jobs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestration.tracking import rest

if TYPE_CHECKING:  # imported where used, so reading a grid back need not load the mlflow package
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


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` says the store could not be reached or failed (connection refused, timeout, 5xx),
    which waiting can cure; False for an answer that refuses (4xx: a login, a permission, a bad request)."""
    from mlflow.exceptions import MlflowException

    if isinstance(exc, TrackingUnavailable):
        return exc.__cause__ is not None and is_outage(exc.__cause__)
    if isinstance(exc, MlflowException):
        return not 400 <= exc.get_http_status_code() < 500
    return isinstance(exc, OSError)  # requests' ConnectionError and Timeout are OSErrors


CREDENTIALS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


def refusal(tracking_uri: str, exc: MlflowException) -> str | None:
    """What to say when the server answered 401/403 (credentials missing, wrong, or without permission);
    None for any other failure. The credentials themselves are never part of the message."""
    status = exc.get_http_status_code()
    if status not in (401, 403):
        return None
    given = [name for name in CREDENTIALS if os.environ.get(name)]
    if status == 403:
        user = os.environ.get(CREDENTIALS[0], "?")
        return (
            f"the MLflow server {tracking_uri} refused user {user!r} permission (HTTP 403); ask the server's "
            "admin for EDIT or MANAGE permission on the experiment, or use another MLFLOW_TRACKING_USERNAME"
        )
    if len(given) < len(CREDENTIALS):
        missing = " and ".join(name for name in CREDENTIALS if name not in given)
        return (
            f"the MLflow server {tracking_uri} requires a login (HTTP 401) and {missing} is not set; "
            "export MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )
    return (
        f"the MLflow server {tracking_uri} refused the login of user {os.environ[CREDENTIALS[0]]!r} "
        "(HTTP 401: wrong user name or password); check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
    )


def find_experiment(tracking_uri: str, name: str, client: MlflowClient) -> Any:
    """The experiment named ``name`` (None if there is none); ``TrackingUnavailable``, saying why and what
    to do, when the store cannot be reached or refuses the login."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_experiment_by_name(name)
    except MlflowException as exc:
        refused = refusal(tracking_uri, exc)
        if refused:
            raise TrackingUnavailable(refused) from None  # MLflow's own message only repeats it
        reason = str(exc).splitlines()[0][:300]
        raise TrackingUnavailable(
            f"the MLflow tracking store {tracking_uri} cannot be reached ({reason}); start the server "
            "(docker/docker-compose.yml, or `mlflow server --host 127.0.0.1`) or use tracking=local"
        ) from exc


def ensure_experiment(tracking_uri: str, name: str, client: MlflowClient | None = None) -> str:
    """The experiment's id, creating it if needed. Safe when a grid's jobs start together. With an embedded
    SQLite store its artifacts go next to the database file (``<root>/mlartifacts``), not into ``./mlruns``
    of whatever the working directory is."""
    if client is None and rest.serves(tracking_uri):
        try:
            return rest.ensure_experiment(tracking_uri, name, EXPERIMENT_KIND)
        except rest.RestUnavailable:
            pass  # the mlflow client tries again, and says what is wrong if it is
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = client or MlflowClient(tracking_uri)
    experiment = find_experiment(tracking_uri, name, client)
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
