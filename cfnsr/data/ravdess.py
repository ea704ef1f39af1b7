"""RAVDESS file names: the seven numeric fields ``MM-VV-EE-II-SS-RR-AA`` and the clip lists they select.

Only full-AV speech clips (modality 01, vocal channel 01) are used by the paper, 60 per actor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfnsr.data.corpus import Clip, Corpus, Speaker, skip_entry

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


def find_landmark_csv(root: str | Path, name: RavdessName) -> Path | None:
    """The CSV of a clip, looked for in ``<root>/landmarks/<stem>.csv``, ``<root>/landmarks/Actor_XX/<stem>.csv``
    and ``<root>/Actor_XX/<stem>.csv``.

    The video-only take (modality 02) is the same recording as the full-AV one with the sound removed, so when the
    FacialTracking files are named after it, its CSV is used for the 01 clip too (tried after the exact stem).
    """
    root = Path(root)
    actor_dir = f"Actor_{name.actor:02d}"
    stems = [name.stem]
    if name.modality == 1:
        stems.append("02" + name.stem[2:])
    for stem in stems:
        for candidate in (root / "landmarks" / f"{stem}.csv", root / "landmarks" / actor_dir / f"{stem}.csv",
                          root / actor_dir / f"{stem}.csv"):
            if candidate.is_file():
                return candidate
    return None


# ---------------------------------------------------------------- the corpus layout: which files are clips to use


class NotRavdessError(RuntimeError):
    """The root has no Actor_* folders or no mp4 with a RAVDESS name."""


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


# ---------------------------------------------------------------- the corpus class (conf/data/ravdess.yaml, synthetic)


class RavdessCorpus(Corpus):
    """RAVDESS (or the synthetic RAVDESS-format corpus): ``<root>/Actor_XX/MM-VV-EE-II-SS-RR-AA.mp4``.

    Label = emotion code - 1 (``EMOTIONS`` order, checked against ``data.class_names``); speaker = actor 1..24.
    generate: the synthetic generator's settings (``data.generate``); given, the corpus is generated (or completed)
    before preprocessing and the expected clips are those the generator makes.
    """

    name = "ravdess"

    def __init__(self, *, class_names: Sequence[str], generate: dict[str, Any] | None) -> None:
        super().__init__(class_names=class_names)
        self.check_class_names(EMOTIONS, "RAVDESS emotion")
        self.generate = dict(generate) if generate else None

    @classmethod
    def default(cls, generate: dict[str, Any] | None = None) -> RavdessCorpus:
        """The corpus with conf/data/ravdess.yaml's class names (for callers that name no corpus)."""
        return cls(class_names=EMOTIONS, generate=generate)

    def discover(self, root: str | Path) -> tuple[list[Clip], list[dict[str, str]], int]:
        found, skipped, n_found = discover_clips(root)
        clips = []
        for path, name in found:
            csv = find_landmark_csv(root, name)
            clips.append(Clip(path=str(path), rel=path.relative_to(Path(root)).as_posix(), stem=name.stem,
                              label=name.label, speaker=name.actor, landmarks=None if csv is None else str(csv)))
        return clips, skipped, n_found

    def speakers(self, root: str | Path | None = None) -> list[Speaker]:
        # all 24 always, also for a synthetic corpus of fewer actors: the paper folds are defined over 1..24
        return list(range(1, NUM_ACTORS + 1))

    def expected_stems(self, speakers: Sequence[Speaker]) -> dict[Speaker, list[str]]:
        """RAVDESS's 60 full-AV speech clips per actor, or the clips the synthetic generator's settings select."""
        wanted = set(speakers)
        if self.generate:
            from cfnsr.data.synthetic import make_config, selected_names

            names = [n for n in selected_names(make_config(**self.generate)) if n.actor in wanted]
        else:
            names = [n for a in speakers if isinstance(a, int) for n in av_speech_names(a)]
        out: dict[Speaker, list[str]] = {a: [] for a in speakers}
        for n in names:
            out[n.actor].append(n.stem)
        return out

    def prepare(self, root: str | Path, workers: int, verbose: bool) -> None:
        if self.generate is None:
            return
        from cfnsr.data.synthetic import CONFIG_FILE, generate_corpus

        root = Path(root)
        if verbose and not (root / CONFIG_FILE).exists():
            print(f"Generating the synthetic RAVDESS-format corpus in {root} ...")
        generate_corpus(root, workers=workers, progress=verbose, **self.generate)
