"""cfnsr.builders.checkpoint_config.evaluation_config: what evaluate takes from a checkpoint's saved config."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf
from tests_helpers import compose_train

from cfnsr.builders.checkpoint_config import evaluation_config


def test_an_evaluation_never_inherits_permission_to_miss_clips(tiny_data_dir: Path, tmp_path: Path):
    """A run trained with allow_missing_clips=true evaluated on a short split reported it as a whole result (its
    split size was the shortened dataset's); evaluate now covers the whole split or stops naming the clips."""
    saved = OmegaConf.to_container(compose_train(["data.allow_missing_clips=true"], tiny_data_dir, tmp_path),
                                   resolve=True)
    assert saved["data"]["allow_missing_clips"] is True
    run = evaluation_config(saved, {"data": {}, "paths": {"data_dir": str(tiny_data_dir)}}, "test.ckpt")
    assert run["data"]["allow_missing_clips"] is False
    assert run["data"]["batch_size"] == saved["data"]["batch_size"]  # the recipe is the checkpoint's
