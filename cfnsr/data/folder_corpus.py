"""Your own recordings: a folder of videos plus a CSV that says, per video, its label and its speaker.

``conf/data/folder.yaml``; ``python train.py data=folder data.root=<folder>`` reads ``<folder>/clips.csv``::

    path,label,speaker
    alice/take1.mp4,happy,alice
    bob/take3.mov,sad,bob

* ``path``: the video, relative to the folder (or absolute); any container FFmpeg reads, with an audio track.
* ``label``: a class name. The class names are ``data.class_names`` when given (their order is the label order),
  else the distinct labels of the CSV in sorted order.
* ``speaker``: who is speaking; the folds never put one speaker in two parts. Integers stay integers.
* optional ``landmarks``: an OpenFace CSV for the video (else the face detector crops the face).

Every error names the CSV line. The cache key of a clip (its stem) is its path without the suffix, ``/`` replaced by
``__``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from cfnsr.data.corpus import Clip, Corpus, CorpusError, Speaker, skip_entry

REQUIRED_COLUMNS = ("path", "label", "speaker")


def _speaker(value: str) -> Speaker:
    return int(value) if value.isdigit() else value


def _rows(csv_path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of every data row; ``CorpusError`` naming the file and line for a bad header."""
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CorpusError(f"{csv_path}: cannot read the clip list ({exc}); data=folder needs a CSV with the columns "
                          f"{', '.join(REQUIRED_COLUMNS)} (data.corpus.csv)") from exc
    reader = csv.DictReader(text.splitlines())
    fields = [f.strip() for f in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in fields]
    if missing:
        raise CorpusError(f"{csv_path}, line 1: missing column(s) {missing}; the header must name "
                          f"{', '.join(REQUIRED_COLUMNS)} (found {fields})")
    rows = []
    for row in reader:
        clean = {str(k).strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if None in row:
            raise CorpusError(f"{csv_path}, line {reader.line_num}: more values than the header has columns")
        rows.append((reader.line_num, clean))
    if not rows:
        raise CorpusError(f"{csv_path}: lists no clip (only a header)")
    return rows


def csv_class_names(csv_path: str | Path) -> list[str]:
    """The distinct labels of the CSV, sorted: the class names when ``data.class_names`` is not given. Used by the
    ``${cfnsr_csv_labels:...}`` resolver of conf/data/folder.yaml."""
    path = Path(csv_path)
    labels = set()
    for line, row in _rows(path):
        if not row["label"]:
            raise CorpusError(f"{path}, line {line}: empty label")
        labels.add(row["label"])
    return sorted(labels)


class FolderCorpus(Corpus):
    """A folder of videos described by a CSV (path, label, speaker)."""

    name = "folder"

    def __init__(self, *, class_names: Sequence[str], csv: str, root: str) -> None:
        super().__init__(class_names=class_names)
        self.csv = Path(csv)
        self.root = Path(root)

    def _read(self, root: Path) -> list[tuple[int, Clip]]:
        out: list[tuple[int, Clip]] = []
        seen: dict[str, int] = {}
        for line, row in _rows(self.csv):
            where = f"{self.csv}, line {line}"
            if not row["path"]:
                raise CorpusError(f"{where}: empty path")
            if row["label"] not in self.class_names:
                raise CorpusError(f"{where}: label {row['label']!r} is not one of the class names "
                                  f"{list(self.class_names)} (data.class_names)")
            if not row["speaker"]:
                raise CorpusError(f"{where}: empty speaker")
            path = Path(row["path"])
            full = path if path.is_absolute() else root / path
            rel = full.relative_to(root).as_posix() if full.is_relative_to(root) else full.as_posix()
            stem = Path(rel).with_suffix("").as_posix().replace("/", "__")
            if stem in seen:
                raise CorpusError(f"{where}: {row['path']} is the same clip as line {seen[stem]}")
            seen[stem] = line
            lm = row.get("landmarks") or None
            landmarks = None if lm is None else str(Path(lm) if Path(lm).is_absolute() else root / lm)
            out.append((line, Clip(path=str(full), rel=rel, stem=stem, label=self.class_names.index(row["label"]),
                                   speaker=_speaker(row["speaker"]), landmarks=landmarks)))
        return out

    def discover(self, root: str | Path) -> tuple[list[Clip], list[dict[str, str]], int]:
        root = Path(root)
        clips, skipped = [], []
        for line, clip in self._read(root):
            if not Path(clip.path).is_file():
                skipped.append(skip_entry(clip.rel, "missing", f"{self.csv}, line {line}: {clip.rel} does not exist"))
                continue
            if clip.landmarks is not None and not Path(clip.landmarks).is_file():
                raise CorpusError(f"{self.csv}, line {line}: landmark CSV {clip.landmarks} does not exist")
            clips.append(clip)
        if not clips:
            raise CorpusError(f"{self.csv}: none of its {len(skipped)} video(s) exist under {root}")
        return clips, skipped, len(clips)

    def speakers(self, root: str | Path | None = None) -> list[Speaker]:
        found = {_speaker(row["speaker"]) for _, row in _rows(self.csv) if row["speaker"]}
        return sorted(found, key=lambda s: (0, s) if isinstance(s, int) else (1, str(s)))

    def expected_stems(self, speakers: Sequence[Speaker]) -> dict[Speaker, list[str]]:
        out: dict[Speaker, list[str]] = {s: [] for s in speakers}
        for _, clip in self._read(self.root):
            if clip.speaker in out:
                out[clip.speaker].append(clip.stem)
        return out
