"""The EMORL training loop (docs/training.md), reading top to bottom in the order a step runs.

Per step: curriculum I and learning rate from the step → batch to device → zero_grad → forward (GECO, β)
→ backward → gradients averaged over ranks → global-norm clip → finite check → Adam step → GECO update →
log (rank 0, every ``log_every``) → checkpoint (rank 0, every N steps / M minutes, or when asked to stop).

Departures from the reference, on purpose:
* ``training.batch_size`` is the *global* batch; each rank takes ``batch_size / world_size`` of it.
* Data order depends on the seed and is a pure function of the step, so resume continues the order.
* Every rank draws the standard-normal noise for the whole global batch and keeps its own rows, so an
  image gets the same noise whatever the world size: 2 ranks × B/2 train exactly like 1 rank × B.
* GECO is stepped with the NLL averaged over all ranks, so ζ and C_EMA are identical on every rank (the
  reference steps each rank with its own NLL and lets them drift, keeping rank 0's).
* ``iters`` updates are run (steps 0 … iters−1); the reference runs one extra (0 … iters).
* Gradients are averaged with one flat all-reduce per step that also carries the step's flags (finite,
  stop, checkpoint due); reading those flags is the one host sync per step. Metrics stay on the device
  and are read only at log cadence.
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Sampler

from emorl.config import ExperimentConfig, TrainingConfig, flatten_config
from emorl.geco import GECO
from emorl.logging import Logger
from emorl.model.emorl import EMORL, EMORLOutput
from emorl.pictures import example_grid
from emorl.train.checkpoint import (
    CHECKPOINT_DIR,
    check_resume_config,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from emorl.train.distributed import (
    DistributedContext,
    all_reduce_sum,
    broadcast_parameters,
    setup_distributed,
    teardown_distributed,
)
from emorl.train.schedule import learning_rate, refinement_steps_at


class NonFiniteTrainingError(RuntimeError):
    """Too many consecutive steps had a non-finite loss or gradient."""


@dataclass
class TrainResult:
    """How a call to ``train`` ended."""

    final_step: int
    checkpoint_path: Path | None
    preempted: bool
    metrics: dict[str, float] = field(default_factory=dict)


class GlobalBatchSampler(Sampler[list[int]]):
    """This rank's share of every global batch from ``start_step`` to ``stop_step``.

    Each epoch is a permutation seeded by (seed, epoch); global batch ``t`` of an epoch is the slice
    ``[t·G, (t+1)·G)`` of it (the remainder is dropped), and rank r takes the r-th of its ``world_size``
    equal parts. The order is therefore a function of the step alone: the same for any world size, and
    continued exactly on resume.
    """

    def __init__(
        self,
        num_items: int,
        global_batch: int,
        rank: int,
        world_size: int,
        seed: int,
        start_step: int,
        stop_step: int,
    ):
        if num_items < global_batch:
            raise ValueError(
                f"the training set has {num_items} images, fewer than one global batch of {global_batch}; "
                "lower training.batch_size or generate more data (data.generate_train)"
            )
        self.num_items, self.global_batch = num_items, global_batch
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.start_step, self.stop_step = start_step, stop_step
        self.local_batch = global_batch // world_size

    def __len__(self) -> int:
        return max(0, self.stop_step - self.start_step)

    def batch_at(self, step: int, permutation: torch.Tensor) -> list[int]:
        position = step % (self.num_items // self.global_batch)
        offset = position * self.global_batch + self.rank * self.local_batch
        return permutation[offset : offset + self.local_batch].tolist()

    def permutation(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.num_items, generator=generator)

    def __iter__(self) -> Iterator[list[int]]:
        batches_per_epoch = self.num_items // self.global_batch
        epoch, permutation = -1, torch.empty(0)
        for step in range(self.start_step, self.stop_step):
            if step // batches_per_epoch != epoch:
                epoch = step // batches_per_epoch
                permutation = self.permutation(epoch)
            yield self.batch_at(step, permutation)


def local_batch_size(global_batch: int, world_size: int) -> int:
    """The per-rank batch; the global batch must split evenly over the ranks."""
    if global_batch % world_size:
        raise ValueError(
            f"training.batch_size={global_batch} (the global batch) is not divisible by the "
            f"{world_size} ranks; pick a multiple of {world_size}"
        )
    return global_batch // world_size


def rng_state(device: torch.device) -> dict[str, Any]:
    """Every random generator this process draws from (for a bit-exact resume).

    All ranks are seeded alike and draw alike (see ``GlobalBatchNoise``), so rank 0's state is every rank's.
    """
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def set_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
    """Restore what ``rng_state`` captured (the CUDA state onto this rank's own device)."""
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


class GlobalBatchNoise:
    """Standard-normal draws for the global batch, of which this rank keeps its own rows.

    The model asks for noise shaped like a ``[B_local, ...]`` tensor; every rank draws ``[B_global, ...]``
    from identically seeded generators and slices out rank r's part, so the noise an image receives does not
    depend on how the global batch is split over ranks.
    """

    def __init__(self, rank: int, world_size: int):
        self.rank, self.world_size = rank, world_size

    def __call__(self, like: torch.Tensor) -> torch.Tensor:
        if self.world_size == 1:
            return torch.randn_like(like)
        local = like.shape[0]
        full = torch.randn((local * self.world_size, *like.shape[1:]), dtype=like.dtype, device=like.device)
        return full[self.rank * local : (self.rank + 1) * local]


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class NonFiniteGuard:
    """Counts skipped (non-finite) steps and stops training after too many in a row."""

    def __init__(self, max_consecutive: int, total: int = 0):
        self.max_consecutive = max_consecutive
        self.total = total
        self.consecutive = 0

    def record(self, finite: bool, step: int) -> None:
        if finite:
            self.consecutive = 0
            return
        self.total += 1
        self.consecutive += 1
        if self.consecutive >= self.max_consecutive:
            raise NonFiniteTrainingError(
                f"{self.consecutive} consecutive steps (up to step {step}) had a non-finite loss or gradient "
                f"({self.total} in total); training stopped. Lower training.lr, check the data, or raise "
                "training.max_nonfinite_steps"
            )


def assert_finite_state(model: torch.nn.Module, geco: torch.nn.Module | None) -> None:
    """Refuse to checkpoint a model or GECO state holding NaN or inf."""
    for owner, module in (("model", model), ("geco", geco)):
        if module is None:
            continue
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise NonFiniteTrainingError(f"{owner}.{name} holds non-finite values; not checkpointing it")


@dataclass
class StepFlags:
    """What every rank agreed on after a step's all-reduce."""

    finite: bool
    stop: bool
    checkpoint_due: bool


def average_gradients_and_flags(
    params: list[torch.nn.Parameter], flags: torch.Tensor, context: DistributedContext
) -> torch.Tensor:
    """Average gradients over ranks and sum ``flags`` over ranks, in one all-reduce.

    Every rank runs the same graph (same model, same I), so the parameters without a gradient (e.g. the
    refinement network when I = 0) are the same on every rank and stay without one, as in one process.
    """
    if not context.distributed:
        return flags
    with_grad = [p for p in params if p.grad is not None]
    flat = torch.cat([p.grad.reshape(-1) for p in with_grad] + [flags.to(with_grad[0].grad.dtype)])  # [P + 4]
    all_reduce_sum(flat, context)
    offset = 0
    for param in with_grad:
        count = param.numel()
        param.grad = flat[offset : offset + count].view_as(param).div_(context.world_size)
        offset += count
    return flat[offset:]


def training_images(images: torch.Tensor, out: Any) -> dict[str, np.ndarray]:
    """One labelled picture of the batch's first examples (docs/training.md#logging): input, reconstruction,
    segmentation
    and every slot's component × mask, upscaled nearest-neighbour (``emorl.pictures``)."""
    return {"train/examples": example_grid(images, out.means[-1], out.log_masks[-1].exp())}


@dataclass
class TrainingParts:
    """What a run updates step by step, and what its checkpoint holds."""

    model: EMORL
    geco: GECO | None
    optimizer: torch.optim.Optimizer
    params: list[torch.nn.Parameter]
    guard: NonFiniteGuard
    step: int = 0  # the number of updates run so far


@dataclass
class StepOutcome:
    """One optimisation step, as the loop logs and checkpoints it (tensors stay on the device)."""

    out: EMORLOutput  # detached
    nll: torch.Tensor  # [] this rank's batch-mean NLL
    flags: StepFlags
    grad_norm: torch.Tensor  # []
    lr: float
    refinement_steps: int


class MetricWindow:
    """Loss, NLL and KL summed on the device over the steps since the last log, and their pace."""

    def __init__(self, device: torch.device):
        self.sums = torch.zeros(3, device=device)  # [total_loss, nll, kl]
        self._reset()

    def add(self, outcome: StepOutcome) -> None:
        if outcome.flags.finite:
            self.sums += torch.stack([outcome.out.total_loss.float(), outcome.nll, outcome.out.kl.float()])
            self.finite_steps += 1
        self.steps += 1

    def flush(self, outcome: StepOutcome, parts: TrainingParts, run: TrainingConfig) -> dict[str, float]:
        """The window's metrics as plain floats (a host sync), then an empty window."""
        images_per_s = run.batch_size * self.steps / (time.perf_counter() - self.start)
        metrics = _step_metrics(self.sums, self.finite_steps, outcome, parts, run.kl_beta, images_per_s)
        self._reset()
        return metrics

    def _reset(self) -> None:
        self.sums.zero_()
        self.finite_steps, self.steps, self.start = 0, 0, time.perf_counter()


def train(
    cfg: ExperimentConfig,
    logger: Logger | None = None,
    *,
    stop_requested: Callable[[], bool] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train EMORL as ``cfg`` says, resuming from the newest checkpoint when ``cfg.training.resume``.

    ``logger`` is used on rank 0 only. ``stop_requested`` is polled once per step; when it returns true
    a checkpoint is written at the step boundary and the call returns with ``preempted=True``.
    """
    run = cfg.training
    context = setup_distributed(run.device)
    try:
        checkpoint_dir = Path(run.output_dir) / CHECKPOINT_DIR
        parts = build_parts(cfg, context)
        resume_from = restore(parts, checkpoint_dir, cfg, context.device) if run.resume else None
        forward = torch.compile(parts.model) if run.compile else parts.model
        loader = training_loader(cfg, context, parts.step)
        _announce(cfg, parts, context, resume_from, logger)
        bar = _progress_bar(run.iters, parts.step) if progress and context.is_main else None
        noise = GlobalBatchNoise(context.rank, context.world_size)
        window, metrics = MetricWindow(context.device), {}
        last_path, last_checkpoint_time, preempted = None, time.monotonic(), False

        parts.model.train()
        for batch in loader:
            images = batch["imgs"].to(context.device, non_blocking=True)  # [B, 3, H, W] in [-1, 1]
            if run.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            minutes_due = time.monotonic() - last_checkpoint_time >= run.checkpoint_every_minutes * 60
            outcome = optimisation_step(
                forward,
                parts,
                images,
                cfg,
                noise,
                context,
                wants_stop=stop_requested is not None and stop_requested(),
                checkpoint_due=context.is_main and minutes_due,
            )
            window.add(outcome)
            parts.step += 1
            if bar is not None:
                bar.update(1)
            metrics = (
                _report(outcome, window, parts, images, run, logger if context.is_main else None, bar)
                or metrics
            )

            finished = parts.step == run.iters
            flags = outcome.flags
            if parts.step % run.checkpoint_every_steps == 0 or flags.checkpoint_due or flags.stop or finished:
                last_path = _checkpoint(checkpoint_dir, cfg, parts, context, run.keep_checkpoints)
                last_checkpoint_time = time.monotonic()
            if flags.stop and not finished:
                preempted = True
                break

        if bar is not None:
            bar.close()
        if last_path is None and parts.step == run.iters:
            last_path = latest_checkpoint(checkpoint_dir)
        if context.is_main and logger is not None and parts.step == run.iters and last_path is not None:
            logger.log_artifact(last_path, "checkpoints")
        return TrainResult(parts.step, last_path, preempted, metrics)
    finally:
        teardown_distributed()


def build_parts(cfg: ExperimentConfig, context: DistributedContext) -> TrainingParts:
    """The seeded model (same weights on every rank), GECO and the optimiser, at step 0."""
    run = cfg.training
    seed_everything(run.seed)
    model = EMORL(cfg.model).to(context.device)
    if run.channels_last:
        model = model.to(memory_format=torch.channels_last)
    channels, height, width = cfg.model.input_size
    geco = None
    if cfg.geco.enabled:
        geco = GECO(cfg.geco, num_pixels=channels * height * width).to(context.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=run.lr)
    broadcast_parameters(model, context)
    params = [p for p in model.parameters() if p.requires_grad]
    return TrainingParts(model, geco, optimizer, params, NonFiniteGuard(run.max_nonfinite_steps))


def restore(
    parts: TrainingParts, checkpoint_dir: Path, cfg: ExperimentConfig, device: torch.device
) -> Path | None:
    """Load the newest checkpoint into ``parts`` (weights, optimiser, GECO, step, RNG); None if none."""
    path = latest_checkpoint(checkpoint_dir)
    if path is None:
        return None
    state = load_checkpoint(path, map_location=device)
    check_resume_config(path, state["config"], cfg.to_dict())
    parts.model.load_state_dict(state["model"])
    parts.optimizer.load_state_dict(state["optimizer"])
    if parts.geco is not None:
        parts.geco.load_state_dict(state["geco"])
    parts.step = int(state["step"])
    parts.guard.total = int(state.get("nonfinite_steps", 0))
    set_rng_state(state["rng"], device)
    return path


def training_loader(cfg: ExperimentConfig, context: DistributedContext, start_step: int) -> DataLoader:
    """This rank's share of each global batch, from ``start_step`` to ``training.iters``."""
    from emorl.data.reader import build_dataset

    run = cfg.training
    dataset = build_dataset(cfg.data, "train")
    sampler = GlobalBatchSampler(
        len(dataset), run.batch_size, context.rank, context.world_size, run.seed, start_step, run.iters
    )
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=cfg.data.num_workers,
        pin_memory=context.device.type == "cuda",
        generator=torch.Generator(),
    )


def optimisation_step(
    forward: Callable[..., EMORLOutput],
    parts: TrainingParts,
    images: torch.Tensor,
    cfg: ExperimentConfig,
    noise: GlobalBatchNoise,
    context: DistributedContext,
    *,
    wants_stop: bool,
    checkpoint_due: bool,
) -> StepOutcome:
    """One update at ``parts.step``: forward and backward, gradients averaged over ranks and clipped, then
    the Adam and GECO steps unless any rank saw a non-finite loss or gradient."""
    run, device, step = cfg.training, context.device, parts.step
    refinement_steps = refinement_steps_at(step, run.refinement_curriculum)
    lr = learning_rate(step, run.lr, run.warmup_steps, run.decay_rate, run.decay_steps)
    for group in parts.optimizer.param_groups:
        group["lr"] = lr

    parts.optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=run.precision == "bf16"):
        out = forward(
            images,
            refinement_steps=refinement_steps,
            geco=parts.geco,
            global_step=step,
            kl_beta=run.kl_beta,
            noise=noise,
            refinement_batch_size=cfg.model.refinement_batch_size,
        )
    out.total_loss.backward()
    out = out.detach()  # keep the values for logging, let the graph go before the next forward

    nll = out.nll.float()
    flags = torch.stack(
        [
            torch.isfinite(out.total_loss).float(),
            nll,
            torch.tensor(float(wants_stop), device=device),
            torch.tensor(float(checkpoint_due), device=device),
        ]
    )  # [4]: finite, nll, stop, checkpoint_due (summed over ranks)
    flags = average_gradients_and_flags(parts.params, flags, context)
    max_norm = run.clip_grad_norm if run.clip_grad_norm is not None else math.inf
    grad_norm = torch.nn.utils.clip_grad_norm_(parts.params, max_norm)
    finite_count, stop_count, due_count, grad_finite = torch.stack(
        [flags[0], flags[2], flags[3], torch.isfinite(grad_norm).float()]
    ).tolist()  # the step's one host sync
    step_flags = StepFlags(
        finite=finite_count == context.world_size and grad_finite == 1.0,
        stop=stop_count > 0,
        checkpoint_due=due_count > 0,
    )
    if step_flags.finite:
        parts.optimizer.step()
        if parts.geco is not None:
            parts.geco.update(flags[1] / context.world_size, step)
    parts.guard.record(step_flags.finite, step)
    return StepOutcome(out, nll, step_flags, grad_norm, lr, refinement_steps)


def _report(
    outcome: StepOutcome,
    window: MetricWindow,
    parts: TrainingParts,
    images: torch.Tensor,
    run: TrainingConfig,
    logger: Logger | None,
    bar: Any,
) -> dict[str, float] | None:
    """At log cadence, the window's metrics (every rank: TrainResult.metrics is per rank), logged by the
    main rank; at image cadence, the picture of the batch. None between logs."""
    step, metrics = parts.step, None
    if step % run.log_every == 0 or step == run.iters:
        metrics = window.flush(outcome, parts, run)
        if logger is not None:
            logger.log_metrics(metrics, step)
        if bar is not None:
            bar.set_postfix(loss=f"{metrics.get('train/total_loss', math.nan):.4g}")
    if logger is not None and (step % run.image_every == 0 or step == run.iters):
        for key, picture in training_images(images, outcome.out).items():
            logger.log_image(key, picture, step)
    return metrics


def _announce(
    cfg: ExperimentConfig,
    parts: TrainingParts,
    context: DistributedContext,
    resume_from: Path | None,
    logger: Logger | None,
) -> None:
    """The main rank says what it trains, and logs the config as params."""
    if not context.is_main:
        return
    resumed = f"resumed at step {parts.step} from {resume_from}" if resume_from else "from scratch"
    local_batch = local_batch_size(cfg.training.batch_size, context.world_size)
    print(
        f"EMORL: {sum(p.numel() for p in parts.params):,} parameters; world size {context.world_size}, "
        f"local batch {local_batch}, device {context.device}; {resumed}",
        file=sys.stderr,
    )
    if logger is not None:
        logger.log_params(flatten_config(cfg.to_dict()))


def _progress_bar(total: int, initial: int) -> Any:
    """A tqdm bar on an interactive terminal, else None (batch logs stay clean)."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True)


def _checkpoint(
    directory: Path, cfg: ExperimentConfig, parts: TrainingParts, context: DistributedContext, keep: int
) -> Path | None:
    """Rank 0 writes the checkpoint; the other ranks have nothing to add (their state is identical)."""
    if not context.is_main:
        return None
    assert_finite_state(parts.model, parts.geco)
    state = {
        "step": parts.step,
        "config": cfg.to_dict(),
        "model": parts.model.state_dict(),
        "optimizer": parts.optimizer.state_dict(),
        "geco": parts.geco.state_dict() if parts.geco is not None else None,
        "rng": rng_state(context.device),
        "nonfinite_steps": parts.guard.total,
        "world_size": context.world_size,
    }
    return save_checkpoint(directory, parts.step, state, keep)


def _step_metrics(
    window: torch.Tensor,
    window_steps: int,
    outcome: StepOutcome,
    parts: TrainingParts,
    kl_beta: float,
    images_per_s: float,
) -> dict[str, float]:
    """Plain-float metrics (the only place the loop reads device values back); loss, NLL and KL are
    means over the steps since the last log of this rank's share of the batch."""
    means = (window / max(window_steps, 1)).tolist()
    metrics = {
        "train/total_loss": means[0],
        "train/nll": means[1],
        "train/kl": means[2],
        "train/kl_beta": kl_beta,
        "train/lr": outcome.lr,
        "train/refinement_steps": float(outcome.refinement_steps),
        "train/grad_norm": float(outcome.grad_norm),
        "train/nonfinite_steps": float(parts.guard.total),
        "train/images_per_s": images_per_s,
    }
    for index, delta in enumerate(outcome.out.deltas.float().tolist()):
        metrics[f"train/delta_norm_{index}"] = delta
    geco = parts.geco
    if geco is not None:
        metrics["train/geco_beta"] = float(geco.beta)
        metrics["train/geco_weight"] = float(F.softplus(geco.beta.float()))
        metrics["train/geco_C_ema"] = float(geco.C_ema)
    return metrics
