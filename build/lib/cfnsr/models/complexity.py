"""Model complexity measurements: parameters, forward FLOPs per clip, CPU latency (the complexity job's table:
``cfnsr.tasks.complexity``)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all of them by default, as the papers count them; buffers excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _example_inputs(model: nn.Module, video_shape: Sequence[int],
                    audio_shape: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """One clip (batch 1) on the model's device: video (1, 3, T, H, W), audio (1, n_mfcc, L)."""
    device = next(model.parameters()).device
    return torch.zeros(1, *video_shape, device=device), torch.zeros(1, *audio_shape, device=device)


def gflops_per_clip(model: nn.Module, video_shape: Sequence[int], audio_shape: Sequence[int]) -> float:
    """Forward GFLOPs (2 x multiply-adds) for one clip in eval mode.

    video_shape: (3, T, H, W); audio_shape: (n_mfcc, L). A model on the ``meta`` device is counted
    from shapes alone, without computing anything. Convs, linears, matmuls and attention are counted;
    elementwise ops, pooling, normalisation and FFTs are not.
    """
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*_example_inputs(model, video_shape, audio_shape))
    model.train(was_training)
    return counter.get_total_flops() / 1e9


def cpu_latency_ms(model: nn.Module, video_shape: Sequence[int], audio_shape: Sequence[int],
                   repeats: int = 5) -> float:
    """Median wall time in ms of a batch-1 eval forward on the CPU, after one warm-up run."""
    was_training = model.training
    model.eval()
    inputs = _example_inputs(model, video_shape, audio_shape)
    times = []
    with torch.inference_mode():
        model(*inputs)
        for _ in range(repeats):
            start = time.perf_counter()
            model(*inputs)
            times.append(time.perf_counter() - start)
    model.train(was_training)
    return 1000 * statistics.median(times)
