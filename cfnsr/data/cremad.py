"""CREMA-D (Cao et al. 2014): 7442 clips of 91 actors (1001..1091) saying 12 sentences with 6 emotions.

Layout (as released, https://github.com/CheyneyComputerScience/CREMA-D)::

    <root>/VideoFlash/<actor>_<sentence>_<emotion>_<level>.flv    video with its audio track (e.g. 1001_DFA_ANG_XX.flv)
    <root>/AudioWAV/<same stem>.wav                               the audio alone (16 kHz mono)
    <root>/processedResults/summaryTable.csv                      the crowd's votes per clip

emotion: ANG, DIS, FEA, HAP, NEU, SAD (label 0..5 in this order, checked against ``data.class_names``); level: LO,
MD, HI or XX (unspecified). The summary table (an R ``write.csv``) has the columns ``"", FileName, VoiceVote,
VoiceLevel, FaceVote, FaceLevel, MultiModalVote, MultiModalLevel``; a vote is the one-letter emotion the raters
chose most often (A, D, F, H, N, S), or several joined by ``:`` when they tied. That format is what public
CREMA-D loaders read; the tests use a generated table of the same shape (``cfnsr.data.synthetic_cremad``).

Label choice (``label_source``): ``acted`` (the intended emotion in the file name), or the crowd-perceived majority
``voice`` / ``face`` / ``multimodal`` (VoiceVote / FaceVote / MultiModalVote); a clip whose vote is tied, or missing
from the table, is skipped with the reason. Audio (``audio_source``): ``video`` (the FLV's own track) or ``wav``
(AudioWAV/<stem>.wav).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path

from cfnsr.data.corpus import Clip, Corpus, CorpusError, Speaker, skip_entry

EMOTION_CODES: tuple[str, ...] = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
CODE_NAMES: tuple[str, ...] = ("anger", "disgust", "fear", "happy", "neutral", "sad")  # what the codes stand for
VOTE_LETTERS: tuple[str, ...] = tuple(code[0] for code in EMOTION_CODES)  # A D F H N S
LEVELS: tuple[str, ...] = ("LO", "MD", "HI", "XX")
ACTORS: tuple[int, ...] = tuple(range(1001, 1092))
SENTENCES: tuple[str, ...] = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI")
VIDEO_DIR, AUDIO_DIR = "VideoFlash", "AudioWAV"
SUMMARY_FILE = "processedResults/summaryTable.csv"
LABEL_SOURCES = {"acted": None, "voice": "VoiceVote", "face": "FaceVote", "multimodal": "MultiModalVote"}
AUDIO_SOURCES = ("video", "wav")

_NAME = re.compile(r"^(?P<actor>\d{4})_(?P<sentence>[A-Z]{3})_(?P<emotion>[A-Z]{3})_(?P<level>[A-Z]{2})$")


class CremadNameError(ValueError):
    """A file name that is not a CREMA-D clip name."""


def parse_name(path: str | Path) -> tuple[int, str, int, str]:
    """``1001_DFA_ANG_XX.flv`` -> (actor 1001, sentence "DFA", label 0, level "XX"); ``CremadNameError`` naming the
    file and what is wrong."""
    stem = Path(path).name.split(".")[0]
    m = _NAME.match(stem)
    if m is None:
        raise CremadNameError(f"{path}: expected <actor>_<sentence>_<emotion>_<level>, e.g. 1001_DFA_ANG_XX")
    actor = int(m["actor"])
    if actor not in ACTORS:
        raise CremadNameError(f"{path}: actor {actor} outside {ACTORS[0]}..{ACTORS[-1]}")
    if m["emotion"] not in EMOTION_CODES:
        raise CremadNameError(f"{path}: emotion {m['emotion']} is not one of {EMOTION_CODES}")
    if m["level"] not in LEVELS:
        raise CremadNameError(f"{path}: level {m['level']} is not one of {LEVELS}")
    return actor, m["sentence"], EMOTION_CODES.index(m["emotion"]), m["level"]


def read_votes(path: Path, column: str) -> dict[str, str]:
    """FileName -> the vote in ``column`` of the summary table; ``CorpusError`` naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read the CREMA-D ratings table ({exc}); label_source needs it "
                          f"(label_source=acted does not)") from exc
    reader = csv.DictReader(text.splitlines())
    fields = [f.strip() for f in (reader.fieldnames or [])]
    if "FileName" not in fields or column not in fields:
        raise CorpusError(f"{path}, line 1: expected the columns FileName and {column}, found {fields}")
    votes: dict[str, str] = {}
    for row in reader:
        row = {str(k).strip(): (v or "").strip() for k, v in row.items() if k is not None}
        name = row.get("FileName", "")
        if not name:
            raise CorpusError(f"{path}, line {reader.line_num}: empty FileName")
        if name in votes:
            raise CorpusError(f"{path}, line {reader.line_num}: {name} is listed twice")
        votes[name] = row.get(column, "")
    return votes


class CremadCorpus(Corpus):
    """The CREMA-D corpus class (``conf/data/cremad.yaml``)."""

    name = "cremad"

    def __init__(self, *, class_names: Sequence[str], label_source: str, audio_source: str) -> None:
        super().__init__(class_names=class_names)
        if len(self.class_names) != len(EMOTION_CODES):
            raise CorpusError(f"data.class_names {list(self.class_names)}: CREMA-D has {len(EMOTION_CODES)} "
                              f"emotions, {list(EMOTION_CODES)} in this order")
        if label_source not in LABEL_SOURCES:
            raise CorpusError(f"data.corpus.label_source={label_source!r}: expected one of {list(LABEL_SOURCES)}")
        if audio_source not in AUDIO_SOURCES:
            raise CorpusError(f"data.corpus.audio_source={audio_source!r}: expected one of {list(AUDIO_SOURCES)}")
        self.check_class_names(CODE_NAMES, "CREMA-D emotion")
        self.label_source = label_source
        self.audio_source = audio_source

    def speakers(self, root: str | Path | None = None) -> list[Speaker]:
        return list(ACTORS)

    def _label(self, votes: dict[str, str] | None, stem: str, acted: int) -> tuple[int | None, str]:
        """(label, "") or (None, why the clip has no label under ``label_source``)."""
        if votes is None:
            return acted, ""
        vote = votes.get(stem)
        column = LABEL_SOURCES[self.label_source]
        if vote is None:
            return None, f"{stem} is not in {SUMMARY_FILE} (label_source={self.label_source})"
        letters = [v for v in vote.split(":") if v]
        if len(letters) != 1:
            return None, f"{column}={vote!r}: the raters tied (label_source={self.label_source})"
        if letters[0] not in VOTE_LETTERS:
            return None, f"{column}={vote!r} is not one of {list(VOTE_LETTERS)}"
        return VOTE_LETTERS.index(letters[0]), ""

    def discover(self, root: str | Path) -> tuple[list[Clip], list[dict[str, str]], int]:
        root = Path(root)
        videos = root / VIDEO_DIR
        if not videos.is_dir():
            raise CorpusError(f"{root} does not look like CREMA-D: no {VIDEO_DIR}/ folder (expected "
                              f"<root>/{VIDEO_DIR}/1001_DFA_ANG_XX.flv ...)")
        column = LABEL_SOURCES[self.label_source]
        votes = None if column is None else read_votes(root / SUMMARY_FILE, column)
        clips: list[Clip] = []
        skipped: list[dict[str, str]] = []
        n_found = 0
        for path in sorted(videos.iterdir()):
            rel = path.relative_to(root).as_posix()
            if not path.is_file() or path.suffix.lower() != ".flv":
                skipped.append(skip_entry(rel, "not-a-clip", f"{path.name}: not an .flv video"))
                continue
            n_found += 1
            try:
                actor, _, acted, _ = parse_name(path)
            except CremadNameError as exc:
                skipped.append(skip_entry(rel, "not-a-clip", f"invalid CREMA-D name: {exc}"))
                continue
            label, why = self._label(votes, path.stem, acted)
            if label is None:
                skipped.append(skip_entry(rel, "no-label", why))
                continue
            audio = None
            if self.audio_source == "wav":
                wav = root / AUDIO_DIR / f"{path.stem}.wav"
                if not wav.is_file():
                    skipped.append(skip_entry(rel, "no-audio", f"{path.stem}: no {AUDIO_DIR}/{wav.name} "
                                                               f"(audio_source=wav)"))
                    continue
                audio = str(wav)
            csv_path = root / "landmarks" / f"{path.stem}.csv"  # optional OpenFace CSVs, else the face detector
            clips.append(Clip(path=str(path), rel=rel, stem=path.stem, label=label, speaker=actor,
                              landmarks=str(csv_path) if csv_path.is_file() else None, audio=audio))
        if not clips and n_found == 0:
            raise CorpusError(f"{root} does not look like CREMA-D: no .flv video in {videos}")
        return clips, skipped, n_found
