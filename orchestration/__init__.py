"""The cluster layer: a grid becomes validated runs, runs become jobs, jobs become tracked results and tables.

``compose`` (Hydra composition) and ``grid`` (axes × seeds) give typed ``run_spec.RunSpec`` s (``config``:
launcher and tracking); ``plan`` decides what to submit (asking ``scheduler`` and the ``ledger``),
``submit`` submits and ``wait`` waits; on the node, ``task`` trains and evaluates one run
(``job_environment``). Every MLflow access is in ``tracking/``; ``status`` reads the results back, and
``report`` turns them into tables: ``aggregate`` (runs per cell), ``tables`` (the paper's layouts, beside
``published``), ``table_formats`` and ``plots``.
"""

import os

# MLflow 3's usage telemetry: a background thread that calls out to the internet (which cluster nodes often
# lack) and sets and unsets an environment variable while it runs, racing every copy of os.environ (submitit
# copies it to launch each job: a KeyError there lost a whole submission). Off unless a user turns it on.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# MLflow prints "🏃 View run … at: <url>" on stdout whenever a run ends against a server: in the middle of a
# grid's printed tables. The entry points print the links that matter (the grid's runs, its table run).
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
