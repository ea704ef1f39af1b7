"""Model complexity: parameters, FLOPs per clip and CPU latency, for one model or a table of fusions."""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cfnsr.models.build import build_model


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


def complexity_table(backbone_cfg: DictConfig, fusion_cfgs: Mapping[str, DictConfig],
                     clip: tuple[int, int, int, int], latency: bool = False, num_classes: int = 8,
                     repeats: int = 3) -> list[dict[str, Any]]:
    """One row per fusion: name, stage, params, GFLOPs per clip, latency (ms or None), the paper's numbers.

    clip: (frames, size, n_mfcc, mfcc_len), e.g. (30, 224, 13, 212) for the paper.
    Params and FLOPs come from a model built on the meta device (no memory, no compute); latency
    needs real weights and a real forward on the CPU.
    """
    frames, size, n_mfcc, mfcc_len = clip
    video_shape, audio_shape = (3, frames, size, size), (n_mfcc, mfcc_len)
    rows = []
    for name, fusion_cfg in fusion_cfgs.items():
        with torch.device("meta"):
            model = build_model(backbone_cfg, fusion_cfg, num_classes)
        row = {
            "name": name,
            "stage": fusion_cfg.stage,
            "params": count_params(model),
            "gflops": gflops_per_clip(model, video_shape, audio_shape),
            "latency_ms": None,
            "paper_accuracy": fusion_cfg.paper.accuracy,
            "paper_params": fusion_cfg.paper.params,
        }
        if latency:
            cpu_model = build_model(backbone_cfg, fusion_cfg, num_classes)
            row["latency_ms"] = cpu_latency_ms(cpu_model, video_shape, audio_shape, repeats)
        rows.append(row)
    return rows


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table of ``complexity_table`` rows."""
    lines = ["| Fusion | Stage | Params | GFLOPs/clip | CPU ms/clip | Paper params | Paper acc. |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        latency = "–" if r["latency_ms"] is None else f"{r['latency_ms']:.1f}"
        lines.append(f"| {r['name']} | {r['stage']} | {r['params']:,} | {r['gflops']:.3f} | {latency} "
                     f"| {r['paper_params'] or '–'} | {r['paper_accuracy'] or '–'} |")
    return "\n".join(lines)


def _fusion_configs(cfg: DictConfig) -> dict[str, DictConfig]:
    """The chosen fusion config, or every ``conf/fusion/*.yaml`` in the paper table's order."""
    if cfg.get("fusion"):
        return {cfg.fusion.name: cfg.fusion}
    from pathlib import Path

    from omegaconf import OmegaConf

    from cfnsr.report.build import fusion_sort_key

    conf_dir = Path(__file__).resolve().parents[1] / "conf" / "fusion"
    names = sorted((p.stem for p in conf_dir.glob("*.yaml")), key=fusion_sort_key)
    return {n: OmegaConf.load(conf_dir / f"{n}.yaml") for n in names}


def main() -> None:
    import hydra

    from cfnsr.sweep_dirs import register

    register()

    @hydra.main(version_base="1.3", config_path="../conf", config_name="complexity")
    def _run(cfg: DictConfig) -> None:
        from cfnsr.experiment import clip_shapes

        (_, frames, size, _), (n_mfcc, length) = clip_shapes(cfg)
        print(f"backbone={cfg.backbone.name}, clip: video (3, {frames}, {size}, {size}), audio ({n_mfcc}, {length})")
        rows = complexity_table(cfg.backbone, _fusion_configs(cfg), (frames, size, n_mfcc, length),
                                latency=cfg.latency, repeats=cfg.repeats)
        print(format_table(rows))

    _run()


if __name__ == "__main__":
    main()
