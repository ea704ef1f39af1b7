"""The preprocessed cache on disk (layout in docs/contracts.md): settings stamp, atomic clip entries, reading back.

```
<cache_dir>/settings.json            settings that shaped the cache + "format" + "hash"
<cache_dir>/corpus.json              the corpus the entries were made from: {"root", "fingerprint", "clips"}
<cache_dir>/preprocess_report.json   written by cfnsr.data.preprocess
<cache_dir>/clips/<stem>/frames.npy  uint8 (T, S, S, 3)
<cache_dir>/clips/<stem>/mfcc.npy    float32 (n_mfcc, L)
<cache_dir>/clips/<stem>/audio.npy   int16 (N,): the MFCC's audio window (offset, duration at sample_rate) x 32767
<cache_dir>/clips/<stem>/meta.json   {"stem", "actor", "label", "face_source", ..., "sources", "format", "files"}
```
An entry is written under ``clips/.<stem>.tmp-<pid>@<host>/`` and renamed into place, so ``clips/<stem>/`` exists
only when complete and an interrupted run leaves nothing half-written that a later run or the data module could
trust. The writer's host is in the name because a cache on a shared filesystem is seen by processes of several
machines: a pid says whether a writer lives only on its own host (see ``clean_stale_temps``).

``sources`` (``cfnsr.data.source_identity``) is the identity of the mp4 and landmark CSV the entry was made from; the corpus
they form is recorded in corpus.json (beside settings.json, which keeps the exact layout older code compares).

``meta.json`` records the entry format and, for frames.npy, mfcc.npy and audio.npy, the facts written with them
(``files: {name: {bytes, shape, dtype, sha256}}``), so a file damaged later (truncated copy, bad disk, a stray
write) is found: ``verify_entry`` checks the cheap facts (files present, sizes, meta parses, format) or also the
checksums, and ``load_clip`` refuses any entry that does not match with a ``CacheError`` naming it and the reason.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cfnsr.data.features import dequantize_audio
from cfnsr.data.worker_pool import pid_alive
from cfnsr.files import TMP_MARK, tmp_path, write_text_atomic

# Bump when the entry layout changes: it is part of the hash, so old caches are refused. 2: meta.json records the
# entry format and the size/shape/dtype/sha256 of its arrays. 3: entries also keep the raw audio window (audio.npy).
CACHE_FORMAT = 3
# What each format added, quoted when an older cache is refused.
FORMAT_CHANGES = {
    3: "format 3 entries also keep audio.npy, the raw audio window of the MFCC (the robustness suite's audio "
       "corruptions need it)",
}
SETTINGS_FILE = "settings.json"
REPORT_FILE = "preprocess_report.json"
CLIPS_DIR = "clips"
ARRAY_FILES = ("frames.npy", "mfcc.npy", "audio.npy")
ENTRY_FILES = (*ARRAY_FILES, "meta.json")
_DTYPES = {"frames.npy": np.uint8, "mfcc.npy": np.float32, "audio.npy": np.int16}
_HASH_CHUNK = 1 << 20
# A temporary entry of another host (or of unknown host) is abandoned when nothing was written into it for this
# long: writing one entry takes seconds, and its folder's mtime changes with every file written into it.
STALE_TEMP_SECONDS = 3600.0
# A temporary without a host (settings.json and the report are written through cfnsr.files, whose temporaries name
# the pid only; older code named entries so too) is left alone this long even when no local process has its pid:
# it may be another host's, and those writers finish within milliseconds to seconds.
HOSTLESS_GRACE_SECONDS = 120.0
CORPUS_FILE = "corpus.json"  # the corpus the cache was built from (not a setting: not compared, not hashed)
REBUILD_HINT = "rebuild it with `python preprocess.py data=... preprocess.force=true`"
AUDIO_REBUILD_HINT = ("rebuild the cache with `python preprocess.py data=<dataset> data.root=<corpus> "
                      "preprocess.force=true` (the same settings as the run)")


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
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


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


def read_corpus(cache_dir: str | Path) -> dict[str, Any] | None:
    """corpus.json (root, fingerprint, clips of the corpus the cache was built from); None when absent or unreadable
    (a cache written before it existed: its entries are checked one by one anyway)."""
    try:
        corpus = json.loads((Path(cache_dir) / CORPUS_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return corpus if isinstance(corpus, dict) else None


def write_corpus(cache_dir: str | Path, corpus: Mapping[str, Any]) -> bool:
    """Record in corpus.json the corpus the cache now holds (root, fingerprint, clips); True when it changed."""
    if read_corpus(cache_dir) == dict(corpus):
        return False
    write_json_atomic(Path(cache_dir) / CORPUS_FILE, dict(corpus))
    return True


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
                         + "\n  ".join(diffs) + format_note(recorded.get("format")) + f"\n{REBUILD_HINT}")


def format_note(found: Any) -> str:
    """What the formats after ``found`` added (one line each, with a leading newline), or "" when none."""
    if not isinstance(found, int) or isinstance(found, bool) or found >= CACHE_FORMAT:
        return ""
    return "".join(f"\n({FORMAT_CHANGES[f]})" for f in range(found + 1, CACHE_FORMAT + 1) if f in FORMAT_CHANGES)


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


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _file_facts(path: Path, arr: np.ndarray) -> dict[str, Any]:
    return {"bytes": path.stat().st_size, "shape": list(arr.shape), "dtype": str(arr.dtype),
            "sha256": file_sha256(path)}


def _save_npy(path: Path, arr: np.ndarray) -> None:
    """np.save through Python's own write: numpy's ``tofile`` reports a full disk as an OSError without errno
    ("N requested and M written"), which cannot be told from a clip's defect; ``write`` raises ENOSPC with the path."""
    buffer = io.BytesIO()
    np.save(buffer, arr)
    _write_bytes(path, buffer.getbuffer())


def _write_bytes(path: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path``; an OSError names the file (``write`` alone raises ENOSPC without it)."""
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as exc:
        if exc.filename is not None:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def write_entry(cache_dir: str | Path, stem: str, frames: np.ndarray, mfcc: np.ndarray,
                meta: Mapping[str, Any], *, audio: np.ndarray) -> Path:
    """Write frames uint8 (T, S, S, 3), mfcc float32 (n_mfcc, L), audio int16 (N,) (the MFCC's window, quantised
    with ``cfnsr.data.features.quantize_audio``; meta should record its scale) and meta under a temporary name,
    then rename.

    meta.json gets ``format`` and ``files`` (byte size, shape, dtype and sha256 of each array file) added.
    If another writer finished the same entry first, its entry is kept and ours discarded.
    """
    final = entry_dir(cache_dir, stem)
    tmp = host_tmp_path(final)  # a folder here: written whole, then renamed (os.rename of a folder is atomic too)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        files = {}
        for name, arr in (("frames.npy", frames), ("mfcc.npy", mfcc), ("audio.npy", audio)):
            arr = np.ascontiguousarray(arr, dtype=_DTYPES[name])
            _save_npy(tmp / name, arr)
            files[name] = _file_facts(tmp / name, arr)
        record = {**dict(meta), "format": CACHE_FORMAT, "files": files}
        _write_bytes(tmp / "meta.json", (json.dumps(record, indent=2) + "\n").encode())
        os.rename(tmp, final)
    except OSError:
        if is_complete(final):
            shutil.rmtree(tmp, ignore_errors=True)
            return final
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def host_tmp_path(final: Path) -> Path:
    """``.<name>.tmp-<pid>@<host>``: the temporary sibling of ``final`` for this process on this host."""
    return final.with_name(f"{tmp_path(final).name}@{socket.gethostname()}")


def update_sources(cache_dir: str | Path, stem: str, sources: Mapping[str, Any]) -> None:
    """Rewrite one entry's meta.json with the current identity of its sources (same content, new size/mtime or an
    entry made before sources were recorded). meta.json is not among the checksummed files, so nothing else
    changes."""
    path = entry_dir(cache_dir, stem) / "meta.json"
    meta = json.loads(path.read_text())
    meta["sources"] = dict(sources)
    write_text_atomic(path, json.dumps(meta, indent=2) + "\n")


def remove_entry(cache_dir: str | Path, stem: str) -> None:
    """Delete one entry: renamed out of the way first, so no half-deleted entry is ever seen as complete."""
    final = entry_dir(cache_dir, stem)
    if not final.exists():
        return
    trash = clips_dir(cache_dir) / f".{stem}.old{TMP_MARK}{os.getpid()}@{socket.gethostname()}"
    if trash.exists():
        shutil.rmtree(trash)
    os.rename(final, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _read_meta(entry: Path) -> tuple[dict[str, Any] | None, str | None]:
    try:
        meta = json.loads((entry / "meta.json").read_text())
    except FileNotFoundError:
        return None, "meta.json is missing"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"meta.json is unreadable ({type(exc).__name__}: {exc})"
    if not isinstance(meta, dict):
        return None, f"meta.json holds a {type(meta).__name__}, not an object"
    return meta, None


def check_entry(cache_dir: str | Path, stem: str, full: bool = False) -> tuple[dict[str, Any] | None, str | None]:
    """(meta, None) when the entry passes the checks, else (meta or None, reason).

    Cheap (``full=False``): the entry files are present, meta.json parses, its format is ``CACHE_FORMAT`` and the
    byte size of each array file is the one recorded. ``full=True`` also compares each file's sha256 (reads it all).
    """
    entry = entry_dir(cache_dir, stem)
    if not entry.is_dir():
        return None, "entry missing"
    meta, reason = _read_meta(entry)
    if meta is None:
        return None, reason
    found = meta.get("format")
    if found != CACHE_FORMAT:
        return meta, (f"entry format {found if found is not None else '<absent>'} in meta.json, this code reads "
                      f"format {CACHE_FORMAT}")
    files = meta.get("files")
    if not isinstance(files, dict):
        return meta, "meta.json has no file facts ('files')"
    for name in ARRAY_FILES:
        facts = files.get(name)
        if not isinstance(facts, dict) or not {"bytes", "shape", "dtype", "sha256"} <= set(facts):
            return meta, f"meta.json has no size/shape/dtype/sha256 for {name}"
        path = entry / name
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return meta, f"{name} is missing"
        except OSError as exc:
            return meta, f"{name} cannot be read ({exc})"
        if size != facts["bytes"]:
            return meta, f"{name} has {size} bytes, meta.json records {facts['bytes']} (truncated or overwritten)"
        if full:
            try:
                digest = file_sha256(path)
            except OSError as exc:
                return meta, f"{name} cannot be read ({exc})"
            if digest != facts["sha256"]:
                return meta, f"{name} content differs from its sha256 in meta.json (corrupted)"
    return meta, None


def verify_entry(cache_dir: str | Path, stem: str, full: bool = False) -> str | None:
    """None when the entry ``stem`` is sound, else the reason it is not (see ``check_entry``)."""
    return check_entry(cache_dir, stem, full)[1]


def _writer_alive(p: Path, now: float) -> bool:
    """Whether the process that names ``p`` (``...tmp-<pid>[@<host>]``) may still be writing it.

    A pid is checked only on its own host; a temp of another host counts as alive until nothing was written into it
    for ``STALE_TEMP_SECONDS``; one without a host (``cfnsr.files`` temporaries, older code) while a local process
    has its pid or for ``HOSTLESS_GRACE_SECONDS`` after its last write.
    """
    owner = p.name.rsplit(TMP_MARK, 1)[1]
    pid_text, _, host = owner.partition("@")
    local = pid_text.isdigit() and int(pid_text) != os.getpid() and pid_alive(int(pid_text))
    if host == socket.gethostname():
        return local
    try:
        age = now - p.stat().st_mtime
    except OSError:
        return False
    return age < (STALE_TEMP_SECONDS if host else HOSTLESS_GRACE_SECONDS) or (not host and local)


def clean_stale_temps(cache_dir: str | Path) -> list[str]:
    """Remove temporary entries and files left by interrupted runs (their writer is gone).

    Returns the names removed. A temp of this host is abandoned when its pid is gone; one of another host (the cache
    on a shared filesystem) only when it was not written for ``STALE_TEMP_SECONDS``, since that host's pids cannot
    be checked from here. Only global rank 0 prepares the cache in a run (``cfnsr.builders.corpus.prepare_data``).
    """
    removed = []
    now = time.time()
    for folder in (Path(cache_dir), clips_dir(cache_dir)):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if not p.name.startswith(".") or TMP_MARK not in p.name:
                continue
            if _writer_alive(p, now):
                continue
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p.name)
    return removed


def clear_entries(cache_dir: str | Path) -> None:
    """Delete every clip entry, the report and corpus.json (force=True, before the new settings are stamped)."""
    root = clips_dir(cache_dir)
    if root.is_dir():
        # rename first so that an interrupt leaves either the old directory or none, never a half-deleted one
        trash = Path(cache_dir) / f".clips-old{TMP_MARK}{os.getpid()}@{socket.gethostname()}"
        os.rename(root, trash)
        shutil.rmtree(trash)
    (Path(cache_dir) / REPORT_FILE).unlink(missing_ok=True)
    (Path(cache_dir) / CORPUS_FILE).unlink(missing_ok=True)


def load_clip(cache_dir: str | Path, stem: str, mmap: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Read one entry -> (frames uint8 (T, S, S, 3), mfcc float32 (n_mfcc, L)); memory-mapped read-only when mmap.

    Raises ``CacheError`` naming the entry and the reason for any failure: no entry, unreadable or old-format
    meta.json, a file missing or of another size than recorded, a file numpy cannot read, or an array whose shape
    or dtype differs from meta.json.
    """
    entry = entry_dir(cache_dir, stem)
    meta, reason = check_entry(cache_dir, stem)
    if reason is not None and not is_complete(entry):
        raise CacheError(f"no complete cache entry for {stem} in {clips_dir(cache_dir)} ({reason})")
    if reason is not None:
        raise CacheError(f"cache entry {entry}: {reason}; re-run preprocessing to rebuild it")
    assert meta is not None
    mode = "r" if mmap else None
    arrays = []
    for name in ("frames.npy", "mfcc.npy"):
        try:
            arr = np.load(entry / name, mmap_mode=mode, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - numpy raises ValueError/OSError/EOFError/... for damaged files
            raise CacheError(f"cache entry {entry}: {name} cannot be read ({type(exc).__name__}: {exc}); re-run "
                             f"preprocessing to rebuild it") from exc
        facts = meta["files"][name]
        if list(arr.shape) != list(facts["shape"]) or str(arr.dtype) != facts["dtype"]:
            raise CacheError(f"cache entry {entry}: {name} holds shape {list(arr.shape)} {arr.dtype}, meta.json "
                             f"records shape {facts['shape']} {facts['dtype']}; re-run preprocessing to rebuild it")
        arrays.append(arr)
    return arrays[0], arrays[1]


def load_audio(cache_dir: str | Path, stem: str) -> np.ndarray:
    """The raw audio window of one entry -> float32 (N,) (audio.npy divided by the scale in meta.json).

    This is the window the cached MFCC was computed from (after ``audio_offset``, ``audio_duration`` seconds at
    ``sample_rate``), quantised to int16 (``cfnsr.data.features.quantize_audio``). Raises ``CacheError`` naming the
    entry: a cache written before format 3 has no audio.npy (the message says how to rebuild it); otherwise the
    same checks as ``load_clip``.
    """
    entry = entry_dir(cache_dir, stem)
    meta, reason = check_entry(cache_dir, stem)
    if entry.is_dir() and not (entry / "audio.npy").is_file():
        found = meta.get("format") if meta is not None else None
        raise CacheError(
            f"cache entry {entry}: audio.npy is missing (entry format {found if found is not None else '<absent>'}; "
            f"cache format {CACHE_FORMAT} keeps the raw audio window there, which the audio corruptions need); "
            f"{AUDIO_REBUILD_HINT}")
    if reason is not None and not is_complete(entry):
        raise CacheError(f"no complete cache entry for {stem} in {clips_dir(cache_dir)} ({reason})")
    if reason is not None:
        raise CacheError(f"cache entry {entry}: {reason}; re-run preprocessing to rebuild it")
    assert meta is not None
    try:
        arr = np.load(entry / "audio.npy", allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - as load_clip
        raise CacheError(f"cache entry {entry}: audio.npy cannot be read ({type(exc).__name__}: {exc}); re-run "
                         f"preprocessing to rebuild it") from exc
    facts = meta["files"]["audio.npy"]
    if list(arr.shape) != list(facts["shape"]) or str(arr.dtype) != facts["dtype"] or arr.ndim != 1:
        raise CacheError(f"cache entry {entry}: audio.npy holds shape {list(arr.shape)} {arr.dtype}, meta.json "
                         f"records shape {facts['shape']} {facts['dtype']}; re-run preprocessing to rebuild it")
    scale = meta.get("audio_scale")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise CacheError(f"cache entry {entry}: meta.json has no valid audio_scale ({scale!r}); re-run "
                         f"preprocessing to rebuild it")
    return dequantize_audio(arr, scale)


def load_meta(cache_dir: str | Path, stem: str) -> dict[str, Any]:
    """meta.json of one entry; ``CacheError`` naming the entry when it is missing or unreadable."""
    entry = entry_dir(cache_dir, stem)
    meta, reason = _read_meta(entry)
    if meta is None:
        raise CacheError(f"cache entry {entry}: {reason}")
    return meta
