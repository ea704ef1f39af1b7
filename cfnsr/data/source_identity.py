"""Which corpus a cache was built from: the identity of each clip's sources and the fingerprint of the corpus.

A cache entry is evidence about its source files, not about a clip *name*: its ``meta.json`` records the identity
of the files the corpus class (``cfnsr.data.corpus``) discovered for the clip (``sources``)::

    "sources": {"mp4": {"file": "Actor_01/01-01-...mp4", "size": 1234, "mtime_ns": ..., "sha256": "..."},
                "landmark_csv": null | {"file": "landmarks/01-01-...csv", "size": ..., "mtime_ns": ..., "sha256": ...},
                "audio": null | {"file": "AudioWAV/1001_DFA_ANG_XX.wav", ...}}

``mp4`` is the clip's video whatever its container (CREMA-D's flv too); ``audio`` the separate file the corpus reads
the sound from (CREMA-D with its WAVs), None when the sound comes from the video. Paths are the corpus's own
(``Clip.path``, ``Clip.landmarks``, ``Clip.audio``): no file name is parsed here.

An entry is checked against the file in ``data.root`` now: the size and mtime first (a stat, no read); only when one
of them differs (or under ``preprocess.verify=full``) is the file hashed, and the entry kept when the content hash is
the one recorded (its size/mtime are then updated: a copied corpus re-identifies without a rebuild).

The *corpus fingerprint* is a function of the source files alone: sha256 over the sorted (stem, video size, video
sha256, CSV path, CSV sha256[, audio path, audio sha256]) of every clip the corpus discovers under the root, first 16
hex digits. Two
corpora with the same clip names but other content have other fingerprints; a corpus copied elsewhere keeps its own.
The cache's entries serve as a memo of the hashes, so computing it on a prepared cache costs one stat per file.

This module imports no torch: the preprocessing job and the data module both use it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cfnsr.data import cache
from cfnsr.data.corpus import Clip, Corpus

FINGERPRINT_LENGTH = 16
_CHUNK = 1 << 20
SOURCE_KINDS = ("mp4", "landmark_csv", "audio")


class CorpusError(cache.CacheError):
    """The cache was built from another corpus, or an entry's source changed and it cannot be rebuilt here."""


def file_identity(path: Path, rel: str) -> dict[str, Any]:
    """``{"file", "size", "mtime_ns", "sha256"}`` of one source file; the file is read once, in 1 MiB chunks."""
    st = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return {"file": rel, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest.hexdigest()}


def _rel(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` when it lies under it (as recorded), else its absolute path."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def clip_files(root: Path, clip: Clip) -> dict[str, tuple[Path, str] | None]:
    """The files a clip's entry is made from, as the corpus discovered them: kind -> (path, recorded name) or None.

    ``mp4`` is the clip's video (an mp4 for RAVDESS, an flv for CREMA-D: the key keeps its first name), ``landmark_csv``
    the CSV the corpus found for it, ``audio`` the separate file the corpus reads the sound from (CREMA-D's WAV), if any.
    """
    return {"mp4": (Path(clip.path), clip.rel),
            "landmark_csv": None if clip.landmarks is None else (Path(clip.landmarks), _rel(root, Path(clip.landmarks))),
            "audio": None if clip.audio is None else (Path(clip.audio), _rel(root, Path(clip.audio)))}


def source_identity(root: Path, clip: Clip) -> dict[str, Any]:
    """The ``sources`` record of one clip: identity of its video, of its landmark CSV and of its separate audio file
    (None when it has none)."""
    return {kind: None if f is None else file_identity(f[0], f[1]) for kind, f in clip_files(Path(root), clip).items()}


def file_stat(path: Path) -> tuple[int, int] | None:
    """(size, mtime in ns) of ``path``, None when it cannot be read: the cheap identity check."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


_ADDED = {"landmark_csv": "a landmark CSV was added", "audio": "a separate audio file was added"}
_GONE = {"landmark_csv": "its landmark CSV is gone", "audio": "its separate audio file is gone"}


def compare_sources(recorded: Any, root: Path, clip: Clip, full: bool
                    ) -> tuple[str, dict[str, Any] | None, str | None]:
    """Check an entry's recorded ``sources`` against the files the corpus discovers under ``root`` now.

    Returns (status, current identity or None, reason):
    * ``"same"``: sizes and mtimes equal (and, with ``full``, the hashes too); identity None (nothing to update);
    * ``"reidentified"``: size or mtime differ but every content hash is the recorded one; identity is the new one;
    * ``"changed"``: another file (content, CSV or audio added, removed or another one); reason says which and how;
    * ``"unknown"``: the entry records no sources (written before this check existed); reason says so.
    An entry recorded before ``audio`` was a source kind counts as having none.
    """
    if not isinstance(recorded, Mapping) or not isinstance(recorded.get("mp4"), Mapping):
        return "unknown", None, "the entry records no source identity (made before cache entries were bound to " \
                                "their sources)"
    root = Path(root)
    files = clip_files(root, clip)
    stale = False
    for kind in SOURCE_KINDS:
        rec, now = recorded.get(kind), files[kind]
        if (rec is None) != (now is None):
            what = _ADDED[kind] if rec is None else _GONE[kind]
            return "changed", None, f"{what} ({now[1] if now is not None else rec.get('file')})"
        if rec is None:
            continue
        if rec.get("file") != now[1]:
            return "changed", None, f"{kind} is now {now[1]}, the entry was made from {rec.get('file')}"
        if file_stat(now[0]) != (rec.get("size"), rec.get("mtime_ns")):
            stale = True
    if not stale and not full:
        return "same", None, None
    current = source_identity(root, clip)
    for kind in SOURCE_KINDS:
        rec, now = recorded.get(kind), current[kind]
        if rec is not None and now is not None and rec.get("sha256") != now["sha256"]:
            return "changed", current, (f"{now['file']} changed since the entry was made (size {rec.get('size')} -> "
                                        f"{now['size']} bytes, sha256 {str(rec.get('sha256'))[:12]} -> "
                                        f"{now['sha256'][:12]})")
    return ("reidentified" if stale else "same"), current if stale else None, None


def fingerprint(sources: Mapping[str, Mapping[str, Any]]) -> str:
    """The corpus fingerprint of ``{stem: sources}`` (see the module docstring); key order does not matter."""
    rows = []
    for stem in sorted(sources):
        s = sources[stem]
        csv = s.get("landmark_csv")
        row = [stem, s["mp4"]["size"], s["mp4"]["sha256"],
               None if csv is None else csv["file"], None if csv is None else csv["sha256"]]
        audio = s.get("audio")
        if audio is not None:  # appended only when there is one: corpora without it keep their fingerprints
            row += [audio["file"], audio["sha256"]]
        rows.append(row)
    payload = json.dumps(rows, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:FINGERPRINT_LENGTH]


def _memo(cache_dir: Path | None, report: Mapping[str, Any] | None) -> dict[str, Any]:
    """Recorded source identities by stem: from the cache's entries (and failed clips in the report)."""
    memo: dict[str, Any] = {}
    if report is not None:
        for s in report.get("skipped") or []:
            if isinstance(s, Mapping) and isinstance(s.get("sources"), Mapping) and s.get("stem"):
                memo[s["stem"]] = s["sources"]
    if cache_dir is not None:
        for stem in cache.cached_clips(cache_dir):
            try:
                meta = cache.load_meta(cache_dir, stem)
            except cache.CacheError:
                continue
            if isinstance(meta.get("sources"), Mapping):
                memo[stem] = meta["sources"]
    return memo


def corpus_sources(root: str | Path, cache_dir: str | Path | None, clips: Iterable[Clip]
                   ) -> dict[str, dict[str, Any]]:
    """``{stem: sources}`` of the clips a corpus discovered under ``root`` (``Corpus.discover``), hashing only files
    whose recorded identity (in ``cache_dir``'s entries or report) no longer matches their size and mtime."""
    root = Path(root)
    report = read_report(cache_dir) if cache_dir is not None else None
    memo = _memo(Path(cache_dir) if cache_dir is not None else None, report)
    out = {}
    for clip in clips:
        recorded = memo.get(clip.stem)
        status, current, _ = (compare_sources(recorded, root, clip, full=False) if recorded is not None
                              else ("unknown", None, None))
        out[clip.stem] = dict(recorded) if status == "same" else current or source_identity(root, clip)
    return out


def corpus_fingerprint(root: str | Path, corpus: Corpus, cache_dir: str | Path | None = None) -> str:
    """The fingerprint of the clips ``corpus`` discovers under ``root`` now (``cache_dir``: a memo of hashes)."""
    return fingerprint(corpus_sources(root, cache_dir, corpus.discover(root)[0]))


def read_report(cache_dir: str | Path) -> dict[str, Any] | None:
    try:
        report = json.loads((Path(cache_dir) / cache.REPORT_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return report if isinstance(report, dict) else None


def duplicate_groups(sources: Mapping[str, Mapping[str, Any]], key: str = "mp4") -> list[list[str]]:
    """Groups (sorted stems, two or more) of clips whose ``key`` source has the same content hash."""
    by_hash: dict[str, list[str]] = {}
    for stem, s in sources.items():
        rec = s.get(key)
        if isinstance(rec, Mapping) and rec.get("sha256"):
            by_hash.setdefault(rec["sha256"], []).append(stem)
    return sorted(sorted(g) for g in by_hash.values() if len(g) > 1)


def same_root(a: str | Path | None, b: str | Path) -> bool:
    """Whether two corpus roots are the same folder (resolved; an unknown recorded root counts as the same)."""
    if a is None:
        return True
    return os.path.realpath(a) == os.path.realpath(b)


def sources_match(recorded: Any, current: Mapping[str, Any]) -> bool:
    """Whether an entry's recorded ``sources`` name the same files with the same content as ``current``."""
    if not isinstance(recorded, Mapping):
        return False
    for kind in SOURCE_KINDS:
        a, b = recorded.get(kind), current.get(kind)
        if (a is None) != (b is None):
            return False
        if a is not None and (not isinstance(a, Mapping) or a.get("file") != b["file"]
                              or a.get("sha256") != b["sha256"]):
            return False
    return True


def run_corpus_identity(root: str | Path, cache_dir: str | Path, corpus: Corpus | None) -> dict[str, Any]:
    """The corpus fingerprint of ``root`` now (the clips ``corpus`` discovers there) and the resolved cache folder,
    as a run records them (for resume)."""
    root = Path(root)
    try:
        if corpus is None:
            raise ValueError("the run config names no corpus (data.corpus)")
        fp = corpus_fingerprint(root, corpus, cache_dir if Path(cache_dir).is_dir() else None)
    except Exception as exc:  # noqa: BLE001 - the corpus's error, OSError: no corpus there, which differs from any
        fp = f"<no corpus at data.root={root}: {exc}>"
    return {"corpus_fingerprint": fp, "cache_dir": str(Path(cache_dir).resolve())}
