"""Helpers shared by the end-to-end tests (imported by name: tests/ is on sys.path under pytest)."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from conftest import CONF_DIR


def compose_eval(overrides: list[str], output_dir: Path) -> DictConfig:
    """The config ``python evaluate.py <overrides>`` would get, writing to ``output_dir``."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"paths.output_dir={output_dir}", "trainer.enable_progress_bar=false",
                                             *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg
