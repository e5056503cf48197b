"""The job: train one run of a grid, then evaluate it, tracked in one MLflow run found by its run_key.

``TrainAndEvaluate`` is a small picklable submitit ``Checkpointable``. Each task of a job is one rank
(one per GPU); rank 0 talks to MLflow. Preemption and time limits reach the job as SIGUSR2: the task
only raises a flag that the trainer polls once per step; the trainer writes a checkpoint and returns,
and then submitit's own handler runs (``checkpoint()`` → a fresh copy of this callable → requeue). The
requeued job finds the same MLflow run by run_key and resumes from the checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import submitit

from orchestration.job_environment import TaskEnvironment, export_distributed_environment, task_environment
from orchestration.run_spec import RunSpec
from orchestration.tracking.lifetime import StopRequest, tracked_run
from orchestration.tracking.store import is_outage

if TYPE_CHECKING:  # imported where used: submitting a grid needs neither torch nor the MLflow logger
    from emorl.config import DataConfig
    from orchestration.tracking.logger import MLflowLogger

EVAL_TYPE = "ari_mse_kl"
JobResult = dict[str, str | float]  # run_key, step, the metrics (or "preempted", "skipped")
REPO_ROOT = Path(__file__).resolve().parent.parent
SPOOL_DIR = "mlflow-spool"  # in a run's output folder


def code_version(repo: Path = REPO_ROOT) -> dict[str, str]:
    """git SHA of the code this task runs (a snapshot's HEAD when submitted from one) and a dirty flag."""

    def git(*args: str) -> str:
        result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
        return result.stdout.strip() if result.returncode == 0 else ""

    sha = git("rev-parse", "HEAD") or "unknown"
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"git_sha": sha, "git_dirty": str(dirty).lower()}


def dataset_checksums(data: DataConfig) -> dict[str, str]:
    """SHA-256 of the train/test files as recorded in the data root's manifest (when there is one)."""
    from emorl.data.integrity import read_manifest
    from emorl.data.layout import dataset_path

    manifest = read_manifest(data.root)
    tags = {}
    for split in ("train", "test"):
        entry = manifest.get(dataset_path(data.name, data.root, split).name)
        tags[f"data_sha256.{split}"] = entry.sha256 if entry else "not in manifest"
    return tags


class TrainAndEvaluate(submitit.helpers.Checkpointable):
    """Train ``spec`` (resuming from its checkpoints), evaluate FG-ARI/MSE/KL, all in one MLflow run."""

    def __init__(self, spec: RunSpec):
        self.spec = spec
        self._spent: dict[str, float] = {}  # what the run's earlier attempts cost (read when it opens)

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """For submitit's requeue: a fresh copy (the trainer's checkpoint on disk carries the state)."""
        return submitit.helpers.DelayedSubmission(TrainAndEvaluate(self.spec), *args, **kwargs)

    def __call__(self) -> JobResult:
        env = task_environment()
        export_distributed_environment()
        uri = self.spec.tracking.uri
        is_main = env.global_rank == 0
        node = os.environ.get("SLURMD_NODENAME", os.uname().nodename)
        print(
            f"run {self.spec.name} ({self.spec.run_key}): rank {env.global_rank}/{env.num_tasks} "
            f"on {node}, restart {os.environ.get('SLURM_RESTART_COUNT', '0')}",
            file=sys.stderr,
            flush=True,
        )
        if self._finished(uri):  # every rank asks, so none waits for a rank 0 that has nothing to do
            return {"run_key": self.spec.run_key, "skipped": "already FINISHED"}
        started = time.monotonic()
        logger = self._open(uri, env) if is_main else None
        with tracked_run(logger, signals=(signal.SIGUSR2,)) as stop:
            try:
                result = self._train_and_evaluate(logger, stop)
            finally:
                if logger is not None and env.cluster != "slurm":  # SLURM's jobs are costed from sacct
                    self._log_wall_clock(logger, time.monotonic() - started, env)
        if stop.preempted:
            if logger is not None:
                self._pause(logger, result["step"])
            requeue = signal.getsignal(signal.SIGUSR2)
            if callable(requeue):
                requeue(signal.SIGUSR2, None)  # submitit: checkpoint() and requeue, then exit
        return result

    def _train_and_evaluate(self, logger: MLflowLogger | None, stop: StopRequest) -> JobResult:
        from emorl.eval import evaluate
        from emorl.train import train
        from emorl.train.checkpoint import load_for_eval

        cfg = self.spec.config
        trained = train(cfg, logger, stop_requested=stop.is_set, progress=False)
        stop.release()  # from here USR2 is submitit's again: requeue, and the next attempt re-evaluates
        stop.preempted = trained.preempted
        summary: JobResult = {"run_key": self.spec.run_key, "step": trained.final_step}
        if trained.preempted:
            return {**summary, "preempted": True}
        if logger is None:  # ranks > 0 are done once training is
            return summary
        out_dir = Path(cfg.eval.output_dir)
        results = evaluate(load_for_eval(cfg.training.output_dir), EVAL_TYPE, cfg, out_dir, logger)
        logger.log_artifact(out_dir / "results.json", "eval")
        metrics = {
            key: entry["mean"]
            for key, entry in results.items()
            if isinstance(entry, dict) and "mean" in entry
        }
        return {**summary, **metrics, "diagnosis": results.get("diagnosis", {}).get("label")}

    def _log_wall_clock(self, logger: MLflowLogger, seconds: float, env: TaskEnvironment) -> None:
        """Outside SLURM an attempt's cost is its own wall clock (GPU-hours: × the GPUs its ranks used),
        logged as ``orchestration.costs`` logs sacct's: per attempt, and the run's totals so far."""
        import torch

        from orchestration.costs import ATTEMPT_ELAPSED_HOURS, ATTEMPT_GPU_HOURS, ELAPSED_HOURS, GPU_HOURS

        on_gpu = self.spec.config.training.device != "cpu" and torch.cuda.is_available()
        hours = seconds / 3600
        gpu_hours = hours * env.num_tasks if on_gpu else 0.0
        attempt = self._spent.get("attempt", 0)
        logger.log_metrics({ATTEMPT_ELAPSED_HOURS: hours, ATTEMPT_GPU_HOURS: gpu_hours}, attempt)
        if logger.run_id is not None and "elapsed" in self._spent:  # the earlier attempts' totals are known
            totals = {
                ELAPSED_HOURS: self._spent["elapsed"] + hours,
                GPU_HOURS: self._spent["gpu"] + gpu_hours,
            }
            logger.log_metrics(totals, attempt)

    def _finished(self, uri: str) -> bool:
        """Whether the run is FINISHED in MLflow; False when the server cannot say (it is down)."""
        from orchestration.tracking.runs import find_run, run_status

        try:
            run_id = find_run(self.spec.run_key, self.spec.experiment, uri)
            return run_id is not None and run_status(run_id, uri) == "FINISHED"
        except Exception as exc:
            if not is_outage(exc):
                raise
            return False

    def _pause(self, logger: MLflowLogger, step: int) -> None:
        from orchestration.tracking.runs import pause_run

        if logger.run_id is None:
            return  # never opened: the spool carries the run, and the next attempt opens it
        try:
            pause_run(logger.tracking_uri, logger.run_id, step)
        except Exception as exc:
            if not is_outage(exc):
                raise

    @staticmethod
    def _spent_so_far(uri: str, run_id: str | None, steps: dict[str, int]) -> dict[str, float]:
        """This attempt's index among the costed ones, and (when the run could be read) the totals so far."""
        from orchestration.costs import ATTEMPT_ELAPSED_HOURS, ELAPSED_HOURS, GPU_HOURS

        spent: dict[str, float] = {"attempt": steps.get(ATTEMPT_ELAPSED_HOURS, -1) + 1}
        if run_id is not None:
            from mlflow.tracking import MlflowClient

            metrics = MlflowClient(uri).get_run(run_id).data.metrics
            spent.update(elapsed=metrics.get(ELAPSED_HOURS, 0.0), gpu=metrics.get(GPU_HOURS, 0.0))
        return spent

    def _tags(self, env: TaskEnvironment) -> dict[str, str]:
        spec = self.spec
        tags = {
            "grid": spec.grid,
            "cell_key": spec.cell_key,
            "run_key": spec.run_key,
            "seed": str(spec.seed),
            **{f"label.{axis}": label for axis, label in spec.labels.items()},
            **code_version(),
            **dataset_checksums(spec.config.data),
        }
        if env.job_id is not None:
            array_job, _, array_task = env.job_id.partition("_")
            tags.update(
                {
                    "slurm_job_id": env.job_id,
                    "slurm_array_job_id": array_job if array_task else "",
                    "slurm_array_task_id": array_task,
                    "nodes": ",".join(env.hostnames),
                    "executor": str(env.cluster),
                    "restart_count": os.environ.get("SLURM_RESTART_COUNT", "0"),
                }
            )
        return tags

    def _open(self, uri: str, env: TaskEnvironment) -> MLflowLogger:
        """Deliver what an earlier attempt spooled, find or create the run by run_key, attach the resolved
        config and `pip freeze`. With the server down the job trains anyway: the logger opens the run
        when the server answers (or the spool carries it to the next attempt)."""
        from orchestration.tracking.logger import MLflowLogger
        from orchestration.tracking.runs import RunOpening
        from orchestration.tracking.spool import deliver_spools

        spec = self.spec
        opening = RunOpening(spec.experiment, spec.run_key, spec.name, self._tags(env), str(spec.output_dir))
        spools = spec.output_dir / SPOOL_DIR
        try:
            deliver_spools(spools, uri)
            run_id, steps = opening.open(uri)
        except Exception as exc:
            if not is_outage(exc):
                raise
            print(
                f"MLflow at {uri} unreachable ({type(exc).__name__}); training anyway, the run opens in "
                "MLflow when the server answers",
                file=sys.stderr,
                flush=True,
            )
            run_id, steps = None, {}
        self._spent = self._spent_so_far(uri, run_id, steps)
        logger = MLflowLogger(uri, run_id, opening=opening, spool_dir=spools, logged_steps=steps)
        logger.log_params(spec.cell_params)
        folder = Path(tempfile.mkdtemp(prefix="emorl-run-"))
        (folder / "config.json").write_text(json.dumps(spec.to_dict(), indent=2, sort_keys=True))
        freeze = subprocess.run(
            [sys.executable, "-m", "pip", "freeze"], capture_output=True, text=True, check=False
        )
        (folder / "requirements.txt").write_text(freeze.stdout)
        logger.log_artifact(folder / "config.json", "run")
        logger.log_artifact(folder / "requirements.txt", "run")
        return logger
