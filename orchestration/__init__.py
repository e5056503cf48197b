"""The cluster layer: a grid becomes validated runs, runs become jobs, jobs become tracked results and tables.

``compose`` (Hydra composition) and ``grid`` (axes × seeds) give typed ``run_spec.RunSpec`` s (``config``:
launcher and tracking); ``plan`` decides what to submit (asking ``scheduler`` and the ``ledger``),
``submit`` submits and ``wait`` waits; on the node, ``task`` trains and evaluates one run
(``job_environment``). Every MLflow access is in ``tracking/``; ``status`` reads the results back, and
``report`` turns them into tables: ``aggregate`` (runs per cell), ``tables`` (the paper's layouts, beside
``published``), ``table_formats`` and ``plots``.
"""
