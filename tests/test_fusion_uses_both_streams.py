"""On the synthetic corpus every fused model beats both unimodal ones (real training, tiny backbones).

The corpus hides some emotion pairs from the face and others from the voice, so a model above both unimodal
scores must be using both streams. The fused models start from the unimodal runs' checkpoints, found by
``model.init.from_runs``: the paper's two-stage recipe, end to end.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests_helpers import compose_train

from cfnsr.tasks.train import train

pytestmark = pytest.mark.slow
FUSIONS = ["averaging", "multiplicative", "multiplication", "concat_fc", "mcbp", "mmtm", "msaf", "cfnsr"]
COMMON = ["protocol=paper", "fold=1", "trainer.max_epochs=6", "complexity=false", "logger=csv"]


def _war(fusion: str, data_dir: Path, out: Path, *extra: str) -> float:
    return train(compose_train([f"fusion={fusion}", *COMMON, *extra], data_dir, out / fusion))["test"]["war"]


@pytest.fixture(scope="module")
def stage1(tiny_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    out = tmp_path_factory.mktemp("stage1")
    return out, {f: _war(f, tiny_data_dir, out) for f in ("video_only", "audio_only")}


@pytest.mark.parametrize("fusion", FUSIONS)
def test_fused_model_beats_both_unimodal_models(fusion: str, stage1: tuple[Path, dict[str, float]],
                                                tiny_data_dir: Path, tmp_path: Path):
    runs, unimodal = stage1
    fused = _war(fusion, tiny_data_dir, tmp_path, f"model.init.from_runs={runs}")
    assert fused > max(unimodal.values()), f"{fusion}: {fused:.3f} vs unimodal {unimodal}"
