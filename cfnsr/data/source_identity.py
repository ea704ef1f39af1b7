"""Which corpus a cache was built from: the identity of each clip's sources and the fingerprint of the corpus.

A cache entry is evidence about one source file, not about a clip *name*: its ``meta.json`` records the identity of
the mp4 it was made from and of the landmark CSV found for it (``sources``)::

    "sources": {"mp4": {"file": "Actor_01/01-01-...mp4", "size": 1234, "mtime_ns": ..., "sha256": "..."},
                "landmark_csv": null | {"file": "landmarks/01-01-...csv", "size": ..., "mtime_ns": ..., "sha256": ...}}

An entry is checked against the file in ``data.root`` now: the size and mtime first (a stat, no read); only when one
of them differs (or under ``preprocess.verify=full``) is the file hashed, and the entry kept when the content hash is
the one recorded (its size/mtime are then updated: a copied corpus re-identifies without a rebuild).

The *corpus fingerprint* is a function of the source files alone: sha256 over the sorted (stem, mp4 size, mp4
sha256, CSV path, CSV sha256) of every full-AV speech clip discovered under the root, first 16 hex digits. Two
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
from cfnsr.data.landmarks import find_landmark_csv
from cfnsr.data.ravdess import RavdessName, discover_clips

FINGERPRINT_LENGTH = 16
_CHUNK = 1 << 20
SOURCE_KINDS = ("mp4", "landmark_csv")


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


def clip_csv(root: Path, name: RavdessName) -> tuple[Path, str] | None:
    """The landmark CSV preprocessing would use for ``name`` (path, path relative to ``root``), or None."""
    csv = find_landmark_csv(root, name)
    return None if csv is None else (csv, csv.relative_to(root).as_posix())


def source_identity(root: Path, path: Path, name: RavdessName) -> dict[str, Any]:
    """The ``sources`` record of one clip: identity of its mp4 and of its landmark CSV (None when it has none)."""
    csv = clip_csv(root, name)
    return {"mp4": file_identity(path, path.relative_to(root).as_posix()),
            "landmark_csv": None if csv is None else file_identity(csv[0], csv[1])}


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def compare_sources(recorded: Any, root: Path, path: Path, name: RavdessName, full: bool
                    ) -> tuple[str, dict[str, Any] | None, str | None]:
    """Check an entry's recorded ``sources`` against the files under ``root`` now.

    Returns (status, current identity or None, reason):
    * ``"same"``: sizes and mtimes equal (and, with ``full``, the hashes too); identity None (nothing to update);
    * ``"reidentified"``: size or mtime differ but every content hash is the recorded one; identity is the new one;
    * ``"changed"``: another file (content, CSV added, removed or another CSV); reason says which and how;
    * ``"unknown"``: the entry records no sources (written before this check existed); reason says so.
    """
    if not isinstance(recorded, Mapping) or not isinstance(recorded.get("mp4"), Mapping):
        return "unknown", None, "the entry records no source identity (made before cache entries were bound to " \
                                "their sources)"
    csv = clip_csv(root, name)
    files = {"mp4": (path, path.relative_to(root).as_posix()), "landmark_csv": csv}
    stale = False
    for kind in SOURCE_KINDS:
        rec, now = recorded.get(kind), files[kind]
        if (rec is None) != (now is None):
            what = "a landmark CSV was added" if rec is None else "its landmark CSV is gone"
            return "changed", None, f"{what} ({(now or (None, rec.get('file')))[1]})"
        if rec is None:
            continue
        if rec.get("file") != now[1]:
            return "changed", None, f"{kind} is now {now[1]}, the entry was made from {rec.get('file')}"
        if _stat(now[0]) != (rec.get("size"), rec.get("mtime_ns")):
            stale = True
    if not stale and not full:
        return "same", None, None
    current = source_identity(root, path, name)
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
        rows.append([stem, s["mp4"]["size"], s["mp4"]["sha256"],
                     None if csv is None else csv["file"], None if csv is None else csv["sha256"]])
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


def corpus_sources(root: str | Path, cache_dir: str | Path | None = None,
                   candidates: Iterable[tuple[Path, RavdessName]] | None = None) -> dict[str, dict[str, Any]]:
    """``{stem: sources}`` of every full-AV speech clip under ``root``, hashing only files whose recorded identity
    (in ``cache_dir``'s entries or report) no longer matches their size and mtime."""
    root = Path(root)
    if candidates is None:
        candidates = discover_clips(root)[0]
    report = read_report(cache_dir) if cache_dir is not None else None
    memo = _memo(Path(cache_dir) if cache_dir is not None else None, report)
    out = {}
    for path, name in candidates:
        recorded = memo.get(name.stem)
        status, current, _ = (compare_sources(recorded, root, path, name, full=False) if recorded is not None
                              else ("unknown", None, None))
        out[name.stem] = dict(recorded) if status == "same" else current or source_identity(root, path, name)
    return out


def corpus_fingerprint(root: str | Path, cache_dir: str | Path | None = None) -> str:
    """The fingerprint of the corpus under ``root`` now (``cache_dir``: a memo of hashes, optional)."""
    return fingerprint(corpus_sources(root, cache_dir))


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


def run_corpus_identity(root: str | Path, cache_dir: str | Path) -> dict[str, Any]:
    """The corpus fingerprint of ``root`` now and the resolved cache folder, as a run records them (for resume)."""
    root = Path(root)
    try:
        fp = corpus_fingerprint(root, cache_dir if Path(cache_dir).is_dir() else None)
    except Exception as exc:  # noqa: BLE001 - NotRavdessError, OSError: no corpus there, which differs from any
        fp = f"<no corpus at data.root={root}: {exc}>"
    return {"corpus_fingerprint": fp, "cache_dir": str(Path(cache_dir).resolve())}
