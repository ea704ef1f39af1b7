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


# ---------------------------------------------------------------- the corpus layout: which files are clips to use


class NotRavdessError(RuntimeError):
    """The root has no Actor_* folders or no mp4 with a RAVDESS name."""


def skip_entry(file: str, kind: str, reason: str) -> dict[str, str]:
    """One entry of the preprocessing report's skipped list."""
    return {"file": file, "kind": kind, "reason": reason}


def unused_reason(name: RavdessName) -> tuple[str, str] | None:
    """(kind, reason) when the paper does not use this clip (it uses full-AV speech 01-01-* only), else None."""
    if name.modality == 2:
        return "video-only", "video-only clip (modality 02, no audio): the paper uses full-AV 01-01-* only"
    if name.modality == 3:
        return "audio-only", "audio-only clip (modality 03): the paper uses full-AV 01-01-* only"
    if name.vocal_channel == 2:
        return "song", "song clip (vocal channel 02): the paper uses speech 01-01-* only"
    return None


def _not_a_clip(file: str, reason: str) -> dict[str, str]:
    return skip_entry(file, "not-a-clip", reason)


def _is_landmark_csv(path: Path) -> bool:
    """A CSV named after a clip (``<stem>.csv``): an OpenFace file kept beside the mp4s, not a stray file."""
    if path.suffix.lower() != ".csv":
        return False
    try:
        parse_name(path.stem + ".mp4")
    except RavdessNameError:
        return False
    return True


def discover_clips(root: str | Path) -> tuple[list[tuple[Path, RavdessName]], list[dict[str, str]], int]:
    """Walk ``root/Actor_*/``.

    Returns (full-AV speech clips to process as (path, name), skipped [{file, kind, reason}], mp4 files found).
    Skipped holds the RAVDESS clips not used (video-only, song, duplicate ...) and, with kind ``not-a-clip``, every
    other entry of the Actor_* folders: an mp4 without a RAVDESS name, any other file (landmark CSVs named after a
    clip excepted), a sub-folder.
    Raises ``NotRavdessError`` when there is no Actor_* folder or no mp4 with a valid RAVDESS name.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotRavdessError(f"corpus root {root} is not a directory")
    actor_dirs = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("Actor_"))
    if not actor_dirs:
        raise NotRavdessError(f"{root} does not look like RAVDESS: no Actor_* folders (expected "
                              f"<root>/Actor_01/01-01-03-02-01-01-01.mp4 ...)")
    keep: list[tuple[Path, RavdessName]] = []
    skipped: list[dict[str, str]] = []
    seen: dict[str, str] = {}
    n_found = n_named = 0
    for actor_dir in actor_dirs:
        for path in sorted(actor_dir.iterdir()):
            rel = path.relative_to(root).as_posix()
            if not path.is_file():
                skipped.append(_not_a_clip(rel, f"{path.name}: a folder inside {actor_dir.name}, not a clip"))
                continue
            if path.suffix.lower() != ".mp4":
                if not _is_landmark_csv(path):
                    skipped.append(_not_a_clip(rel, f"{path.name}: not an mp4 (RAVDESS clips are "
                                                    f"MM-VV-EE-II-SS-RR-AA.mp4)"))
                continue
            n_found += 1
            try:
                name = parse_name(path.name)
            except RavdessNameError as exc:
                skipped.append(_not_a_clip(rel, f"invalid RAVDESS name: {exc}"))
                continue
            n_named += 1
            why = unused_reason(name)
            if why is not None:
                skipped.append(skip_entry(rel, *why))
            elif name.stem in seen:
                skipped.append(skip_entry(rel, "duplicate", f"{path.name}: same clip as {seen[name.stem]}, kept that one"))
            else:
                seen[name.stem] = rel
                keep.append((path, name))
    if n_named == 0:
        raise NotRavdessError(f"{root} does not look like RAVDESS: {n_found} mp4 file(s) under "
                              f"{len(actor_dirs)} Actor_* folder(s), none with a valid RAVDESS name "
                              f"(MM-VV-EE-II-SS-RR-AA.mp4)")
    return keep, skipped, n_found
