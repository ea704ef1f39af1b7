"""RAVDESS -> preprocessed cache: face crops (T, S, S, 3), MFCC (n_mfcc, L) and the raw audio window per full-AV
speech clip.

Pipeline per clip (one worker process each): find its OpenFace CSV -> decode the mp4 once (frames at k*D/T + audio)
-> MFCC of the 0.5 s + 2.45 s window (the window itself is kept as int16) -> landmark (or detector) box per frame
-> crops -> atomic cache entry.
A clip that cannot be used is skipped with a reason and the run goes on; ``preprocess_report.json`` lists them,
with every other file of the Actor_* folders that is not a clip.

Re-runs resume and are cheap: complete entries are checked (``verify``: cheap facts, or checksums too) and kept,
broken ones rebuilt; clips that failed before are retried only when their mp4 or landmark CSV changed (size or
mtime) or ``retry_failed``; with nothing to do no worker pool starts, and nothing is written, the report included,
unless its content changed.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from concurrent.futures import as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cfnsr.data import cache
from cfnsr.data.cache import REPORT_FILE, CacheError, cached_clips
from cfnsr.data.faces import crop_faces, detect_extents
from cfnsr.data.features import (
    AUDIO_INT16_SCALE,
    HEAVY_MODULES,
    AudioTooShortError,
    audio_window,
    compute_mfcc,
    quantize_audio,
)
from cfnsr.data.landmarks import (
    LandmarkError,
    Landmarks,
    coverage_problem,
    find_landmark_csv,
    read_openface_csv,
    rows_for_times,
)
from cfnsr.data.media import DecodedClip, MediaError, decode_clip
from cfnsr.data.preprocess_report import CORRUPT_FIELDS, build_report, format_report, stable_part
from cfnsr.data.ravdess import RavdessName, discover_clips, skip_entry
from cfnsr.data.settings import PreprocessSettings
from cfnsr.data.worker_pool import process_pool

__all__ = ["PreprocessError", "NoUsableClipsError", "preprocess_corpus", "VERIFY_MODES"]

VERIFY_MODES = ("cheap", "full")


class PreprocessError(RuntimeError):
    """The corpus as a whole cannot be preprocessed."""


class NoUsableClipsError(PreprocessError):
    """Every clip was skipped: the cache would be empty."""


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
    return {"status": "skipped", **skip_entry(job.rel, kind, reason)}


def _video_frames(clip: DecodedClip) -> int:
    """Frames in the video: duration x fps (the decoder may drop frames it does not need), else those decoded."""
    return int(round(clip.duration * clip.fps)) if clip.fps > 0 else int(clip.n_decoded)


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
        # the window is kept (audio.npy, int16) so that evaluation can corrupt the waveform and recompute the MFCC
        window = audio_window(clip.audio, s.sample_rate, s.audio_offset, s.audio_duration)
        mfcc = compute_mfcc(window, s.sample_rate, s.n_mfcc, s.n_fft, s.hop_length)
        audio, audio_clipped = quantize_audio(window)
        mismatch: dict[str, Any] = {}
        if landmarks is not None:
            assert csv is not None
            problem = coverage_problem(landmarks, clip.frame_times, clip.fps, clip.duration, _video_frames(clip))
            if problem is not None:
                csv_rel = Path(os.path.relpath(csv, job.root)).as_posix()
                if s.landmark_mismatch == "skip":
                    return _skipped(job, "landmarks-mismatch", (
                        f"{fname}: landmark CSV {csv_rel} does not cover the clip: {problem} "
                        f"(landmark_mismatch=skip)"))
                mismatch = {"landmarks_mismatch": f"{csv_rel}: {problem}", "landmark_csv_rejected": csv_rel}
                landmarks = None
        if landmarks is not None:
            assert csv is not None
            extents, info = _landmark_extents(job, landmarks, csv, clip)
            source = "landmarks"
        else:
            extents, info = detect_extents(clip.frames), {"landmark_csv": None, **mismatch}
            source = "detector" if extents is not None else "center"
        crops = crop_faces(clip.frames, extents, s.size, s.crop_margin, s.squash_before_crop)
        if s.channel_order == "bgr":
            crops = np.ascontiguousarray(crops[..., ::-1])
        meta = {
            "stem": job.name.stem, "actor": job.name.actor, "label": job.name.label, "face_source": source,
            "source": job.rel, "settings_hash": s.hash, "duration": clip.duration, "fps": clip.fps,
            "width": clip.width, "height": clip.height, "frame_times": [round(t, 4) for t in clip.frame_times],
            "frames_shape": list(crops.shape), "mfcc_shape": list(mfcc.shape),
            # audio.npy = round(window * audio_scale) clipped to +-audio_scale; audio_clipped: samples clipped
            "audio_shape": list(audio.shape), "audio_scale": AUDIO_INT16_SCALE, "audio_clipped": audio_clipped,
            # packets the decoder found corrupt and concealed (0 until cfnsr.data.media counts them)
            **{name: int(getattr(clip, name, 0) or 0) for name in CORRUPT_FIELDS},
            **info,
        }
        cache.write_entry(job.cache_dir, job.name.stem, crops, mfcc, meta, audio=audio)
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
    return {"status": "ok", "stem": job.name.stem, "file": job.rel, "facts": _entry_facts(meta),
            "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu_start}


def _entry_facts(meta: dict[str, Any]) -> dict[str, Any]:
    """What the report needs from an entry's meta.json (the same for a new and a reused entry)."""
    return {"face_source": meta.get("face_source", "landmarks"), "source": meta.get("source"),
            "landmarks_mismatch": meta.get("landmarks_mismatch"),
            "landmark_csv_rejected": meta.get("landmark_csv_rejected"),
            **{name: int(meta.get(name) or 0) for name in CORRUPT_FIELDS}}


def _run_jobs(jobs: list[ClipJob], workers: int, progress: bool):
    """Yields each job's result as it completes, in-process (workers <= 1) or over a process pool."""
    if not jobs:
        return  # nothing to do: no progress bar, no pool
    from tqdm import tqdm

    # Terminal only: in a log file a bar is one endless line; the summary line says what was done.
    bar = tqdm(total=len(jobs), desc="preprocess", unit="clip", disable=not progress or not sys.stderr.isatty(),
               dynamic_ncols=True)
    try:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                result = process_clip(job)
                bar.update(1)
                yield result
            return
        # forkserver workers that die with this process (cfnsr.data.worker_pool); the fork server imports this
        # module and librosa's heavy parts once
        with process_pool(min(workers, len(jobs)), preload=[__name__, *HEAVY_MODULES]) as pool:
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


def _file_stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _input_facts(root: Path, path: Path, name: RavdessName) -> dict[str, Any]:
    """Size and mtime of a clip's mp4 and of the landmark CSV it would use: a failed clip is retried when they
    change (a CSV added, replaced or removed counts)."""
    size, mtime = _file_stat(path) or (-1, -1)
    facts: dict[str, Any] = {"size": size, "mtime_ns": mtime, "landmark_csv": None}
    csv = find_landmark_csv(root, name)
    if csv is not None:
        csv_size, csv_mtime = _file_stat(csv) or (-1, -1)
        facts.update(landmark_csv=csv.relative_to(root).as_posix(), landmark_size=csv_size,
                     landmark_mtime_ns=csv_mtime)
    return facts


_INPUT_KEYS = ("size", "mtime_ns", "landmark_csv", "landmark_size", "landmark_mtime_ns")


def _same_inputs(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in _INPUT_KEYS)


def _read_report(cache_dir: Path) -> dict[str, Any] | None:
    try:
        report = json.loads((cache_dir / REPORT_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return report if isinstance(report, dict) else None


def _previous_failures(previous: dict[str, Any] | None, settings: PreprocessSettings) -> dict[str, dict[str, Any]]:
    """file -> skip entry of the clips that failed in the run that wrote ``previous`` (with the same settings)."""
    if previous is None or previous.get("settings_hash") != settings.hash:
        return {}
    skipped = previous.get("skipped")
    if not isinstance(skipped, list):
        return {}
    return {s["file"]: s for s in skipped if isinstance(s, dict) and "file" in s and "size" in s}


def preprocess_corpus(root: str | Path, cache_dir: str | Path, settings: PreprocessSettings, workers: int = 2,
                      force: bool = False, progress: bool = True, verify: str = "cheap",
                      retry_failed: bool = False) -> dict[str, Any]:
    """Build (or complete) the cache for every full-AV speech clip under ``root``; returns the report.

    Existing entries are checked (``verify="cheap"``: files present, byte sizes as recorded, meta.json readable and
    of this format; ``"full"``: their sha256 too) and kept, and broken ones rebuilt (listed under ``rebuilt`` with
    the reason), so an interrupted run resumes. A clip that failed in an earlier run with these settings is not
    retried unless its mp4 or landmark CSV changed (size or mtime) or ``retry_failed``; its skip is carried over.
    ``force=True`` deletes every entry and redoes everything. The report file is written only when its content
    (timings and what this run did aside) changed or an entry was written, so a run with nothing to do writes
    nothing. Raises ``NotRavdessError`` for a root that is not RAVDESS, ``CacheError`` when the cache was built
    with other settings (and not force), ``NoUsableClipsError`` when no clip could be used (report written first).
    """
    if verify not in VERIFY_MODES:
        raise ValueError(f"preprocess verify={verify!r}: expected one of {VERIFY_MODES}")
    started = time.perf_counter()
    root, cache_dir = Path(root), Path(cache_dir)
    candidates, discovered, n_found = discover_clips(root)
    not_a_clip = [s for s in discovered if s["kind"] == "not-a-clip"]
    skipped = [s for s in discovered if s["kind"] != "not-a-clip"]
    cache_dir.mkdir(parents=True, exist_ok=True)
    _prepare_cache(cache_dir, settings, force)
    cache.clean_stale_temps(cache_dir)
    previous = _read_report(cache_dir)
    failures = _previous_failures(previous, settings)

    threads = 0 if workers <= 1 else 1
    reused: list[str] = []
    rebuilt: list[dict[str, str]] = []
    not_retried: list[str] = []
    facts: dict[str, dict[str, Any]] = {}
    jobs: list[ClipJob] = []
    inputs: dict[str, dict[str, Any]] = {}
    for path, name in candidates:
        rel = path.relative_to(root).as_posix()
        if cache.entry_dir(cache_dir, name.stem).exists():
            meta, reason = cache.check_entry(cache_dir, name.stem, full=verify == "full")
            if reason is None:
                assert meta is not None
                reused.append(name.stem)
                facts[name.stem] = _entry_facts(meta)
                continue
            rebuilt.append({"stem": name.stem, "file": rel, "reason": reason})
            cache.remove_entry(cache_dir, name.stem)
        inputs[rel] = _input_facts(root, path, name)
        before = failures.get(rel)
        if before is not None and not retry_failed and _same_inputs(before, inputs[rel]):
            skipped.append(before)  # failed before, nothing changed since: same outcome, same report entry
            not_retried.append(rel)
            continue
        jobs.append(ClipJob(str(path), rel, name, str(root), str(cache_dir), settings, threads))

    processed: list[str] = []
    seconds: list[tuple[float, float]] = []  # (wall, cpu) per processed clip
    for result in _run_jobs(jobs, workers, progress):
        if result["status"] == "ok":
            processed.append(result["stem"])
            facts[result["stem"]] = result["facts"]
            seconds.append((result["seconds"], result["cpu_seconds"]))
        else:
            skipped.append({**{k: result[k] for k in ("file", "kind", "reason")}, **inputs[result["file"]]})

    elapsed = time.perf_counter() - started
    report = build_report(root, cache_dir, settings, n_found, sorted(processed), sorted(reused), skipped,
                           not_a_clip, rebuilt, sorted(not_retried), facts, seconds, elapsed, workers, verify)
    if processed or rebuilt or previous is None or stable_part(previous) != stable_part(report):
        cache.write_json_atomic(cache_dir / REPORT_FILE, report)
    if not processed and not reused:
        raise NoUsableClipsError(f"no usable clip under {root}: all {len(skipped)} clip(s) were skipped and "
                                 f"{len(not_a_clip)} file(s) are not clips (see {cache_dir / REPORT_FILE})\n"
                                 + format_report(report))
    return report
