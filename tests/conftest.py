"""Shared fixtures: a small synthetic corpus made once per test session, and composed run configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
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


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding the tiny synthetic corpus and its cache, prepared once for the session."""
    from cfnsr.data.prepare import prepare_corpus
    from cfnsr.experiment import preprocess_settings

    data_dir = tmp_path_factory.mktemp("data")
    cfg = compose_train([], data_dir=data_dir, output_dir=data_dir / "unused")
    prepare_corpus(cfg.data.root, cfg.data.cache_dir, preprocess_settings(cfg), generate=dict(cfg.data.generate),
                   workers=2, verbose=False)
    return data_dir


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
