"""Training-step benchmark: time, peak memory and achieved FLOP/s of one optimiser step, per execution variant.

A step is forward + ``model.loss`` + backward + Adam step on random inputs of the model's shapes (video float
``(B, 3, T, S, S)``, MFCC ``(B, 13, 212)``). The variants run side by side in one process, each on a fresh copy of the
same initial model, with the same inputs; each is built and warmed up alone (its peak memory and, for ``compile``,
its compile time are measured then), and the timed steps go round-robin over the variants so that a change in machine
load affects them all alike. The median step time is reported.

* ``fp32``: the baseline;
* ``channels_last``: model and video in ``torch.channels_last_3d``;
* ``bf16``: forward and loss under ``torch.autocast(<device>, torch.bfloat16)`` (CPU too, where PyTorch supports it);
* ``compile``: ``torch.compile(model)`` (default mode); its compile time is the first warm-up step, reported apart.
  On by default with CUDA only: on this 2-core CPU compiling the tiny CFN-SR model's step takes ~2.5 min
  (``--compile`` forces it, ``--no-compile`` skips it).

FLOPs: one fp32 training step (forward + loss + backward) is counted once with ``torch.utils.flop_counter``
(convolutions, matmuls, attention; 2 FLOPs per multiply-add; elementwise ops, norms and the optimiser are not counted)
and used for every variant, since they all do the same maths. With a GPU, the achieved rate is also given as a
fraction of the device's dense peak from its spec sheet (bf16 tensor cores for ``bf16``; TF32 tensor cores for the
fp32 variants when cuDNN/cuBLAS may use TF32, plain fp32 otherwise).

Peak memory: CUDA: ``torch.cuda.max_memory_allocated`` (reset before each variant). CPU: growth of the process's peak
resident set (VmHWM in /proc/self/status, reset through /proc/self/clear_refs before each variant) over its resident
set at the variant's start, over its build and warm-up steps; this covers the variant's model copy, gradients, Adam
state and activations (and, for ``compile``, the compiler's own memory). It is coarse: a few MB of heap noise.

Usage: ``python bench/train_step.py [--backbone tiny] [--fusion cfnsr] [--batch 2] [--frames 16] [--size 64]
[--steps 10] [--device cpu|cuda] [--compile | --no-compile]``
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import ctypes
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from cfnsr.models.build import build_model

CONF = Path(__file__).resolve().parents[1] / "conf"
VARIANTS = ("fp32", "channels_last", "bf16", "compile")
N_MFCC, MFCC_LEN, NUM_CLASSES = 13, 212, 8

# Dense (no sparsity) peak TFLOP/s from NVIDIA's spec sheets: (bf16 tensor core, tf32 tensor core, fp32 non-tensor).
# Matched against torch.cuda.get_device_name() in this order (so "H100 PCIe" is tried before plain "H100").
PEAK_TFLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H200 NVL", {"bf16": 835.0, "tf32": 417.5, "fp32": 60.0}),
    ("H200", {"bf16": 989.5, "tf32": 494.7, "fp32": 66.9}),
    ("H100 PCIe", {"bf16": 756.5, "tf32": 378.0, "fp32": 51.2}),
    ("H100 NVL", {"bf16": 835.0, "tf32": 417.5, "fp32": 60.0}),
    ("H100", {"bf16": 989.5, "tf32": 494.7, "fp32": 66.9}),  # SXM
    ("A100", {"bf16": 312.0, "tf32": 156.0, "fp32": 19.5}),
)


# ---------------------------------------------------------------------------------------------------- memory
class PeakMemory:
    """Peak memory of a block of work: CUDA allocator peak, or growth of the process's peak RSS on the CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.method = ""
        self.peak_bytes = 0

    def __enter__(self) -> PeakMemory:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
            self.method = "torch.cuda.max_memory_allocated - allocated at start"
        else:
            self.resettable = _reset_peak_rss()
            self.start = _proc_status_kb("VmRSS") * 1024
            self.method = ("peak RSS growth (VmHWM reset via /proc/self/clear_refs)" if self.resettable else
                           "peak RSS growth (VmHWM could not be reset: lifetime peak, unreliable after the first variant)")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device) - self.start
        else:
            self.peak_bytes = max(0, _proc_status_kb("VmHWM") * 1024 - self.start)


def _proc_status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field} (not Linux?)")


def _reset_peak_rss() -> bool:
    """Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).

    Free heap memory is first given back to the OS (glibc ``malloc_trim``); otherwise a variant could reuse pages an
    earlier variant freed, and its tensors would not show up as RSS growth.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------------- the step
def load_model(backbone: str, fusion: str) -> nn.Module:
    return build_model(OmegaConf.load(CONF / "backbone" / f"{backbone}.yaml"),
                       OmegaConf.load(CONF / "fusion" / f"{fusion}.yaml"), NUM_CLASSES)


def make_inputs(batch: int, frames: int, size: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    video = torch.randn(batch, 3, frames, size, size, generator=g)
    audio = torch.randn(batch, N_MFCC, MFCC_LEN, generator=g)
    target = torch.randint(0, NUM_CLASSES, (batch,), generator=g)
    return video.to(device), audio.to(device), target.to(device)


def make_step(base: nn.Module, variant: str, video: Tensor, audio: Tensor, target: Tensor,
              device: torch.device) -> Callable[[], Tensor]:
    """A closure doing one training step of ``variant`` on a fresh copy of ``base`` with its own Adam."""
    model = copy.deepcopy(base).to(device).train()
    if variant == "channels_last":
        model = model.to(memory_format=torch.channels_last_3d)
        video = video.contiguous(memory_format=torch.channels_last_3d)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    forward = torch.compile(model) if variant == "compile" else model
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if variant == "bf16" \
        else contextlib.nullcontext

    def step() -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = model.loss(forward(video, audio), target)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def count_step_flops(base: nn.Module, video: Tensor, audio: Tensor, target: Tensor, device: torch.device) -> int:
    """FLOPs of one fp32 forward + loss + backward (the optimiser's elementwise work is not counted)."""
    model = copy.deepcopy(base).to(device).train()
    counter = FlopCounterMode(display=False)
    with counter:
        model.loss(model(video, audio), target).backward()
    return counter.get_total_flops()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_step(step: Callable[[], Tensor], device: torch.device) -> float:
    start = time.perf_counter()
    step()
    _sync(device)
    return time.perf_counter() - start


def peak_tflops(device: torch.device) -> dict[str, float] | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peaks for key, peaks in PEAK_TFLOPS if key in name), None)


def _peak_kind(variant: str) -> str:
    if variant == "bf16":
        return "bf16"
    # cuDNN convolutions run in TF32 by default; matmuls only if allowed
    return "tf32" if torch.backends.cudnn.allow_tf32 else "fp32"


def _variants(args: argparse.Namespace) -> Iterator[str]:
    compile_on = args.compile if args.compile is not None else args.device == "cuda"
    for v in args.variants:
        if v == "compile" and not compile_on:
            continue
        if v == "bf16" and args.device == "cpu" and not _cpu_bf16_ok():
            print("bf16: skipped, this CPU build has no bf16 autocast", file=sys.stderr)
            continue
        yield v


def _cpu_bf16_ok() -> bool:
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.ones(2, 2) @ torch.ones(2, 2)
        return True
    except RuntimeError:
        return False


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One row per variant: ms/step, clips/s, ratio vs fp32, peak memory, TFLOP/s (and fraction of peak on GPU)."""
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    torch.manual_seed(args.seed)
    base = load_model(args.backbone, args.fusion)
    video, audio, target = make_inputs(args.batch, args.frames, args.size, device)
    flops = count_step_flops(base, video, audio, target, device)
    peaks = peak_tflops(device)
    # Build and warm up each variant alone, so that its peak memory is its own (compilation happens here too).
    prepared: list[tuple[str, Callable[[], Tensor], float, PeakMemory]] = []
    for variant in _variants(args):
        with PeakMemory(device) as mem:
            step = make_step(base, variant, video, audio, target, device)
            warm = [timed_step(step, device) for _ in range(max(args.warmup, 1))]
        prepared.append((variant, step, warm[0], mem))
        if args.verbose:
            print(f"{variant}: built, first step {warm[0]:.2f} s", file=sys.stderr)
    # Timed steps go round-robin over the variants, so a change in machine load hits them all alike.
    times: dict[str, list[float]] = {v: [] for v, *_ in prepared}
    for _ in range(args.steps):
        for variant, step, _first, _mem in prepared:
            times[variant].append(timed_step(step, device))
    rows: list[dict[str, Any]] = []
    for variant, _step, first, mem in prepared:
        seconds = statistics.median(times[variant])
        row = {"variant": variant, "ms_per_step": 1000 * seconds,
               "ms_per_step_mean": 1000 * statistics.mean(times[variant]), "clips_per_s": args.batch / seconds,
               "first_step_s": first, "peak_mem_mb": mem.peak_bytes / 2**20, "mem_method": mem.method,
               "gflop_per_step": flops / 1e9, "tflops": flops / seconds / 1e12}
        if peaks is not None:
            kind = _peak_kind(variant)
            row["peak_kind"], row["peak_fraction"] = kind, row["tflops"] / peaks[kind]
        rows.append(row)
    del prepared
    if rows:
        ref = rows[0]["ms_per_step"] if rows[0]["variant"] == "fp32" else None
        for r in rows:
            r["speedup"] = ref / r["ms_per_step"] if ref else None
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    gpu = any("peak_fraction" in r for r in rows)
    head = f"{'variant':14s} {'ms/step':>9s} {'clips/s':>9s} {'vs fp32':>8s} {'peak MB':>9s} {'TFLOP/s':>9s}"
    head += f" {'of peak':>13s}" if gpu else ""
    head += f" {'1st step s':>10s}"
    lines = [head]
    for r in rows:
        ratio = f"{r['speedup']:7.2f}x" if r["speedup"] else f"{'-':>8s}"
        line = (f"{r['variant']:14s} {r['ms_per_step']:9.1f} {r['clips_per_s']:9.2f} {ratio} {r['peak_mem_mb']:9.1f}"
                f" {r['tflops']:9.4f}")
        if gpu:
            line += f" {100 * r['peak_fraction']:6.2f}% {r['peak_kind']:>5s}"
        lines.append(line + f" {r['first_step_s']:10.2f}")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backbone", default="tiny", help="conf/backbone/<name>.yaml (tiny | paper)")
    p.add_argument("--fusion", default="cfnsr", help="conf/fusion/<name>.yaml")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--steps", type=int, default=10, help="timed steps per variant (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per variant first (>= 1)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda"))
    p.add_argument("--variants", type=lambda s: [v for v in s.split(",") if v], default=list(VARIANTS),
                   help=f"comma-separated subset of {','.join(VARIANTS)}; fp32 first gives the ratios")
    p.add_argument("--compile", dest="compile", action=argparse.BooleanOptionalAction, default=None,
                   help="run the torch.compile variant (default: on CUDA only; compiling takes minutes on this CPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads of the main process (default: torch's choice, one per core)")
    p.add_argument("--quiet", dest="verbose", action="store_false")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}: choose from {VARIANTS}")
    rows = run(args)
    dev = torch.cuda.get_device_name() if args.device == "cuda" else f"cpu ({os.cpu_count()} cores)"
    print(f"train-step bench on {dev}: backbone {args.backbone}, fusion {args.fusion}, batch {args.batch}, "
          f"video {args.frames}x{args.size}x{args.size}, {args.steps} timed steps (median), torch threads "
          f"{torch.get_num_threads()}")
    if rows:
        print(f"one training step = {rows[0]['gflop_per_step']:.3f} GFLOP (FlopCounterMode, fp32, fwd+loss+bwd); "
              f"memory: {rows[0]['mem_method']}")
        if any("peak_fraction" in r for r in rows):
            print("'of peak': achieved / dense spec-sheet peak of this GPU (bf16, or TF32 for fp32 variants)")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
