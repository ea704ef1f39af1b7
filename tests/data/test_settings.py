"""The preprocessing settings schema (cfnsr/data/settings.py): validation and the cache's settings hash."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from tests_helpers import compose_train

from cfnsr.data import cache
from cfnsr.data.cache import CacheError
from cfnsr.data.settings import (
    PreprocessSettings,
    check_cache,
    detector_entries,
    detector_free_match,
    settings_from_config,
)

# Hashes computed on commit 89d6ea0, before the schema moved out of cfnsr/data/preprocess.py: a cache built then
# must still match, so that moving (or reformatting) the schema never forces a rebuild. Those caches were built with
# the Haar detector as the fallback (face_fallback: haar, no longer available); BlazeFace replaced it, which changes
# the hash of the default settings, and such a cache is still served when none of its entries used the detector
# (test_detector_free_*): the rest of the settings must hash as before.
DEFAULT_HASH_BEFORE_MOVE = "fe33f4755a4cadb4"
PUBLIC_CODE_HASH_BEFORE_MOVE = "6c5ac0924a5ad984"


def _with_haar(settings: PreprocessSettings) -> str:
    """The hash ``settings`` had when the detector was Haar (what settings.json of a cache built then records)."""
    return cache.settings_hash({**settings.to_dict(), "face_fallback": "haar"})


def test_default_settings_hash_is_unchanged():
    assert _with_haar(PreprocessSettings()) == DEFAULT_HASH_BEFORE_MOVE
    assert PreprocessSettings().face_fallback == "blazeface"
    assert PreprocessSettings().hash != DEFAULT_HASH_BEFORE_MOVE  # another detector, another cache


def test_public_code_settings_hash_is_unchanged():
    s = PreprocessSettings(crop_margin=0.0, squash_before_crop=True, channel_order="bgr")
    assert _with_haar(s) == PUBLIC_CODE_HASH_BEFORE_MOVE


def test_hydra_numbers_hash_like_python_numbers():
    # Hydra may hand 224.0 for 224 or 0 for 0.0: the same settings, the same hash.
    assert PreprocessSettings(size=224.0, audio_offset=1).hash == PreprocessSettings(audio_offset=1.0).hash


def test_paper_config_gives_the_default_settings(tmp_path):
    cfg = compose_train(["data.frames=30", "data.size=224"], data_dir=tmp_path, output_dir=tmp_path / "out")
    settings = settings_from_config(cfg.preprocess)
    assert settings == PreprocessSettings()
    assert _with_haar(settings) == DEFAULT_HASH_BEFORE_MOVE
    assert settings.input_shapes() == ((3, 30, 224, 224), (13, 212))


def test_run_options_are_not_settings():
    cfg = OmegaConf.create({"frames": 8, "size": 32, "workers": 7, "force": True, "verify": "full"})
    assert settings_from_config(cfg) == PreprocessSettings(frames=8, size=32)


@pytest.mark.parametrize(("bad", "named"), [({"frames": 2.5}, "frames"), ({"channel_order": "hsv"}, "channel_order"),
                                            ({"size": 0}, "size"), ({"audio_duration": 0.0}, "audio_duration"),
                                            ({"face_fallback": "dlib"}, "face_fallback"),
                                            ({"face_fallback": "haar"}, "face_fallback")])
def test_invalid_settings_raise_naming_the_setting(bad, named):
    with pytest.raises(ValueError, match=named):
        PreprocessSettings(**bad)


# ----------------------------------------------------------------------------- a cache built with the Haar detector

def _cache(path: Path, settings: PreprocessSettings, sources: list[str], detector: str | None = None) -> Path:
    """A cache stamped with ``settings`` (face_fallback replaced by ``detector`` if given: a cache built with the
    Haar detector) holding one entry per face_source in ``sources``."""
    cache.write_settings(path, {**settings.to_dict(), **({"face_fallback": detector} if detector else {})})
    t, s = settings.frames, settings.size
    (_, l_mfcc) = settings.input_shapes()[1]
    for k, source in enumerate(sources):
        stem = f"01-01-0{k + 1}-01-01-01-01"
        meta = {"stem": stem, "actor": 1, "label": k, "face_source": source, "source": f"Actor_01/{stem}.mp4"}
        cache.write_entry(path, stem, np.zeros((t, s, s, 3), np.uint8),
                          np.zeros((settings.n_mfcc, l_mfcc), np.float32), meta,
                          audio=np.zeros(int(settings.audio_duration * settings.sample_rate), np.int16))
    return path


def test_detector_free_cache_built_with_haar_is_served_to_the_blazeface_default(tmp_path: Path):
    blaze = PreprocessSettings(frames=4, size=16)
    only_landmarks = _cache(tmp_path / "a", blaze, ["landmarks", "landmarks"], detector="haar")
    check_cache(only_landmarks, blaze)  # no entry used the detector: the same crops either way
    assert detector_free_match(only_landmarks, blaze)
    # ... but not when anything else differs, nor to face_fallback=none (that changes which clips exist)
    with pytest.raises(CacheError, match="size: cache 16, requested 32"):
        check_cache(only_landmarks, PreprocessSettings(frames=4, size=32))
    with pytest.raises(CacheError, match="face_fallback: cache 'haar', requested 'none'"):
        check_cache(only_landmarks, PreprocessSettings(frames=4, size=16, face_fallback="none"))


@pytest.mark.parametrize("source", ["detector", "center"])
def test_a_cache_whose_entries_used_the_haar_detector_is_refused(tmp_path: Path, source: str):
    cache_dir = _cache(tmp_path / "c", PreprocessSettings(frames=4, size=16), ["landmarks", source], detector="haar")
    assert detector_entries(cache_dir) == ["01-01-02-01-01-01-01"]
    with pytest.raises(CacheError, match=r"(?s)face_fallback: cache 'haar', requested 'blazeface'.*force=true"):
        check_cache(cache_dir, PreprocessSettings(frames=4, size=16))


def test_face_fallback_none_refuses_entries_the_haar_detector_cropped(tmp_path: Path):
    # face_fallback=none does not name the detector used for landmark_mismatch=detector clips: the entries do
    none = PreprocessSettings(frames=4, size=16, face_fallback="none")
    old = _cache(tmp_path / "old", none, ["landmarks", "detector"])  # no face_detector recorded: built with Haar
    with pytest.raises(CacheError, match=r"01-01-02-01-01-01-01 .* face detector 'haar'.*force=true"):
        check_cache(old, none)
    new = _cache(tmp_path / "new", none, ["landmarks"])
    meta_path = new / "clips" / "01-01-01-01-01-01-01" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta.update(face_source="detector", face_detector="blazeface")
    meta_path.write_text(json.dumps(meta))
    check_cache(new, none)
