"""The preprocessing settings: everything that shapes the cache, validated, with the hash its settings.json holds.

Set in ``conf/preprocess/``; the cache (``cfnsr.data.cache``) refuses to serve clips made with other settings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cfnsr.data import cache
from cfnsr.data.cache import CacheError

_INT_FIELDS = ("frames", "size", "sample_rate", "n_mfcc", "n_fft", "hop_length")
_FLOAT_FIELDS = ("crop_margin", "audio_offset", "audio_duration")
SHORT_AUDIO = ("skip", "pad")
# Settings added after caches were built, with the value that reproduces the behaviour from before they existed.
NEUTRAL_SETTINGS: dict[str, Any] = {"short_audio": "skip"}
# The face_fallback values that run a detector (cfnsr.data.faces.DETECTORS; not imported: faces pulls in cv2), the
# detectors older caches record (Haar, the default before BlazeFace; no longer available), and the face_source of the
# entries whose crops depend on the detector (a detector box, or the centre when it found nothing).
FACE_DETECTORS = ("blazeface",)
RETIRED_DETECTORS = ("haar",)
DETECTOR_FACE_SOURCES = ("detector", "center")


@dataclass(frozen=True)
class PreprocessSettings:
    """Everything that shapes the cache; its dict and hash go to settings.json. Paper values by default.

    The public code's quirks are options, off by default: ``squash_before_crop=True`` (resize the whole 1280x720
    frame to size x size, then cut the landmark box from it and enlarge it), ``crop_margin=0`` (tight box),
    ``channel_order="bgr"`` (what its cv2.imwrite/imread round trip fed the network).
    ``landmark_mismatch``: what to do with a clip whose landmark CSV does not cover its frames (too few rows, or
    timestamps ending early): "detector" crops it with the face detector, "skip" leaves it out.
    ``short_audio``: a clip whose audio ends before the window (offset + duration): "skip" leaves it out (listed as
    audio-too-short in the report), "pad" appends zeros and records the seconds padded in its meta.json.
    """

    frames: int = 30
    size: int = 224
    crop_margin: float = 0.2
    squash_before_crop: bool = False
    channel_order: str = "rgb"
    sample_rate: int = 44100
    audio_offset: float = 0.5
    audio_duration: float = 2.45
    n_mfcc: int = 13
    n_fft: int = 2048
    hop_length: int = 512
    # face detector for a clip without a CSV (cfnsr.data.faces.DETECTORS: blazeface), or "none": skip such clips
    face_fallback: str = "blazeface"
    landmark_mismatch: str = "detector"  # CSV not covering the clip: "detector" (face detector) or "skip"
    short_audio: str = "skip"  # audio ending before offset + duration: "skip" the clip, or "pad" it with zeros

    def __post_init__(self) -> None:
        # Hydra may hand 0 for 0.0 or 224.0 for 224; normalise so equal settings always hash equally.
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or float(value) != int(value):
                raise ValueError(f"preprocess setting {name} must be an integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in _FLOAT_FIELDS:
            object.__setattr__(self, name, float(getattr(self, name)))
        if not isinstance(self.squash_before_crop, (bool, np.bool_)):
            raise ValueError(f"squash_before_crop must be true/false, got {self.squash_before_crop!r}")
        object.__setattr__(self, "squash_before_crop", bool(self.squash_before_crop))
        object.__setattr__(self, "channel_order", str(self.channel_order).lower())
        object.__setattr__(self, "face_fallback", str(self.face_fallback).lower())
        object.__setattr__(self, "landmark_mismatch", str(self.landmark_mismatch).lower())
        object.__setattr__(self, "short_audio", str(self.short_audio).lower())
        if self.short_audio not in SHORT_AUDIO:
            raise ValueError(f"short_audio must be one of {SHORT_AUDIO}, got {self.short_audio!r}")
        if self.channel_order not in ("rgb", "bgr"):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {self.channel_order!r}")
        # A retired detector is accepted as a recorded value (a checkpoint or cache from before BlazeFace: its hash
        # is the one recorded then); preprocessing refuses to run it (cfnsr.data.faces.detect_face names it).
        if self.face_fallback not in (*FACE_DETECTORS, *RETIRED_DETECTORS, "none"):
            raise ValueError(f"face_fallback must be one of {[*FACE_DETECTORS, 'none']}, got {self.face_fallback!r}")
        if self.landmark_mismatch not in ("detector", "skip"):
            raise ValueError(f"landmark_mismatch must be 'detector' or 'skip', got {self.landmark_mismatch!r}")
        for name in _INT_FIELDS:
            if getattr(self, name) <= 0:
                raise ValueError(f"preprocess setting {name} must be positive, got {getattr(self, name)}")
        if self.crop_margin < 0 or self.audio_offset < 0 or self.audio_duration <= 0:
            raise ValueError("crop_margin and audio_offset must be >= 0 and audio_duration > 0")

    def to_dict(self) -> dict[str, Any]:
        """The settings as settings.json records them. Options added later are left out at their neutral value
        (the behaviour from before they existed), so caches built before them keep their hash and still load."""
        out = asdict(self)
        for key, neutral in NEUTRAL_SETTINGS.items():
            if out[key] == neutral:
                del out[key]
        return out

    def input_shapes(self) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
        """Per-clip model inputs: video (3, T, S, S) and audio (n_mfcc, L), L = 1 + samples // hop (librosa,
        centred)."""
        samples = int(self.audio_duration * self.sample_rate)
        return (3, self.frames, self.size, self.size), (self.n_mfcc, 1 + samples // self.hop_length)

    @property
    def hash(self) -> str:
        return cache.settings_hash(self.to_dict())



def settings_from_config(preprocess: Mapping[str, Any]) -> PreprocessSettings:
    """The cache-shaping subset of a ``preprocess`` config (``workers``, ``force``, ... are run options)."""
    names = {f.name for f in dataclasses.fields(PreprocessSettings)}
    return PreprocessSettings(**{k: v for k, v in preprocess.items() if k in names})


def detector_entries(cache_dir: str | Path) -> list[str]:
    """Stems of the cache entries cropped with the face detector (or the centre square when it found nothing)."""
    return [stem for stem in cache.cached_clips(cache_dir)
            if cache.load_meta(cache_dir, stem).get("face_source", "landmarks") in DETECTOR_FACE_SOURCES]


def detector_free_match(cache_dir: str | Path, settings: PreprocessSettings) -> bool:
    """True when the cache's settings.json differs from ``settings`` only in which face detector ``face_fallback``
    names and no entry of the cache was cropped by a detector: every crop then came from landmarks, exactly what
    ``settings`` would build, so the cache is served (a cache built with the Haar detector cfnsr used before,
    ``face_fallback: haar`` recorded, stays usable). An entry that did use a detector makes this False, and the
    cache is refused as any other settings change."""
    recorded = cache.read_settings(cache_dir)
    if recorded is None:
        return False
    old = recorded.get("face_fallback")
    known = (*FACE_DETECTORS, *RETIRED_DETECTORS)
    if old == settings.face_fallback or old not in known or settings.face_fallback not in FACE_DETECTORS:
        return False
    if cache.settings_differences(recorded, {**settings.to_dict(), "face_fallback": old}):
        return False
    return not detector_entries(cache_dir)


def check_detector_entries(cache_dir: str | Path, settings: PreprocessSettings) -> None:
    """With ``face_fallback=none`` the settings do not name the detector that crops the clips whose CSV does not cover
    them (``landmark_mismatch=detector``: BlazeFace); entries recording another one (or none: built before BlazeFace,
    with Haar) are refused rather than mixed with new ones. Other values name it in the settings hash already."""
    if settings.face_fallback != "none" or settings.landmark_mismatch != "detector":
        return
    for stem in cache.cached_clips(cache_dir):
        meta = cache.load_meta(cache_dir, stem)
        if meta.get("face_source", "landmarks") in DETECTOR_FACE_SOURCES and meta.get("face_detector") != "blazeface":
            raise CacheError(f"cache entry {stem} in {cache_dir} was cropped with the face detector "
                             f"{meta.get('face_detector', 'haar')!r}, and this cfnsr uses 'blazeface' for clips whose "
                             f"landmark CSV does not cover them; {cache.REBUILD_HINT}")


def check_cache(cache_dir: str | Path, settings: PreprocessSettings) -> None:
    """Raise ``CacheError`` (saying how to rebuild) unless the cache's settings.json matches ``settings`` (or differs
    only in a face detector that none of its entries used: ``detector_free_match``)."""
    if detector_free_match(cache_dir, settings):
        return
    cache.check_settings(cache_dir, settings.to_dict())
    check_detector_entries(cache_dir, settings)
