"""RAVDESS -> preprocessed cache: face crops (T, S, S, 3) and MFCC (n_mfcc, L) per full-AV speech clip.

Pipeline per clip (one worker process each): find its OpenFace CSV -> decode the mp4 once (frames at k*D/T + audio)
-> MFCC of the 0.5 s + 2.45 s window -> landmark (or detector) box per frame -> crops -> atomic cache entry.
A clip that cannot be used is skipped with a reason and the run goes on; ``preprocess_report.json`` lists them.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import traceback
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cfnsr.data import cache
from cfnsr.data.cache import REPORT_FILE, CacheError, cached_clips, load_clip  # re-exported for callers
from cfnsr.data.faces import crop_faces, detect_extents
from cfnsr.data.features import HEAVY_MODULES, AudioTooShortError, clip_mfcc
from cfnsr.data.landmarks import LandmarkError, Landmarks, find_landmark_csv, read_openface_csv, rows_for_times
from cfnsr.data.media import DecodedClip, MediaError, decode_clip
from cfnsr.data.ravdess import RavdessName, RavdessNameError, parse_name

__all__ = [
    "PreprocessSettings", "PreprocessError", "NotRavdessError", "NoUsableClipsError", "CacheError",
    "preprocess_corpus", "check_cache", "cached_clips", "load_clip", "format_report", "discover_clips",
]


class PreprocessError(RuntimeError):
    """The corpus as a whole cannot be preprocessed."""


class NotRavdessError(PreprocessError):
    """The root has no Actor_* folders or no mp4 with a RAVDESS name."""


class NoUsableClipsError(PreprocessError):
    """Every clip was skipped: the cache would be empty."""


_INT_FIELDS = ("frames", "size", "sample_rate", "n_mfcc", "n_fft", "hop_length")
_FLOAT_FIELDS = ("crop_margin", "audio_offset", "audio_duration")


@dataclass(frozen=True)
class PreprocessSettings:
    """Everything that shapes the cache; its dict and hash go to settings.json. Paper values by default.

    The public code's quirks are options, off by default: ``squash_before_crop=True`` (resize the whole 1280x720
    frame to size x size, then cut the landmark box from it and enlarge it), ``crop_margin=0`` (tight box),
    ``channel_order="bgr"`` (what its cv2.imwrite/imread round trip fed the network).
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
    face_fallback: str = "haar"  # "haar": OpenCV detector when a clip has no CSV; "none": skip such clips

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
        if self.channel_order not in ("rgb", "bgr"):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {self.channel_order!r}")
        if self.face_fallback not in ("haar", "none"):
            raise ValueError(f"face_fallback must be 'haar' or 'none', got {self.face_fallback!r}")
        for name in _INT_FIELDS:
            if getattr(self, name) <= 0:
                raise ValueError(f"preprocess setting {name} must be positive, got {getattr(self, name)}")
        if self.crop_margin < 0 or self.audio_offset < 0 or self.audio_duration <= 0:
            raise ValueError("crop_margin and audio_offset must be >= 0 and audio_duration > 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def hash(self) -> str:
        return cache.settings_hash(self.to_dict())


@dataclass(frozen=True)
class ClipJob:
    """One clip to process; plain data so that it pickles to worker processes."""

    path: str
    rel: str  # path relative to the corpus root, used in the report
    name: RavdessName
    root: str
    cache_dir: str
    settings: PreprocessSettings
    threads: int  # decoder threads


def _skip(file: str, kind: str, reason: str) -> dict[str, str]:
    return {"file": file, "kind": kind, "reason": reason}


def _skip_reason_for_name(name: RavdessName) -> tuple[str, str] | None:
    if name.modality == 2:
        return "video-only", "video-only clip (modality 02, no audio): the paper uses full-AV 01-01-* only"
    if name.modality == 3:
        return "audio-only", "audio-only clip (modality 03): the paper uses full-AV 01-01-* only"
    if name.vocal_channel == 2:
        return "song", "song clip (vocal channel 02): the paper uses speech 01-01-* only"
    return None


def discover_clips(root: str | Path) -> tuple[list[tuple[Path, RavdessName]], list[dict[str, str]], int]:
    """Walk ``root/Actor_*/*.mp4``.

    Returns (full-AV speech clips to process as (path, name), skipped [{file, kind, reason}], mp4 files found).
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
        for path in sorted(p for p in actor_dir.iterdir() if p.is_file() and p.suffix.lower() == ".mp4"):
            n_found += 1
            rel = path.relative_to(root).as_posix()
            try:
                name = parse_name(path.name)
            except RavdessNameError as exc:
                skipped.append(_skip(rel, "invalid-name", f"invalid RAVDESS name: {exc}"))
                continue
            n_named += 1
            why = _skip_reason_for_name(name)
            if why is not None:
                skipped.append(_skip(rel, *why))
            elif name.stem in seen:
                skipped.append(_skip(rel, "duplicate", f"{path.name}: same clip as {seen[name.stem]}, kept that one"))
            else:
                seen[name.stem] = rel
                keep.append((path, name))
    if n_named == 0:
        raise NotRavdessError(f"{root} does not look like RAVDESS: {n_found} mp4 file(s) under "
                              f"{len(actor_dirs)} Actor_* folder(s), none with a valid RAVDESS name "
                              f"(MM-VV-EE-II-SS-RR-AA.mp4)")
    return keep, skipped, n_found


def _landmark_extents(job: ClipJob, landmarks: Landmarks, csv: Path, clip: DecodedClip
                      ) -> tuple[np.ndarray, dict[str, Any]]:
    """Landmark box of each sampled frame -> float32 (T, 4) [x0, y0, x1, y1] and details for meta.json."""
    rows = rows_for_times(landmarks, clip.frame_times, clip.duration)
    extents = landmarks.extents(rows)
    cx, cy = (extents[:, 0] + extents[:, 2]) / 2, (extents[:, 1] + extents[:, 3]) / 2
    if np.any((cx < 0) | (cx > clip.width) | (cy < 0) | (cy > clip.height)):
        # a box shifted into the frame would silently crop the wrong region
        raise LandmarkError(f"{csv.name}: landmarks lie outside the {clip.width}x{clip.height} frame (CSV of "
                            f"another video or resolution?)")
    info = {"landmark_csv": Path(os.path.relpath(csv, job.root)).as_posix(), "landmark_rows": rows.tolist(),
            "landmark_rows_interpolated": landmarks.n_interpolated, "landmark_rows_total": landmarks.n_rows}
    return extents, info


def _skipped(job: ClipJob, kind: str, reason: str) -> dict[str, Any]:
    return {"status": "skipped", **_skip(job.rel, kind, reason)}


def process_clip(job: ClipJob) -> dict[str, Any]:
    """Process one clip into its cache entry. Never raises: failures come back as a skip with a reason."""
    start, cpu_start = time.perf_counter(), time.process_time()
    s = job.settings
    fname = Path(job.path).name
    try:
        # the CSV first: it is cheap and a bad one makes the decode pointless
        csv = find_landmark_csv(job.root, job.name)
        landmarks = None
        if csv is not None:
            landmarks = read_openface_csv(csv)
        elif s.face_fallback == "none":
            return _skipped(job, "no-landmarks", (
                f"{fname}: no landmark CSV (looked for landmarks/{job.name.stem}.csv, landmarks/Actor_XX/ and "
                f"Actor_XX/) and face_fallback=none"))
        clip = decode_clip(job.path, s.frames, s.sample_rate, with_audio=True, threads=job.threads)
        assert clip.audio is not None
        mfcc = clip_mfcc(clip.audio, s.sample_rate, s.audio_offset, s.audio_duration, s.n_mfcc, s.n_fft,
                         s.hop_length)
        if landmarks is not None:
            assert csv is not None
            extents, info = _landmark_extents(job, landmarks, csv, clip)
            source = "landmarks"
        else:
            extents, info = detect_extents(clip.frames), {"landmark_csv": None}
            source = "detector" if extents is not None else "center"
        crops = crop_faces(clip.frames, extents, s.size, s.crop_margin, s.squash_before_crop)
        if s.channel_order == "bgr":
            crops = np.ascontiguousarray(crops[..., ::-1])
        meta = {
            "stem": job.name.stem, "actor": job.name.actor, "label": job.name.label, "face_source": source,
            "source": job.rel, "settings_hash": s.hash, "duration": clip.duration, "fps": clip.fps,
            "width": clip.width, "height": clip.height, "frame_times": [round(t, 4) for t in clip.frame_times],
            "frames_shape": list(crops.shape), "mfcc_shape": list(mfcc.shape), **info,
        }
        cache.write_entry(job.cache_dir, job.name.stem, crops, mfcc, meta)
    except MediaError as exc:
        text = str(exc)
        kind = "no-audio" if "no audio stream" in text else "no-video" if "no video stream" in text else "decode"
        return _skipped(job, kind, text)
    except AudioTooShortError as exc:
        return _skipped(job, "audio-too-short", f"{fname}: {exc}")
    except LandmarkError as exc:
        return _skipped(job, "landmarks", f"{fname}: unusable landmark CSV: {exc}")
    except Exception as exc:  # noqa: BLE001 - one bad clip must not stop a 1440-clip run
        last = traceback.extract_tb(exc.__traceback__)[-1]
        return _skipped(job, "error", (
            f"{fname}: unexpected {type(exc).__name__}: {exc} (at {Path(last.filename).name}:{last.lineno})"))
    return {"status": "ok", "stem": job.name.stem, "file": job.rel, "face_source": source,
            "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu_start}


def _worker_init() -> None:
    # one process per core: library thread pools would only fight over the same cores
    import cv2

    cv2.setNumThreads(1)


def _run_jobs(jobs: list[ClipJob], workers: int, progress: bool):
    """Yields each job's result as it completes, in-process (workers <= 1) or over a process pool."""
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc="preprocess", unit="clip", disable=not progress, dynamic_ncols=True)
    try:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                result = process_clip(job)
                bar.update(1)
                yield result
            return
        # Not "fork": OpenCV's thread pool, once used in the parent, deadlocks in forked children. The fork
        # server is a fresh interpreter that imports this module once and forks the workers from there.
        if "forkserver" in mp.get_all_start_methods():
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload([__name__, *HEAVY_MODULES])
        else:
            ctx = mp.get_context("spawn")
        # an executor, not mp.Pool: a worker that dies (OOM, crash in a codec) surfaces as BrokenProcessPool
        # instead of being respawned forever
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx,
                                 initializer=_worker_init) as pool:
            futures = [pool.submit(process_clip, job) for job in jobs]
            try:
                for future in as_completed(futures):
                    result = future.result()
                    bar.update(1)
                    yield result
            except BrokenProcessPool as exc:
                raise PreprocessError("a preprocessing worker process died (out of memory?); the finished "
                                      "clips are cached, re-run to resume") from exc
            finally:
                for future in futures:
                    future.cancel()
    finally:
        bar.close()


def _prepare_cache(cache_dir: Path, settings: PreprocessSettings, force: bool) -> None:
    """Stamp settings.json before any entry is written; refuse to mix entries built with other settings."""
    if force:
        cache.clear_entries(cache_dir)  # old entries first, so an interrupted force run never mixes settings
        cache.write_settings(cache_dir, settings.to_dict())
        return
    recorded = cache.read_settings(cache_dir)
    if recorded is None:
        if cached_clips(cache_dir):
            raise CacheError(f"{cache_dir} holds clip entries but no settings.json, so their settings are "
                             f"unknown; {cache.REBUILD_HINT}")
        cache.write_settings(cache_dir, settings.to_dict())
        return
    cache.check_settings(cache_dir, settings.to_dict())


def preprocess_corpus(root: str | Path, cache_dir: str | Path, settings: PreprocessSettings, workers: int = 2,
                      force: bool = False, progress: bool = True) -> dict[str, Any]:
    """Build (or complete) the cache for every full-AV speech clip under ``root``; returns the report.

    Existing complete entries are kept (an interrupted run resumes); ``force=True`` deletes them and redoes
    everything. Raises ``NotRavdessError`` for a root that is not RAVDESS, ``CacheError`` when the cache was built
    with other settings (and not force), ``NoUsableClipsError`` when no clip could be used (report written first).
    """
    started = time.perf_counter()
    root, cache_dir = Path(root), Path(cache_dir)
    candidates, skipped, n_found = discover_clips(root)
    cache_dir.mkdir(parents=True, exist_ok=True)
    _prepare_cache(cache_dir, settings, force)
    cache.clean_stale_temps(cache_dir)

    done = set(cached_clips(cache_dir))
    reused = sorted(name.stem for _, name in candidates if name.stem in done)
    threads = 0 if workers <= 1 else 1
    jobs = [ClipJob(str(path), path.relative_to(root).as_posix(), name, str(root), str(cache_dir), settings, threads)
            for path, name in candidates if name.stem not in done]

    processed: list[str] = []
    sources: dict[str, str] = {}
    seconds: list[tuple[float, float]] = []  # (wall, cpu) per processed clip
    for result in _run_jobs(jobs, workers, progress):
        if result["status"] == "ok":
            processed.append(result["stem"])
            sources[result["stem"]] = result["face_source"]
            seconds.append((result["seconds"], result["cpu_seconds"]))
        else:
            skipped.append({k: result[k] for k in ("file", "kind", "reason")})
    for stem in reused:
        sources[stem] = cache.load_meta(cache_dir, stem).get("face_source", "landmarks")

    elapsed = time.perf_counter() - started
    report = _build_report(root, cache_dir, settings, n_found, sorted(processed), reused, skipped, sources,
                           seconds, elapsed, workers)
    cache.write_json_atomic(cache_dir / REPORT_FILE, report)
    if not processed and not reused:
        raise NoUsableClipsError(f"no usable clip under {root}: all {len(skipped)} mp4 file(s) were skipped "
                                 f"(see {cache_dir / REPORT_FILE})\n" + format_report(report))
    return report


def _build_report(root: Path, cache_dir: Path, settings: PreprocessSettings, n_found: int, processed: list[str],
                  reused: list[str], skipped: list[dict[str, str]], sources: dict[str, str],
                  seconds: list[tuple[float, float]], elapsed: float, workers: int) -> dict[str, Any]:
    skipped = sorted(skipped, key=lambda s: s["file"])
    detector = sorted(s for s, src in sources.items() if src == "detector")
    center = sorted(s for s, src in sources.items() if src == "center")
    return {
        "root": str(root), "cache_dir": str(cache_dir), "settings": settings.to_dict(),
        "settings_hash": settings.hash, "workers": workers,
        "counts": {
            "mp4_found": n_found, "usable": len(processed) + len(reused), "processed": len(processed),
            "reused": len(reused), "skipped": len(skipped), "fallback_detector": len(detector),
            "center_crop": len(center), "skipped_by_kind": dict(sorted(Counter(s["kind"] for s in skipped).items())),
        },
        "processed": processed, "reused": reused, "skipped": skipped,
        "fallback_detector": detector, "center_crop": center,
        "elapsed_s": round(elapsed, 3),
        # per processed clip, inside its worker: wall time and CPU time (all threads of the worker process)
        "clip_seconds_mean": round(float(np.mean([w for w, _ in seconds])), 4) if seconds else None,
        "clip_cpu_seconds_mean": round(float(np.mean([c for _, c in seconds])), 4) if seconds else None,
    }


def format_report(report: dict[str, Any]) -> str:
    """A few lines for the terminal: totals, skips grouped by kind, the first skipped files, fallbacks."""
    c = report["counts"]
    lines = [f"preprocess: {c['usable']} usable clip(s) in {report['cache_dir']} ({c['processed']} new, "
             f"{c['reused']} already cached), {c['skipped']} skipped of {c['mp4_found']} mp4, "
             f"{report['elapsed_s']:.1f} s"]
    if c["skipped_by_kind"]:
        lines.append("  skipped: " + ", ".join(f"{n} {kind}" for kind, n in c["skipped_by_kind"].items()))
        problems = [s for s in report["skipped"] if s["kind"] not in ("video-only", "audio-only", "song")]
        for s in problems[:10]:
            lines.append(f"    {s['reason']}")  # every reason starts with the file name
        if len(problems) > 10:
            lines.append(f"    ... {len(problems) - 10} more in preprocess_report.json")
    if c["fallback_detector"] or c["center_crop"]:
        line = (f"  no landmark CSV: {c['fallback_detector']} clip(s) cropped with the face detector, "
                f"{c['center_crop']} centre-cropped (no face found)")
        if report["center_crop"]:
            line += ": " + ", ".join(report["center_crop"][:5]) + (" ..." if c["center_crop"] > 5 else "")
        lines.append(line)
    return "\n".join(lines)


def check_cache(cache_dir: str | Path, settings: PreprocessSettings) -> None:
    """Raise ``CacheError`` (saying how to rebuild) unless the cache's settings.json matches ``settings``."""
    cache.check_settings(cache_dir, settings.to_dict())
