"""Shared fixtures for the model tests: the fusion configs on the search path, the backbones, a model factory."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from omegaconf import DictConfig
from tests_helpers import fusions, load_conf

from cfnsr.models.build import build_model
from cfnsr.models.fusion.base import FusionModel

# A small clip for the tiny backbones: video (B, 3, T, H, W), audio (B, n_mfcc, L).
TINY_VIDEO = (2, 3, 8, 32, 32)
TINY_AUDIO = (2, 13, 212)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Any test taking ``fusion_name`` runs once per fusion YAML on the search path (conf/ and
    CFNSR_TEST_SEARCHPATH), so a new fusion is covered without editing any test."""
    named = any("fusion_name" in str(m.args[0]) for m in metafunc.definition.iter_markers("parametrize"))
    if "fusion_name" in metafunc.fixturenames and not named:
        metafunc.parametrize("fusion_name", list(fusions()))


@pytest.fixture
def conf() -> Callable[..., DictConfig]:
    """load_conf, for tests: conf(group, name, **overrides)."""
    return load_conf


@pytest.fixture
def fusion_names() -> list[str]:
    """The names of all fusion configs on the search path."""
    return list(fusions())


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
