"""A corpus -> preprocessed cache: face crops (T, S, S, 3), MFCC (n_mfcc, L) and the raw audio window per clip the
corpus class (``cfnsr.data.corpus``) discovers; its label and speaker go into the entry's meta.json.

Pipeline per clip (one worker process each): find its OpenFace CSV -> decode the mp4 once (frames at k*D/T + audio)
-> MFCC of the 0.5 s + 2.45 s window (the window itself is kept as int16) -> landmark (or detector) box per frame
-> crops -> atomic cache entry.
A clip that cannot be used is skipped with a reason and the run goes on; ``preprocess_report.json`` lists them,
with every other file of the corpus folders that is not a clip.

Re-runs resume and are cheap: complete entries are checked (``verify``: cheap facts, or checksums too) and kept,
broken ones rebuilt; clips that failed before are retried only when their mp4 or landmark CSV changed (size or
mtime) or ``retry_failed``; with nothing to do no worker pool starts, and nothing is written, the report included,
unless its content changed.

Every entry is bound to its sources (``cfnsr.data.source_identity``: the video, landmark CSV and separate audio file
the corpus discovered for the clip): an entry whose sources changed under the same corpus root is rebuilt; a cache
built from another root is refused unless its entries' sources match the new root's files one by one. Clips with the
same video content (or the same cached frames) are listed in the report (``duplicates``).
"""

from __future__ import annotations

import fnmatch
import os
import signal
import sys
import time
import traceback
from concurrent.futures import as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cfnsr.data import cache
from cfnsr.data import source_identity as identity
from cfnsr.data.cache import REPORT_FILE, CacheError, cached_clips
from cfnsr.data.corpus import Clip, Corpus, skip_entry
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
    read_openface_csv,
    rows_for_times,
)
from cfnsr.data.media import DecodedClip, MediaError, decode_clip
from cfnsr.data.media_wav import decode_audio_file
from cfnsr.data.preprocess_report import CORRUPT_FIELDS, build_report, format_report, stable_part
from cfnsr.data.settings import PreprocessSettings, check_detector_entries, detector_free_match
from cfnsr.data.source_identity import CorpusError
from cfnsr.data.worker_pool import exit_description, pool_context, process_pool, run_isolated
from cfnsr.files import describe_os_error, environment_error

__all__ = ["PreprocessError", "NoUsableClipsError", "EnvironmentProblem", "preprocess_corpus", "VERIFY_MODES"]

VERIFY_MODES = ("cheap", "full")


class PreprocessError(RuntimeError):
    """The corpus as a whole cannot be preprocessed."""


class NoUsableClipsError(PreprocessError):
    """Every clip was skipped: the cache would be empty."""


class EnvironmentProblem(PreprocessError):
    """The machine, not a clip, failed (disk full, I/O error, permission, read-only file system): preprocessing
    stops, and nothing is recorded against the clips, so a re-run once it is fixed processes them."""


# Test-only fault injection: a clip whose file name matches this glob kills its pool worker with SIGKILL (the way a
# codec crash or the OOM killer would). Read by preprocess_corpus in the calling process; never set in real use.
KILL_WORKER_ENV = "CFNSR_TEST_KILL_WORKER_ON"


@dataclass(frozen=True)
class ClipJob:
    """One clip to process; plain data so that it pickles to worker processes."""

    path: str
    rel: str  # path relative to the corpus root, used in the report
    clip: Clip
    corpus: str  # the corpus's name, recorded in meta.json
    root: str
    cache_dir: str
    settings: PreprocessSettings
    threads: int  # decoder threads
    sources: dict[str, Any]  # identity of its video, CSV, audio file (cfnsr.data.source_identity), in meta.json
    kill_on: str | None = None  # test-only: KILL_WORKER_ENV's glob, set only for jobs run in pool workers


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


def _pad_short(sound: np.ndarray, s: PreprocessSettings) -> tuple[np.ndarray, float]:
    """With ``short_audio=pad``, zeros appended to a track shorter than the window (offset + duration); returns the
    track and the seconds padded (recorded in meta.json as ``audio_padded_seconds``). With ``skip`` the track is
    returned as is and ``audio_window`` refuses it (the clip is skipped as audio-too-short)."""
    need = int(s.audio_offset * s.sample_rate) + int(s.audio_duration * s.sample_rate)
    if s.short_audio != "pad" or len(sound) >= need:
        return sound, 0.0
    missing = need - len(sound)
    return np.concatenate([sound, np.zeros(missing, dtype=sound.dtype)]), missing / s.sample_rate


def _label_change(meta: dict[str, Any], clip: Clip) -> str | None:
    """Why an otherwise sound entry must be rebuilt because the corpus now labels the clip differently (e.g. the
    CREMA-D label source changed), else None. Entries from before the corpus seam (no ``speaker``) compare their
    ``actor``."""
    label, speaker = meta.get("label"), meta.get("speaker", meta.get("actor"))
    if label != clip.label or speaker != clip.speaker:
        return (f"meta.json says label {label!r}, speaker {speaker!r}; the corpus now says label {clip.label}, "
                f"speaker {clip.speaker!r}")
    return None


def _skipped(job: ClipJob, kind: str, reason: str) -> dict[str, Any]:
    return {"status": "skipped", **skip_entry(job.rel, kind, reason)}


def _video_frames(clip: DecodedClip) -> int:
    """Frames in the video: duration x fps (the decoder may drop frames it does not need), else those decoded."""
    return int(round(clip.duration * clip.fps)) if clip.fps > 0 else int(clip.n_decoded)


class _Skip(Exception):
    """A clip this run cannot use, with the report entry that says why (raised inside process_clip only)."""

    def __init__(self, entry: dict[str, Any]) -> None:
        super().__init__(entry["reason"])
        self.entry = entry


def process_clip(job: ClipJob) -> dict[str, Any]:
    """Process one clip into its cache entry. Never raises: failures come back as a skip with a reason."""
    start, cpu_start = time.perf_counter(), time.process_time()
    if job.kill_on and fnmatch.fnmatch(Path(job.path).name, job.kill_on):
        os.kill(os.getpid(), signal.SIGKILL)  # test-only (KILL_WORKER_ENV): a worker that dies on this clip
    try:
        meta = _make_entry(job)
    except _Skip as skip:
        return skip.entry
    except Exception as exc:  # noqa: BLE001 - one bad clip must not stop a 1440-clip run
        return _failure(job, exc)
    return {"status": "ok", "stem": job.clip.stem, "file": job.rel, "facts": _entry_facts(meta),
            "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu_start}


def _make_entry(job: ClipJob) -> dict[str, Any]:
    """mp4 (+ landmark CSV, + WAV) -> face crops uint8 (T, S, S, 3), MFCC (n_mfcc, L), int16 audio window -> the
    cache entry; returns its meta. Raises ``_Skip`` for a clip this run cannot use."""
    s, fname = job.settings, Path(job.path).name
    # the CSV first: it is cheap and a bad one makes the decode pointless
    csv = Path(job.clip.landmarks) if job.clip.landmarks else None
    if csv is None and s.face_fallback == "none":
        raise _Skip(_skipped(job, "no-landmarks", (
            f"{fname}: no landmark CSV (the corpus found none for {job.clip.stem}) and face_fallback=none")))
    landmarks = read_openface_csv(csv) if csv is not None else None
    separate_audio = job.clip.audio is not None
    clip = decode_clip(job.path, s.frames, s.sample_rate, with_audio=not separate_audio, threads=job.threads)
    sound = decode_audio_file(job.clip.audio, s.sample_rate) if separate_audio else clip.audio
    assert sound is not None
    # the window is kept (audio.npy, int16) so that evaluation can corrupt the waveform and recompute the MFCC
    sound, padded = _pad_short(sound, s)
    window = audio_window(sound, s.sample_rate, s.audio_offset, s.audio_duration)
    mfcc = compute_mfcc(window, s.sample_rate, s.n_mfcc, s.n_fft, s.hop_length)
    audio, audio_clipped = quantize_audio(window)
    extents, info, source = _face_extents(job, landmarks, csv, clip)
    crops = crop_faces(clip.frames, extents, s.size, s.crop_margin, s.squash_before_crop)
    if s.channel_order == "bgr":
        crops = np.ascontiguousarray(crops[..., ::-1])
    meta = {
        # label and speaker: what the data module, robustness and the crop gap read (never the file name);
        # "actor" is kept for readers of entries from before the corpus seam
        "stem": job.clip.stem, "actor": job.clip.speaker, "speaker": job.clip.speaker, "label": job.clip.label,
        "corpus": job.corpus, "face_source": source,
        "audio_source": Path(os.path.relpath(job.clip.audio, job.root)).as_posix() if separate_audio else None,
        "audio_padded_seconds": round(padded, 4),
        "source": job.rel, "sources": job.sources, "settings_hash": s.hash, "duration": clip.duration, "fps": clip.fps,
        "width": clip.width, "height": clip.height, "frame_times": [round(t, 4) for t in clip.frame_times],
        "frames_shape": list(crops.shape), "mfcc_shape": list(mfcc.shape),
        # audio.npy = round(window * audio_scale) clipped to +-audio_scale; audio_clipped: samples clipped
        "audio_shape": list(audio.shape), "audio_scale": AUDIO_INT16_SCALE, "audio_clipped": audio_clipped,
        # packets the decoder found corrupt and concealed (0 until cfnsr.data.media counts them)
        **{name: int(getattr(clip, name, 0) or 0) for name in CORRUPT_FIELDS},
        **info,
    }
    cache.write_entry(job.cache_dir, job.clip.stem, crops, mfcc, meta, audio=audio)
    return meta


def _face_extents(job: ClipJob, landmarks: Landmarks | None, csv: Path | None, clip: DecodedClip
                  ) -> tuple[Any, dict[str, Any], str]:
    """(extents, meta fields, face source) from the landmark CSV when it covers the clip, else from the detector
    (``face_fallback``), else the centre crop. Raises ``_Skip`` under ``landmark_mismatch=skip``."""
    s, mismatch = job.settings, {}
    if landmarks is not None:
        assert csv is not None
        problem = coverage_problem(landmarks, clip.frame_times, clip.fps, clip.duration, _video_frames(clip))
        if problem is None:
            extents, info = _landmark_extents(job, landmarks, csv, clip)
            return extents, info, "landmarks"
        csv_rel = Path(os.path.relpath(csv, job.root)).as_posix()
        if s.landmark_mismatch == "skip":
            raise _Skip(_skipped(job, "landmarks-mismatch", (
                f"{Path(job.path).name}: landmark CSV {csv_rel} does not cover the clip: {problem} "
                f"(landmark_mismatch=skip)")))
        mismatch = {"landmarks_mismatch": f"{csv_rel}: {problem}", "landmark_csv_rejected": csv_rel}
    # face_fallback=none reaches here only for a CSV that does not cover the clip (landmark_mismatch)
    detector = "blazeface" if s.face_fallback == "none" else s.face_fallback
    extents = detect_extents(clip.frames, detector)
    info = {"landmark_csv": None, "face_detector": detector, **mismatch}
    return extents, info, "detector" if extents is not None else "center"


def _failure(job: ClipJob, exc: Exception) -> dict[str, Any]:
    """The result of a clip whose processing raised: a skip naming the reason, or an environment problem (a full
    disk, a missing permission) that stops the run without marking the clip."""
    fname = Path(job.path).name
    env = environment_error(exc)
    if env is not None:
        return {"status": "environment", "file": job.rel, "reason": describe_os_error(env, job.cache_dir)}
    if isinstance(exc, MediaError):
        text = str(exc)
        kind = "no-audio" if "no audio stream" in text else "no-video" if "no video stream" in text else "decode"
        return _skipped(job, kind, text)
    if isinstance(exc, AudioTooShortError):
        return _skipped(job, "audio-too-short", f"{fname}: {exc}")
    if isinstance(exc, LandmarkError):
        return _skipped(job, "landmarks", f"{fname}: unusable landmark CSV: {exc}")
    last = traceback.extract_tb(exc.__traceback__)[-1]
    return _skipped(job, "error", (
        f"{fname}: unexpected {type(exc).__name__}: {exc} (at {Path(last.filename).name}:{last.lineno})"))


def _entry_facts(meta: dict[str, Any]) -> dict[str, Any]:
    """What the report needs from an entry's meta.json (the same for a new and a reused entry)."""
    return {"face_source": meta.get("face_source", "landmarks"), "source": meta.get("source"),
            "landmarks_mismatch": meta.get("landmarks_mismatch"),
            "landmark_csv_rejected": meta.get("landmark_csv_rejected"),
            "audio_padded_seconds": float(meta.get("audio_padded_seconds") or 0.0),
            **{name: int(meta.get(name) or 0) for name in CORRUPT_FIELDS}}


def _note_start(queue: Any) -> None:
    """Pool worker initializer: keep the queue on which each job announces itself before it starts."""
    global _STARTED
    _STARTED = queue


_STARTED: Any = None  # in a pool worker: where process_clip's caller announces the job it starts


def _announced_clip(job: ClipJob) -> dict[str, Any]:
    """process_clip in a pool worker, after telling the parent which clip this worker is on: written before the
    work starts (a SimpleQueue writes at once), so a worker that dies during the clip has named it."""
    if _STARTED is not None:
        _STARTED.put(job.rel)
    return process_clip(job)


def _died_result(job: ClipJob, code: int) -> dict[str, Any]:
    fname = Path(job.path).name
    return _skipped(job, "worker-died", (
        f"{fname}: the worker process preprocessing it died ({exit_description(code)}), again when the clip was "
        f"run alone (a crash in a decoder or out of memory); not retried until the file changes or "
        f"preprocess.retry_failed=true"))


def _pool_round(remaining: dict[str, ClipJob], workers: int, started: Any, preload: list[str], bar: Any):
    """Run ``remaining`` over a new process pool, yielding results (and removing their jobs) as they complete;
    returns True when a dead worker broke the pool (the jobs left in ``remaining`` did not finish)."""
    # forkserver workers that die with this process (cfnsr.data.worker_pool); the fork server imports this module
    # and librosa's heavy parts once
    with process_pool(min(workers, len(remaining)), initializer=_note_start, initargs=(started,),
                      preload=preload) as pool:
        futures = {pool.submit(_announced_clip, job): job for job in remaining.values()}
        try:
            for future in as_completed(futures):
                try:
                    result = future.result()
                except BrokenProcessPool:
                    break
                del remaining[futures[future].rel]
                bar.update(1)
                yield result
            else:
                return False
            for future, job in futures.items():  # results that were finished when the pool broke
                if job.rel in remaining and future.done() and not future.cancelled() and future.exception() is None:
                    del remaining[job.rel]
                    bar.update(1)
                    yield future.result()
            return True
        finally:
            for future in futures:
                future.cancel()


def _rerun_in_flight(remaining: dict[str, ClipJob], started: Any, preload: list[str], bar: Any):
    """After a pool broke: the clips its workers had announced are run again one at a time, each in a process of
    its own; one whose process dies again is a ``worker-died`` skip."""
    announced = []
    while not started.empty():
        announced.append(started.get())
    in_flight = [remaining[rel] for rel in dict.fromkeys(announced) if rel in remaining]
    if not in_flight:
        raise PreprocessError("a preprocessing worker process died before starting a clip (out of "
                              "memory?); the finished clips are cached, re-run to resume")
    for job in in_flight:
        result, code = run_isolated(process_clip, job, preload=preload)
        del remaining[job.rel]
        bar.update(1)
        yield result if result is not None else _died_result(job, code)


def _run_jobs(jobs: list[ClipJob], workers: int, progress: bool):
    """Yields each job's result as it completes, in-process (workers <= 1) or over a process pool.

    A pool worker that dies (a crash in a codec, the OOM killer) takes the pool with it. The results already
    finished are kept; the clips the workers were on when it broke (each announced itself before starting) are run
    again one at a time in a process of their own, and one whose process dies again is reported as a
    ``worker-died`` skip naming it and the signal; then a new pool goes on with the rest.
    """
    if not jobs:
        return  # nothing to do: no progress bar, no pool
    from tqdm import tqdm

    # Terminal only: in a log file a bar is one endless line; the summary line says what was done.
    bar = tqdm(total=len(jobs), desc="preprocess", unit="clip", disable=not progress or not sys.stderr.isatty(),
               dynamic_ncols=True)
    preload = [__name__, *HEAVY_MODULES]
    try:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                result = process_clip(replace(job, kill_on=None))  # the test hook is for pool workers only
                bar.update(1)
                yield result
            return
        remaining = {job.rel: job for job in jobs}
        while remaining:
            started = pool_context().SimpleQueue()
            broken = yield from _pool_round(remaining, workers, started, preload, bar)
            if not broken:
                break
            yield from _rerun_in_flight(remaining, started, preload, bar)
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
    if detector_free_match(cache_dir, settings):
        # only the face detector differs and no entry used one: re-stamp, so entries built from now on match
        cache.write_settings(cache_dir, settings.to_dict())
        return
    cache.check_settings(cache_dir, settings.to_dict())
    check_detector_entries(cache_dir, settings)



def _input_facts(root: Path, path: Path, clip: Clip) -> dict[str, Any]:
    """Size and mtime of a clip's video and of the landmark CSV it would use: a failed clip is retried when they
    change (a CSV added, replaced or removed counts)."""
    size, mtime = identity.file_stat(path) or (-1, -1)
    facts: dict[str, Any] = {"size": size, "mtime_ns": mtime, "landmark_csv": None}
    csv = Path(clip.landmarks) if clip.landmarks else None
    if csv is not None:
        csv_size, csv_mtime = identity.file_stat(csv) or (-1, -1)
        facts.update(landmark_csv=csv.relative_to(root).as_posix(), landmark_size=csv_size,
                     landmark_mtime_ns=csv_mtime)
    return facts


_INPUT_KEYS = ("size", "mtime_ns", "landmark_csv", "landmark_size", "landmark_mtime_ns")


def _same_inputs(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in _INPUT_KEYS)


def _previous_failures(previous: dict[str, Any] | None, settings: PreprocessSettings) -> dict[str, dict[str, Any]]:
    """file -> skip entry of the clips that failed in the run that wrote ``previous`` (with the same settings)."""
    if previous is None or previous.get("settings_hash") != settings.hash:
        return {}
    skipped = previous.get("skipped")
    if not isinstance(skipped, list):
        return {}
    return {s["file"]: s for s in skipped if isinstance(s, dict) and "file" in s and "size" in s}


def _recorded_root(cache_dir: Path, previous: dict[str, Any] | None) -> str | None:
    """The corpus root the cache was built from: corpus.json's, else the last report's root."""
    corpus = cache.read_corpus(cache_dir)
    if corpus is not None and corpus.get("root"):
        return str(corpus["root"])
    return str(previous["root"]) if previous and previous.get("root") else None


def _recorded_fingerprint(cache_dir: Path) -> str:
    corpus = cache.read_corpus(cache_dir)
    return str(corpus.get("fingerprint")) if corpus is not None else "not recorded"


def _same_report_root(previous: dict[str, Any] | None, root: Path) -> bool:
    """An entry older than source identities is re-identified (hashed, not rebuilt) only when the cache's report
    says it was built from this very root; under another root the cache is refused (nothing ties the entry to these
    files), and without any recorded root the entry is rebuilt."""
    return bool(previous and previous.get("root")) and identity.same_root(previous["root"], root)


def _duplicates(cache_dir: Path, sources: dict[str, dict[str, Any]], usable: list[str]) -> list[dict[str, Any]]:
    """Groups of clips with the same mp4 content, and of usable clips whose cached frames are identical."""
    out = [{"kind": "mp4", "clips": g, "sha256": sources[g[0]]["mp4"]["sha256"]}
           for g in identity.duplicate_groups(sources)]
    frames: dict[str, dict[str, Any]] = {}
    for stem in usable:
        try:
            digest = cache.load_meta(cache_dir, stem)["files"]["frames.npy"]["sha256"]
        except (CacheError, KeyError, TypeError):
            continue
        frames[stem] = {"frames": {"sha256": digest}}
    out += [{"kind": "frames", "clips": g, "sha256": frames[g[0]]["frames"]["sha256"]}
            for g in identity.duplicate_groups(frames, key="frames")]
    return out


def default_corpus(generate: dict[str, Any] | None = None) -> Corpus:
    """The corpus of callers from before the seam that name none: RAVDESS's layout (``generate``: synthetic)."""
    from cfnsr.data.ravdess import RavdessCorpus

    return RavdessCorpus.default(generate)


def preprocess_corpus(root: str | Path, cache_dir: str | Path, settings: PreprocessSettings,
                      corpus: Corpus | None = None, workers: int = 2,
                      force: bool = False, progress: bool = True, verify: str = "cheap",
                      retry_failed: bool = False) -> dict[str, Any]:
    """Build (or complete) the cache for every clip ``corpus`` discovers under ``root``; returns the report.

    Existing entries are checked (``verify="cheap"``: files present, byte sizes as recorded, meta.json readable and
    of this format; ``"full"``: their sha256 too) and kept, and broken ones rebuilt (listed under ``rebuilt`` with
    the reason), so an interrupted run resumes. A clip that failed in an earlier run with these settings is not
    retried unless its mp4 or landmark CSV changed (size or mtime) or ``retry_failed``; its skip is carried over.
    ``force=True`` deletes every entry and redoes everything. The report file is written only when its content
    (timings and what this run did aside) changed or an entry was written, so a run with nothing to do writes
    nothing. Raises the corpus's error (``NotRavdessError``, ``CorpusError``) for a root it cannot read, ``CacheError`` when the cache was built
    with other settings (and not force), ``NoUsableClipsError`` when no clip could be used (report written first),
    ``EnvironmentProblem`` when the disk or the machine fails (full, I/O error, permission, read-only), naming the
    path and its file system.
    """
    try:
        return _preprocess_corpus(root, cache_dir, settings, corpus, workers, force, progress, verify, retry_failed)
    except PreprocessError:
        raise
    except OSError as exc:
        env = environment_error(exc)
        if env is None:
            raise
        raise EnvironmentProblem(f"preprocessing stopped: {describe_os_error(env, cache_dir)}") from exc


@dataclass
class _Plan:
    """What one preprocessing run does with each clip the corpus found, decided before any clip is decoded."""

    reused: list[str]  # stems whose entry stays as it is
    rebuilt: list[dict[str, str]]  # entries that exist but must be made again: {stem, file, reason}
    to_build: list[Clip]  # clips to (re)process: the rebuilt ones and those without an entry
    facts: dict[str, dict[str, Any]]  # stem -> facts of a reused entry (for the report)
    sources: dict[str, dict[str, Any]]  # stem -> identity of its files now (cfnsr.data.source_identity)
    reidentify: dict[str, dict[str, Any]]  # stem -> identity to write into an entry kept as it is
    foreign: list[str]  # entries made from other files, under another corpus root


def _plan(candidates: list[Clip], root: Path, cache_dir: Path, previous: dict[str, Any] | None,
          full: bool) -> _Plan:
    """Sort the corpus's clips into reused, re-identified, foreign and to-build, from their entries and files."""
    plan = _Plan([], [], [], {}, {}, {}, [])
    same_root = identity.same_root(_recorded_root(cache_dir, previous), root)
    # identities recorded for clips skipped last time: an unchanged file need not be hashed again
    memo = {s["stem"]: s["sources"] for s in (previous or {}).get("skipped") or []
            if isinstance(s, dict) and isinstance(s.get("sources"), dict) and s.get("stem")}
    for clip in candidates:
        if cache.entry_dir(cache_dir, clip.stem).exists():
            _plan_existing(plan, clip, root, cache_dir, previous, same_root, full)
            continue
        recorded = memo.get(clip.stem)
        status, current, _ = (identity.compare_sources(recorded, root, clip, full=False)
                              if recorded is not None else ("unknown", None, None))
        plan.sources[clip.stem] = recorded if status == "same" else current or identity.source_identity(root, clip)
        plan.to_build.append(clip)
    return plan


def _plan_existing(plan: _Plan, clip: Clip, root: Path, cache_dir: Path, previous: dict[str, Any] | None,
                   same_root: bool, full: bool) -> None:
    """Decide for a clip that has a cache entry: keep it, re-identify it, rebuild it, or call it foreign."""
    meta, reason = cache.check_entry(cache_dir, clip.stem, full=full)
    if reason is not None or meta is None:  # a broken entry: rebuilt from the files as they are now
        plan.sources[clip.stem] = identity.source_identity(root, clip)
        plan.to_build.append(clip)
        plan.rebuilt.append({"stem": clip.stem, "file": clip.rel, "reason": str(reason)})
        return
    status, current, why = identity.compare_sources(meta.get("sources"), root, clip, full=full)
    relabel = _label_change(meta, clip)  # same files, but the corpus labels the clip otherwise now
    if status == "same" and relabel is None:
        plan.sources[clip.stem] = meta["sources"]
        plan.reused.append(clip.stem)
        plan.facts[clip.stem] = _entry_facts(meta)
        return
    current = current or (meta["sources"] if status == "same" else identity.source_identity(root, clip))
    plan.sources[clip.stem] = current
    kept = status in ("same", "reidentified") or (status == "unknown" and _same_report_root(previous, root))
    if kept and relabel is None:
        # same content (or an entry older than source identities, made from this very root)
        plan.reidentify[clip.stem] = current
        plan.reused.append(clip.stem)
        plan.facts[clip.stem] = _entry_facts(meta)
        return
    if not kept and not same_root:  # changed, or unknown and made under another root: cannot be this corpus's
        plan.foreign.append(f"{clip.stem}: {why}")
        return
    plan.to_build.append(clip)
    plan.rebuilt.append({"stem": clip.stem, "file": clip.rel, "reason": str(relabel if kept else why)})


def _refuse_foreign(plan: _Plan, cache_dir: Path, root: Path, previous: dict[str, Any] | None) -> None:
    if not plan.foreign:
        return
    foreign = plan.foreign
    raise CorpusError(
        f"the cache at {cache_dir} was built from the corpus at {_recorded_root(cache_dir, previous)} "
        f"(fingerprint {_recorded_fingerprint(cache_dir)}), and {len(foreign)} of its entries cannot be matched "
        f"with the files of data.root={root}:\n  " + "\n  ".join(foreign[:10])
        + (f"\n  ... {len(foreign) - 10} more" if len(foreign) > 10 else "")
        + "\nA cache serves one corpus: give this corpus its own data.cache_dir, or rebuild this cache for it "
          "with preprocess.force=true")


def _jobs(plan: _Plan, corpus: Corpus, root: Path, cache_dir: Path, settings: PreprocessSettings,
          failures: dict[str, dict[str, Any]], retry_failed: bool, workers: int
          ) -> tuple[list[ClipJob], dict[str, dict[str, Any]], list[dict[str, Any]], list[str]]:
    """The clips to process as worker jobs, with (inputs by file, clips skipped as before, files not retried).

    A clip that failed before on exactly the same inputs is not retried (same outcome, same report entry) unless
    ``retry_failed``."""
    threads = 0 if workers <= 1 else 1  # one BLAS thread per worker process; a single process keeps the default
    jobs: list[ClipJob] = []
    inputs: dict[str, dict[str, Any]] = {}
    skipped_again: list[dict[str, Any]] = []
    not_retried: list[str] = []
    for clip in plan.to_build:
        path, rel = Path(clip.path), clip.rel
        if cache.entry_dir(cache_dir, clip.stem).exists():
            cache.remove_entry(cache_dir, clip.stem)
        inputs[rel] = {**_input_facts(root, path, clip), "stem": clip.stem, "sources": plan.sources[clip.stem]}
        before = failures.get(rel)
        if before is not None and not retry_failed and _same_inputs(before, inputs[rel]):
            skipped_again.append(before)
            not_retried.append(rel)
            continue
        jobs.append(ClipJob(str(path), rel, clip, corpus.name, str(root), str(cache_dir), settings, threads,
                            plan.sources[clip.stem],
                            kill_on=os.environ.get(KILL_WORKER_ENV) if workers > 1 else None))
    return jobs, inputs, skipped_again, not_retried


def _preprocess_corpus(root: str | Path, cache_dir: str | Path, settings: PreprocessSettings, corpus: Corpus | None,
                       workers: int, force: bool, progress: bool, verify: str, retry_failed: bool) -> dict[str, Any]:
    """plan (what each found clip needs) -> jobs -> run them in workers -> the report and the corpus record."""
    if verify not in VERIFY_MODES:
        raise ValueError(f"preprocess verify={verify!r}: expected one of {VERIFY_MODES}")
    started = time.perf_counter()
    root, cache_dir = Path(root), Path(cache_dir)
    corpus = corpus if corpus is not None else default_corpus()
    candidates, discovered, n_found = corpus.discover(root)
    not_a_clip = [s for s in discovered if s["kind"] == "not-a-clip"]
    skipped = [s for s in discovered if s["kind"] != "not-a-clip"]
    cache_dir.mkdir(parents=True, exist_ok=True)
    _prepare_cache(cache_dir, settings, force)
    cache.clean_stale_temps(cache_dir)
    previous = identity.read_report(cache_dir)

    plan = _plan(candidates, root, cache_dir, previous, full=verify == "full")
    _refuse_foreign(plan, cache_dir, root, previous)
    for stem, current in plan.reidentify.items():
        cache.update_sources(cache_dir, stem, current)
    jobs, inputs, skipped_again, not_retried = _jobs(plan, corpus, root, cache_dir, settings,
                                                     _previous_failures(previous, settings), retry_failed, workers)
    skipped += skipped_again

    processed: list[str] = []
    seconds: list[tuple[float, float]] = []  # (wall, cpu) per processed clip
    for result in _run_jobs(jobs, workers, progress):
        if result["status"] == "environment":
            raise EnvironmentProblem(
                f"preprocessing stopped: {result['reason']} (while on {result['file']}); no clip is marked as "
                f"failed for it: free space (or fix the permission / device) and re-run to resume, the "
                f"{len(processed)} clip(s) finished in this run are cached")
        if result["status"] == "ok":
            processed.append(result["stem"])
            plan.facts[result["stem"]] = result["facts"]
            seconds.append((result["seconds"], result["cpu_seconds"]))
        else:
            skipped.append({**{k: result[k] for k in ("file", "kind", "reason")}, **inputs[result["file"]]})

    report = build_report(root, cache_dir, settings, n_found, sorted(processed), sorted(plan.reused), skipped,
                          not_a_clip, plan.rebuilt, sorted(not_retried), plan.facts, seconds,
                          time.perf_counter() - started, workers, verify)
    fingerprint = identity.fingerprint(plan.sources)
    report["corpus_fingerprint"] = fingerprint
    report["reidentified"] = sorted(plan.reidentify)
    report["counts"]["reidentified"] = len(plan.reidentify)
    report["duplicates"] = _duplicates(cache_dir, plan.sources, [*processed, *plan.reused])
    report["counts"]["duplicates"] = len(report["duplicates"])
    if processed or plan.rebuilt or plan.reidentify or previous is None or stable_part(previous) != stable_part(report):
        cache.write_json_atomic(cache_dir / REPORT_FILE, report)
    cache.write_corpus(cache_dir, {"root": str(root.resolve()), "fingerprint": fingerprint, "clips": len(plan.sources)})
    if not processed and not plan.reused:
        raise NoUsableClipsError(f"no usable clip under {root}: all {len(skipped)} clip(s) were skipped and "
                                 f"{len(not_a_clip)} file(s) are not clips (see {cache_dir / REPORT_FILE})\n"
                                 + format_report(report))
    return report
