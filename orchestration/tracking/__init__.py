"""MLflow tracking: every access to MLflow in the project goes through this package.

``store`` (the tracking store and its experiments), ``runs`` (one training's run, found by its run_key),
``grid_runs`` (a grid's runs, read back; its table run), ``rest`` (that read, over a server's REST API
without the mlflow package), ``logger`` (the non-blocking ``MLflowLogger``),
``spool`` (what an unreachable server did not take, and its later delivery) and ``lifetime`` (a run's
signals and final status).
"""

import os

# The logger's background thread does its own retrying; MLflow's default HTTP retries (7, exponential)
# would only hide an outage from it for minutes. Set before mlflow builds its HTTP sessions; explicit
# values win.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
