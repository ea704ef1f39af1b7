"""The preprocessed cache on disk (layout in docs/contracts.md): settings stamp, atomic clip entries, reading back.

```
<cache_dir>/settings.json            settings that shaped the cache + "format" + "hash"
<cache_dir>/preprocess_report.json   written by cfnsr.data.preprocess
<cache_dir>/clips/<stem>/frames.npy  uint8 (T, S, S, 3)
<cache_dir>/clips/<stem>/mfcc.npy    float32 (n_mfcc, L)
<cache_dir>/clips/<stem>/meta.json   {"stem", "actor", "label", "face_source", ...}
```
An entry is written under ``clips/.<stem>.tmp-<pid>/`` and renamed into place, so ``clips/<stem>/`` exists only
when complete and an interrupted run leaves nothing half-written that a later run or the data module could trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

CACHE_FORMAT = 1  # bump when the entry layout changes: it is part of the hash, so old caches are refused
SETTINGS_FILE = "settings.json"
REPORT_FILE = "preprocess_report.json"
CLIPS_DIR = "clips"
ENTRY_FILES = ("frames.npy", "mfcc.npy", "meta.json")
REBUILD_HINT = "rebuild it with `python preprocess.py data=... preprocess.force=true`"
_TMP_MARK = ".tmp-"


class CacheError(RuntimeError):
    """The cache is missing, was built with other settings, or an entry is incomplete."""


def settings_hash(settings: Mapping[str, Any]) -> str:
    """Short stable hash of the settings (key order does not matter) and the cache format."""
    payload = json.dumps({"format": CACHE_FORMAT, **settings}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def settings_record(settings: Mapping[str, Any]) -> dict[str, Any]:
    """What settings.json holds: the settings, the cache format and their hash."""
    return {**settings, "format": CACHE_FORMAT, "hash": settings_hash(settings)}


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}{_TMP_MARK}{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def read_settings(cache_dir: str | Path) -> dict[str, Any] | None:
    """settings.json as a dict, or None when there is none."""
    path = Path(cache_dir) / SETTINGS_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CacheError(f"{path} is unreadable ({exc}); {REBUILD_HINT}") from exc


def write_settings(cache_dir: str | Path, settings: Mapping[str, Any]) -> None:
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    write_json_atomic(Path(cache_dir) / SETTINGS_FILE, settings_record(settings))


def settings_differences(recorded: Mapping[str, Any], settings: Mapping[str, Any]) -> list[str]:
    """Human-readable 'key: cache X, requested Y' lines; empty when the cache matches."""
    expected = settings_record(settings)
    keys = sorted((set(recorded) | set(expected)) - {"hash"})
    diffs = [f"{k}: cache {recorded.get(k, '<absent>')!r}, requested {expected.get(k, '<absent>')!r}"
             for k in keys if recorded.get(k, "<absent>") != expected.get(k, "<absent>")]
    if not diffs and recorded.get("hash") != expected["hash"]:
        diffs.append(f"hash: cache {recorded.get('hash')!r}, requested {expected['hash']!r}")
    return diffs


def check_settings(cache_dir: str | Path, settings: Mapping[str, Any]) -> None:
    """Raise ``CacheError`` unless ``cache_dir/settings.json`` exists and records exactly ``settings``."""
    recorded = read_settings(cache_dir)
    if recorded is None:
        raise CacheError(f"no preprocessed cache at {cache_dir} ({SETTINGS_FILE} missing); build it with "
                         f"`python preprocess.py data=...`")
    diffs = settings_differences(recorded, settings)
    if diffs:
        raise CacheError(f"the cache at {cache_dir} was built with other preprocessing settings:\n  "
                         + "\n  ".join(diffs) + f"\n{REBUILD_HINT}")


def clips_dir(cache_dir: str | Path) -> Path:
    return Path(cache_dir) / CLIPS_DIR


def entry_dir(cache_dir: str | Path, stem: str) -> Path:
    return clips_dir(cache_dir) / stem


def is_complete(entry: Path) -> bool:
    return entry.is_dir() and all((entry / name).is_file() for name in ENTRY_FILES)


def cached_clips(cache_dir: str | Path) -> list[str]:
    """Stems of the complete entries, sorted (temporary directories are ignored)."""
    root = clips_dir(cache_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and is_complete(p))


def write_entry(cache_dir: str | Path, stem: str, frames: np.ndarray, mfcc: np.ndarray,
                meta: Mapping[str, Any]) -> Path:
    """Write frames uint8 (T, S, S, 3), mfcc float32 (n_mfcc, L) and meta under a temporary name, then rename.

    If another writer finished the same entry first, its entry is kept and ours discarded.
    """
    final = entry_dir(cache_dir, stem)
    tmp = clips_dir(cache_dir) / f".{stem}{_TMP_MARK}{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        np.save(tmp / "frames.npy", np.ascontiguousarray(frames, dtype=np.uint8))
        np.save(tmp / "mfcc.npy", np.ascontiguousarray(mfcc, dtype=np.float32))
        (tmp / "meta.json").write_text(json.dumps(dict(meta), indent=2) + "\n")
        os.rename(tmp, final)
    except OSError:
        if is_complete(final):
            shutil.rmtree(tmp, ignore_errors=True)
            return final
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temps(cache_dir: str | Path) -> list[str]:
    """Remove temporary entries and files left by interrupted runs (their writer process is gone).

    Returns the names removed. Two runs writing the same cache at once are not supported; a live writer's
    temporary directory is left alone anyway.
    """
    removed = []
    for folder in (Path(cache_dir), clips_dir(cache_dir)):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if not p.name.startswith(".") or _TMP_MARK not in p.name:
                continue
            pid_text = p.name.rsplit(_TMP_MARK, 1)[1]
            if pid_text.isdigit() and int(pid_text) != os.getpid() and _pid_alive(int(pid_text)):
                continue
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p.name)
    return removed


def clear_entries(cache_dir: str | Path) -> None:
    """Delete every clip entry and the report (used by force=True before the new settings are stamped)."""
    root = clips_dir(cache_dir)
    if root.is_dir():
        # rename first so that an interrupt leaves either the old directory or none, never a half-deleted one
        trash = Path(cache_dir) / f".clips-old{_TMP_MARK}{os.getpid()}"
        os.rename(root, trash)
        shutil.rmtree(trash)
    (Path(cache_dir) / REPORT_FILE).unlink(missing_ok=True)


def load_clip(cache_dir: str | Path, stem: str, mmap: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Read one entry -> (frames uint8 (T, S, S, 3), mfcc float32 (n_mfcc, L)); memory-mapped read-only when mmap."""
    entry = entry_dir(cache_dir, stem)
    if not is_complete(entry):
        raise CacheError(f"no complete cache entry for {stem} in {clips_dir(cache_dir)}")
    mode = "r" if mmap else None
    return np.load(entry / "frames.npy", mmap_mode=mode), np.load(entry / "mfcc.npy", mmap_mode=mode)


def load_meta(cache_dir: str | Path, stem: str) -> dict[str, Any]:
    """meta.json of one entry."""
    return json.loads((entry_dir(cache_dir, stem) / "meta.json").read_text())
