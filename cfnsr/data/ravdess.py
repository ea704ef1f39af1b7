"""RAVDESS file names: the seven numeric fields ``MM-VV-EE-II-SS-RR-AA`` and the clip lists they select.

Only full-AV speech clips (modality 01, vocal channel 01) are used by the paper, 60 per actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EMOTIONS: tuple[str, ...] = (
    "neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised",
)
NUM_CLASSES = len(EMOTIONS)
NUM_ACTORS = 24


class RavdessNameError(ValueError):
    """A file name that is not a valid RAVDESS name."""


@dataclass(frozen=True, order=True)
class RavdessName:
    """The parsed fields of one RAVDESS file name (all 1-based, as in the name)."""

    modality: int  # 1 full-AV, 2 video-only, 3 audio-only
    vocal_channel: int  # 1 speech, 2 song
    emotion: int  # 1..8
    intensity: int  # 1 normal, 2 strong
    statement: int  # 1, 2
    repetition: int  # 1, 2
    actor: int  # 1..24

    @property
    def label(self) -> int:
        """Class index 0..7 (emotion - 1)."""
        return self.emotion - 1

    @property
    def stem(self) -> str:
        return "-".join(f"{v:02d}" for v in self.fields)

    @property
    def fields(self) -> tuple[int, ...]:
        return (self.modality, self.vocal_channel, self.emotion, self.intensity,
                self.statement, self.repetition, self.actor)

    @property
    def is_av_speech(self) -> bool:
        return self.modality == 1 and self.vocal_channel == 1

    @property
    def is_male(self) -> bool:
        return self.actor % 2 == 1


_RANGES = {
    "modality": (1, 3), "vocal_channel": (1, 2), "emotion": (1, 8), "intensity": (1, 2),
    "statement": (1, 2), "repetition": (1, 2), "actor": (1, NUM_ACTORS),
}


def parse_name(path: str | Path) -> RavdessName:
    """Parse ``01-01-05-02-01-02-24.mp4`` (or a ``.csv``/stem) into its fields.

    Unlike the public code's ``name.strip(".mp4")``, this removes the suffix only, so actor 24 stays 24.
    Raises ``RavdessNameError`` naming the file and what is wrong.
    """
    stem = Path(path).name
    if "." in stem:
        stem = stem[: stem.index(".")]
    parts = stem.split("-")
    if len(parts) != 7:
        raise RavdessNameError(f"{path}: expected 7 dash-separated fields, found {len(parts)}")
    if not all(p.isdigit() and len(p) == 2 for p in parts):
        raise RavdessNameError(f"{path}: every field must be two digits, got {stem!r}")
    values = dict(zip(_RANGES, (int(p) for p in parts), strict=False))
    for key, (lo, hi) in _RANGES.items():
        if not lo <= values[key] <= hi:
            raise RavdessNameError(f"{path}: field {key}={values[key]:02d} outside {lo:02d}..{hi:02d}")
    name = RavdessName(**values)
    if name.emotion == 1 and name.intensity == 2:
        raise RavdessNameError(f"{path}: neutral (emotion 01) has no strong intensity (02)")
    return name


def av_speech_names(actor: int) -> list[RavdessName]:
    """The 60 full-AV speech clips one actor records: neutral 2x2, every other emotion 2x2x2."""
    names = []
    for emotion in range(1, NUM_CLASSES + 1):
        for intensity in (1,) if emotion == 1 else (1, 2):
            for statement in (1, 2):
                for repetition in (1, 2):
                    names.append(RavdessName(1, 1, emotion, intensity, statement, repetition, actor))
    return names
