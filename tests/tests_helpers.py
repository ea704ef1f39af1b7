"""Helpers shared by the end-to-end tests (imported by name: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

# A corpus small enough to make and preprocess in ~20 s: 6 actors, 3 folds of 2 actors, 8 frames of 32x32.
TINY_FOLDS = "folds.test_actors=[[1,2],[3,4],[5,6]]"
TINY_DATA = [
    "data.generate.actors=6", "data.generate.width=160", "data.generate.height=90", "data.generate.fps=10",
    "data.generate.duration=3.1", "data.frames=8", "data.size=32",
]


def compose_train(overrides: list[str], data_dir: Path, output_dir: Path, config_name: str = "train") -> DictConfig:
    """The config ``python train.py <overrides>`` would get, on the tiny corpus, writing to ``output_dir``."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name, overrides=[
            TINY_FOLDS, *TINY_DATA, f"paths.data_dir={data_dir}", f"paths.output_dir={output_dir}",
            "trainer.enable_progress_bar=false", "preprocess.workers=0", *overrides,
        ])
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def compose_eval(overrides: list[str], output_dir: Path) -> DictConfig:
    """The config ``python evaluate.py <overrides>`` would get, writing to ``output_dir``."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"paths.output_dir={output_dir}", "trainer.enable_progress_bar=false",
                                             *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg
