"""A grid's runs searched, and its experiment ensured, over MLflow's REST API with the standard library.

``status.py`` only reads, and importing the mlflow package costs 2.5 s of its start-up on a 2-core machine,
more than the whole read of a 256-run grid (and half of submitting a small one). So for an ``http(s)``
server reached with no login, or with MLflow's own environment variables (user and password, or a token;
TLS settings honoured), the search and the experiment's look-up and creation go out as the documented REST
calls from here. Any other setup (a credentials file, an auth plugin, client certificates) and any failure
of this path (``RestUnavailable``) leave it to the mlflow client, so its messages and retries stay the only
ones a user sees.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Setups only the mlflow client knows how to authenticate; with any of them set, this path stays out.
CLIENT_ONLY = ("MLFLOW_TRACKING_AUTH", "MLFLOW_TRACKING_CLIENT_CERT_PATH", "MLFLOW_TRACKING_AWS_SIGV4")
PAGE = 1000  # runs per search page (the server's maximum is 50 000)


class RestUnavailable(RuntimeError):
    """This path cannot answer (unreachable, refused, unexpected reply): ask the mlflow client instead."""


def serves(uri: str) -> bool:
    """True when this module can read from ``uri`` as the mlflow client would."""
    return (
        uri.startswith(("http://", "https://"))
        and not any(os.environ.get(name) for name in CLIENT_ONLY)
        and not (Path.home() / ".mlflow" / "credentials").is_file()
    )


def search_runs(
    uri: str, experiment: str, filter_string: str, order_by: list[str]
) -> Iterator[dict[str, Any]]:
    """Every run of ``experiment`` matching ``filter_string``, page by page, as the REST API's JSON
    (``info``, ``data`` with lists of ``metrics``, ``params``, ``tags``); none for a missing experiment."""
    found = _experiment(uri, experiment)
    if found is None:
        return
    token = None
    while True:
        body: dict[str, Any] = {
            "experiment_ids": [found["experiment_id"]],
            "filter": filter_string,
            "max_results": PAGE,
            "order_by": order_by,
        }
        if token:
            body["page_token"] = token
        page = _call(uri, "runs/search", body=body)
        yield from page.get("runs", [])
        token = page.get("next_page_token")
        if not token:
            return


def ensure_experiment(uri: str, name: str, tags: dict[str, str]) -> str:
    """The id of experiment ``name``, created with ``tags`` if missing (or by another job meanwhile), its
    ``tags`` set if it lacks them: ``store.ensure_experiment`` for a server, without the mlflow package."""
    found = _experiment(uri, name)
    if found is None:
        body = {"name": name, "tags": [{"key": key, "value": value} for key, value in tags.items()]}
        try:
            return _call(uri, "experiments/create", body=body)["experiment_id"]
        except RestUnavailable:
            found = _experiment(uri, name)  # jobs of one grid start together: another may have created it
            if found is None:
                raise
    have = {tag["key"]: tag.get("value") for tag in found.get("tags", [])}
    for key, value in tags.items():
        if have.get(key) != value:
            body = {"experiment_id": found["experiment_id"], "key": key, "value": value}
            _call(uri, "experiments/set-experiment-tag", body=body)
    return found["experiment_id"]


def _experiment(uri: str, name: str) -> dict[str, Any] | None:
    try:
        return _call(uri, "experiments/get-by-name", query={"experiment_name": name})["experiment"]
    except _NotFound:
        return None


class _NotFound(Exception):
    pass


def _call(
    uri: str, endpoint: str, body: dict[str, Any] | None = None, query: dict[str, str] | None = None
) -> Any:
    url = f"{uri.rstrip('/')}/api/2.0/mlflow/{endpoint}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=_headers(), method="POST" if data else "GET")
    timeout = float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", "20"))
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=_tls()) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        if exc.code == 404 and endpoint.startswith("experiments/"):
            raise _NotFound from None
        raise RestUnavailable(f"HTTP {exc.code} from {url}") from exc
    except (OSError, ValueError) as exc:  # unreachable, timed out, or not JSON
        raise RestUnavailable(f"{url}: {exc}") from exc


def _headers() -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if user and password:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    elif token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _tls() -> ssl.SSLContext | None:
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        return ssl._create_unverified_context()  # the user asked for it, as mlflow does
    cafile = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH")
    return ssl.create_default_context(cafile=cafile) if cafile else None
