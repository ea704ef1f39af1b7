"""The complexity job: parameters, FLOPs per clip and CPU latency of one fusion or of every fusion, as a table.

``python complexity.py [backbone=paper] [fusion=cfnsr] [latency=true]`` (the measurements: ``cfnsr.models.complexity``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from omegaconf import DictConfig

from cfnsr.data.settings import settings_from_config
from cfnsr.models.build import build_model
from cfnsr.models.complexity import count_params, cpu_latency_ms, gflops_per_clip


def complexity_table(backbone_cfg: DictConfig, fusion_cfgs: Mapping[str, DictConfig],
                     clip: tuple[int, int, int, int], latency: bool = False, num_classes: int = 8,
                     repeats: int = 3) -> list[dict[str, Any]]:
    """One row per fusion: name, stage, params, GFLOPs per clip, latency (ms or None), the paper's numbers (None
    for a fusion whose YAML has no ``paper:`` entry).

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
        paper = fusion_cfg.get("paper") or {}
        row = {
            "name": name,
            "stage": fusion_cfg.stage,
            "params": count_params(model),
            "gflops": gflops_per_clip(model, video_shape, audio_shape),
            "latency_ms": None,
            "paper_accuracy": paper.get("accuracy"),
            "paper_params": paper.get("params"),
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


def _fusion_configs(cfg: DictConfig, searchpath: Sequence[str] = ()) -> dict[str, DictConfig]:
    """The chosen fusion config, or every ``fusion/*.yaml`` on the search path (``conf/`` and ``searchpath``), in
    table order."""
    if cfg.get("fusion"):
        return {cfg.fusion.name: cfg.fusion}
    from cfnsr.models.fusion.registry import fusion_registry

    return {name: facts.config for name, facts in fusion_registry(searchpath).items()}


def run(cfg: DictConfig, searchpath: Sequence[str] = ()) -> None:
    """Print the clip shape and the complexity table for ``cfg`` (``conf/complexity.yaml``); ``searchpath``: extra
    config folders (``hydra.searchpath=[...]``) whose fusions are measured too."""
    (_, frames, size, _), (n_mfcc, length) = settings_from_config(cfg.preprocess).input_shapes()
    print(f"backbone={cfg.backbone.name}, clip: video (3, {frames}, {size}, {size}), audio ({n_mfcc}, {length})"
          + ("" if cfg.latency else "; CPU latency not measured (latency=true measures it)"))
    fusions = _fusion_configs(cfg, searchpath)
    rows = complexity_table(cfg.backbone, fusions, (frames, size, n_mfcc, length), latency=cfg.latency,
                            repeats=cfg.repeats)
    print(format_table(rows))
