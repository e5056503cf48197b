"""Metric records per second that a lab's ``mlflow server`` absorbs from many concurrent writers, with a
PostgreSQL backend store beside SQLite.

    python benchmarks/tracking_throughput.py                          # 8 and 32 writers, both backends
    python benchmarks/tracking_throughput.py --writers 8 32 64 --seconds 30 --batch 100 --workers 4

Starts its own servers on 127.0.0.1 (PostgreSQL: Debian's initdb + pg_ctl in a temporary folder). Each
writer is a process with a run of its own that sends ``log_batch`` calls of ``--batch`` metric records
(10 keys × batch/10 steps: what ``MLflowLogger`` sends after a few seconds of training) for ``--seconds``.
Prints, per backend and writer count: records/s stored, calls/s, the median and 95th-percentile call
latency, and failed calls (e.g. SQLite's ``database is locked``); it checks that every acknowledged record
is in the store.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mlflow.entities import Metric  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from tests.fixtures.mlflow_server import MlflowServer  # noqa: E402
from tests.fixtures.postgres_server import PostgresServer, postgres_bin  # noqa: E402

KEYS = 10


def writer(uri: str, run_id: str, batch: int, start_at: float, stop_at: float, results) -> None:
    """Send batches until ``stop_at``; report (records acknowledged, latencies, failures)."""
    client = MlflowClient(uri)
    latencies: list[float] = []
    sent = failures = step = 0
    time.sleep(max(0.0, start_at - time.time()))
    while time.time() < stop_at:
        now = int(time.time() * 1000)
        records = [
            Metric(f"train/m{key}", float(step + key), now, step + offset)
            for offset in range(batch // KEYS)
            for key in range(KEYS)
        ]
        began = time.perf_counter()
        try:
            client.log_batch(run_id, metrics=records)
        except Exception:  # a refused or failed call: counted, its records not
            failures += 1
        else:
            sent += len(records)
            step += batch // KEYS
        latencies.append(time.perf_counter() - began)
    results.put((run_id, sent, latencies, failures))


def measure(uri: str, writers: int, batch: int, seconds: float) -> dict[str, float]:
    """One round: ``writers`` processes, each with a fresh run, writing for ``seconds``."""
    client = MlflowClient(uri)
    experiment = client.create_experiment(f"throughput-{writers}-{time.time_ns()}")
    runs = [client.create_run(experiment).info.run_id for _ in range(writers)]
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start_at = time.time() + 2.0  # every writer forked and connected before the clock starts
    processes = [
        context.Process(target=writer, args=(uri, run, batch, start_at, start_at + seconds, results))
        for run in runs
    ]
    for process in processes:
        process.start()
    reports = [results.get(timeout=seconds + 300) for _ in processes]
    for process in processes:
        process.join()
    sent = sum(report[1] for report in reports)
    latencies = sorted(latency for report in reports for latency in report[2])
    stored = sum(len(client.get_metric_history(run, f"train/m{key}")) for run in runs for key in range(KEYS))
    return {
        "records/s": sent / seconds,
        "calls/s": len(latencies) / seconds,
        "median ms": 1000 * statistics.median(latencies),
        "p95 ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
        "failed calls": sum(report[3] for report in reports),
        "stored = acknowledged": stored == sent,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--writers", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch", type=int, default=100, help="metric records per log_batch call")
    parser.add_argument("--workers", type=int, default=2, help="the server's uvicorn workers")
    args = parser.parse_args()
    if args.batch % KEYS:
        parser.error(f"--batch must be a multiple of {KEYS} (keys per step)")
    bin_dir = postgres_bin()
    if bin_dir is None:
        parser.error("PostgreSQL is not installed (bash slurm/install.sh)")

    work = Path(tempfile.mkdtemp(prefix="emorl-throughput-"))
    work.chmod(0o755)  # the postgres user enters it when run as root
    postgres = PostgresServer(work / "postgres", bin_dir)
    (work / "postgres").mkdir()
    (work / "postgres").chmod(0o755)
    postgres.start()
    rows = []
    try:
        postgres.create_database("mlflow")
        sqlite = f"sqlite:///{work / 'sqlite' / 'mlflow.db'}"
        backends = {"postgresql": postgres.uri("mlflow"), "sqlite": sqlite}
        for name, store in backends.items():
            server = MlflowServer(work / name, backend_store_uri=store, workers=args.workers)
            print(f"starting mlflow server ({name}, {args.workers} workers) ...", flush=True)
            server.start()
            try:
                for writers in args.writers:
                    figures = measure(server.uri, writers, args.batch, args.seconds)
                    rows.append({"backend": name, "writers": writers, **figures})
                    print(rows[-1], flush=True)
            finally:
                server.stop()
    finally:
        postgres.stop()
    from tabulate import tabulate

    print(f"\n{args.seconds:.0f} s per round, {args.batch} records per log_batch call")
    print(tabulate(rows, headers="keys", tablefmt="github", floatfmt=".1f"))


if __name__ == "__main__":
    main()
