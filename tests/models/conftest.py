"""Shared fixtures for the model tests: the shipped backbone and fusion configs, and a model factory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from cfnsr.models.build import build_model
from cfnsr.models.fusion.base import FusionModel

CONF = Path(__file__).resolve().parents[2] / "conf"
FUSION_NAMES = sorted(p.stem for p in (CONF / "fusion").glob("*.yaml"))

# A small clip for the tiny backbones: video (B, 3, T, H, W), audio (B, n_mfcc, L).
TINY_VIDEO = (2, 3, 8, 32, 32)
TINY_AUDIO = (2, 13, 212)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Any test taking ``fusion_name`` runs once per shipped fusion config."""
    if "fusion_name" in metafunc.fixturenames:
        metafunc.parametrize("fusion_name", FUSION_NAMES)


def load_conf(group: str, name: str, **overrides: object) -> DictConfig:
    """conf/<group>/<name>.yaml, with dotted-key overrides such as ``model.beta=0``."""
    cfg = OmegaConf.load(CONF / group / f"{name}.yaml")
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value)
    return cfg


@pytest.fixture
def conf() -> Callable[..., DictConfig]:
    """load_conf, for tests: conf(group, name, **overrides)."""
    return load_conf


@pytest.fixture
def fusion_names() -> list[str]:
    """The names of all shipped fusion configs."""
    return FUSION_NAMES


@pytest.fixture
def build() -> Callable[..., FusionModel]:
    """build(fusion, backbone="tiny", seed=0, meta=False, **model_overrides) -> FusionModel."""

    def _build(fusion: str, backbone: str = "tiny", seed: int = 0, meta: bool = False,
               **model_overrides: object) -> FusionModel:
        fusion_cfg = load_conf("fusion", fusion, **{f"model.{k}": v for k, v in model_overrides.items()})
        torch.manual_seed(seed)
        with torch.device("meta" if meta else "cpu"):
            return build_model(load_conf("backbone", backbone), fusion_cfg, num_classes=8)

    return _build


@pytest.fixture
def tiny_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed (video, audio) pair of tiny-size inputs."""
    g = torch.Generator().manual_seed(1)
    return torch.randn(TINY_VIDEO, generator=g), torch.randn(TINY_AUDIO, generator=g)
