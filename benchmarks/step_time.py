"""Seconds per EMORL training step (forward + backward + clip + Adam step) for the configs of
docs/training.md#recipes.

Each config runs in its own subprocess (clean peak-memory figures, no allocator state shared between
configs). After warm-up steps it reports the median over the timed steps, images/s and peak memory: on CPU
the growth of the process's maximum resident set size (getrusage) from just before the model is built, on
GPU ``torch.cuda.max_memory_allocated``. "CPU s/step" is the process CPU time per step (all threads): on a
shared machine it is the steadier figure (≈ threads × s/step when the cores are free). "GFLOP/step" counts
the matmul/convolution work of one step (torch.utils.flop_counter on the meta device): independent of load.

Two reference columns: the figures quoted in the model issue, and the unmodified reference implementation
(pemami4911/EfficientMORL @ 3a1dc4e, lib/ as published, no DDP) measured on this 2-core machine with the same
protocol (one process per config, 2 warm-up steps, median of 5 or 3 steps, three runs, median run shown):
486.7 / 158.3 / 1091.6 / 671.9 GFLOP per step, peak RSS 833 / 526 / 2461 / 1747 MiB.

    python benchmarks/step_time.py                       # every config, CPU (and GPU when present)
    python benchmarks/step_time.py --config clevr6       # one config
    python benchmarks/step_time.py --device cuda --bf16  # bf16 autocast on GPU
    python benchmarks/step_time.py --channels-last       # channels-last instead of NCHW
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import torch
from tabulate import tabulate
from torch.utils.flop_counter import FlopCounterMode

from emorl.config import GecoConfig, ModelConfig
from emorl.geco import GECO
from emorl.model import EMORL


@dataclass(frozen=True)
class BenchConfig:
    model: ModelConfig
    batch_size: int
    refinement_steps: int
    geco_target: float | None  # per-dim GECO target, None = GECO off
    reference_seconds: float  # the reference implementation as quoted in the model issue
    reference_here_seconds: float  # the reference implementation measured on this 2-core CPU (see above)


TETROMINOES = ModelConfig(
    K=4, z_size=32, decoder="small", likelihood="gaussian", log_scale=-1.2039728, input_size=(3, 35, 35)
)
CONFIGS = {
    "tetrominoes_i3": BenchConfig(TETROMINOES, 32, 3, -1.224, 2.27, 3.73),
    "tetrominoes_i0": BenchConfig(TETROMINOES, 32, 0, -1.224, 0.69, 1.27),
    "multi_dsprites": BenchConfig(
        ModelConfig(K=6, z_size=64, decoder="iodine", likelihood="gaussian", log_scale=-2.3025859),
        8,
        3,
        None,
        13.5,
        13.79,
    ),
    "clevr6": BenchConfig(
        ModelConfig(
            K=7, z_size=64, decoder="iodine", likelihood="gmm", log_scale=-2.3025859, input_size=(3, 96, 96)
        ),
        4,
        1,
        -2.206,
        4.98,
        8.52,
    ),
}
GECO_ACTIVE_STEP = 2000  # past the warm start, as in steady-state training


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def count_gflop(bench: BenchConfig) -> float:
    """Matmul/conv GFLOP of one training step (forward + backward), counted on the meta device."""
    with torch.device("meta"):
        model = EMORL(bench.model)
        images = torch.zeros(bench.batch_size, *bench.model.input_size)
    counter = FlopCounterMode(display=False)
    with counter:
        model(images, refinement_steps=bench.refinement_steps).total_loss.backward()
    return counter.get_total_flops() / 1e9


def measure(
    name: str, device: str, bf16: bool, channels_last: bool, warmup: int, steps: int, compile_model: bool
) -> dict:
    """Build the config's model and time ``steps`` training steps after ``warmup`` untimed ones."""
    bench = CONFIGS[name]
    torch.manual_seed(0)
    rss_before = max_rss_bytes()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    model = EMORL(bench.model).to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if compile_model else model
    optimizer = torch.optim.Adam(model.parameters(), lr=4e-4)
    num_pixels = math.prod(bench.model.input_size)
    geco = None
    if bench.geco_target is not None:
        geco = GECO(GecoConfig(reconstruction_target=bench.geco_target), num_pixels).to(device)
    images = torch.rand(bench.batch_size, *bench.model.input_size, device=device) * 2 - 1
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            out = step_model(
                images, refinement_steps=bench.refinement_steps, geco=geco, global_step=GECO_ACTIVE_STEP
            )
        out.total_loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)  # as the trainer and the reference do
        optimizer.step()
        if geco is not None:
            geco.update(out.nll.detach(), GECO_ACTIVE_STEP)

    def synchronise() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        train_step()
    synchronise()
    times, cpu_times = [], []
    for _ in range(steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        train_step()
        synchronise()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    seconds = statistics.median(times)
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else max_rss_bytes() - rss_before
    return {
        "config": name,
        "device": device + (" bf16" if bf16 else "") + (" channels-last" if channels_last else ""),
        "seconds": seconds,
        "cpu_seconds": statistics.median(cpu_times),
        "gflop": count_gflop(bench),
        "images_per_second": bench.batch_size / seconds,
        "peak_mib": peak / 2**20,
        "reference_seconds": bench.reference_seconds if device == "cpu" and not bf16 else None,
        "reference_here_seconds": bench.reference_here_seconds if device == "cpu" and not bf16 else None,
        "threads": torch.get_num_threads(),
    }


def run_in_subprocess(name: str, args: argparse.Namespace, device: str) -> dict:
    command = [sys.executable, __file__, "--config", name, "--device", device, "--json"]
    command += ["--warmup", str(args.warmup), "--steps", str(args.steps)]
    command += ["--bf16"] * args.bf16 + ["--compile"] * args.compile
    command.append("--channels-last" if args.channels_last else "--no-channels-last")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"benchmark {name} on {device} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    def compare(reference: float | None, seconds: float) -> list[str]:
        return ["", ""] if reference is None else [f"{reference:.2f}", f"{reference / seconds:.2f}x"]

    lines = []
    for row in rows:
        lines.append(
            [
                row["config"],
                row["device"],
                f"{row['seconds']:.3f}",
                f"{row['cpu_seconds']:.2f}",
                f"{row['gflop']:.0f}",
                f"{row['images_per_second']:.1f}",
                f"{row['peak_mib']:.0f}",
                *compare(row["reference_seconds"], row["seconds"]),
                *compare(row["reference_here_seconds"], row["seconds"]),
            ]
        )
    headers = ["config", "device", "s/step", "CPU s/step", "GFLOP/step", "images/s", "peak MiB"]
    headers += ["reference (issue)", "speed-up", "reference (here)", "speed-up"]
    return tabulate(lines, headers=headers)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", choices=sorted(CONFIGS), help="run one config (default: all)")
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast")
    parser.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="channels-last weights and activations (on a 2-core CPU NCHW is as fast or faster)",
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON line (used by the subprocesses)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no GPU visible to torch")
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    if args.json:
        row = measure(
            args.config, devices[0], args.bf16, args.channels_last, args.warmup, args.steps, args.compile
        )
        print(json.dumps(row))
        return
    names = [args.config] if args.config else list(CONFIGS)
    rows = [run_in_subprocess(name, args, device) for device in devices for name in names]
    print(f"torch {torch.__version__}, {rows[0]['threads']} CPU threads, median of {args.steps} steps")
    print(table(rows))


if __name__ == "__main__":
    main()
