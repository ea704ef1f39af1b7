"""The preprocessing settings schema (cfnsr/data/settings.py): validation and the cache's settings hash."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf
from tests_helpers import compose_train

from cfnsr.data.settings import PreprocessSettings, settings_from_config

# Hashes computed on commit 89d6ea0, before the schema moved out of cfnsr/data/preprocess.py: a cache built then
# must still match, so that moving (or reformatting) the schema never forces a rebuild.
DEFAULT_HASH_BEFORE_MOVE = "fe33f4755a4cadb4"
PUBLIC_CODE_HASH_BEFORE_MOVE = "6c5ac0924a5ad984"


def test_default_settings_hash_is_unchanged():
    assert PreprocessSettings().hash == DEFAULT_HASH_BEFORE_MOVE


def test_public_code_settings_hash_is_unchanged():
    s = PreprocessSettings(crop_margin=0.0, squash_before_crop=True, channel_order="bgr")
    assert s.hash == PUBLIC_CODE_HASH_BEFORE_MOVE


def test_hydra_numbers_hash_like_python_numbers():
    # Hydra may hand 224.0 for 224 or 0 for 0.0: the same settings, the same hash.
    assert PreprocessSettings(size=224.0, audio_offset=1).hash == PreprocessSettings(audio_offset=1.0).hash


def test_paper_config_gives_the_default_settings(tmp_path):
    cfg = compose_train(["data.frames=30", "data.size=224"], data_dir=tmp_path, output_dir=tmp_path / "out")
    settings = settings_from_config(cfg.preprocess)
    assert settings.hash == DEFAULT_HASH_BEFORE_MOVE
    assert settings.input_shapes() == ((3, 30, 224, 224), (13, 212))


def test_run_options_are_not_settings():
    cfg = OmegaConf.create({"frames": 8, "size": 32, "workers": 7, "force": True, "verify": "full"})
    assert settings_from_config(cfg) == PreprocessSettings(frames=8, size=32)


@pytest.mark.parametrize(("bad", "named"), [({"frames": 2.5}, "frames"), ({"channel_order": "hsv"}, "channel_order"),
                                            ({"size": 0}, "size"), ({"audio_duration": 0.0}, "audio_duration")])
def test_invalid_settings_raise_naming_the_setting(bad, named):
    with pytest.raises(ValueError, match=named):
        PreprocessSettings(**bad)
