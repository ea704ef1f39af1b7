"""``python predict.py ckpt_path=<ckpt> input=<video | folder | glob>``: emotions over time in any video.

For every input file: probe it, cut it into windows, decode them in one streaming pass, crop the largest face of each
sampled frame, compute the MFCC of each window's audio, and run the checkpoint's network on batches of windows.
Nothing a single file does stops a run over a folder: a file that is not a video, cannot be decoded or cannot be
predicted by this model gets an ``error`` row with its reason, and the run goes on.

Per window (see docs/predict.md):

* ``ok``: a face in at least ``min_face_frames`` of the T frames and audio: the full model;
* ``no_face``: no face found: the video input is removed with the missing-modality policy of
  ``cfnsr.data.missing`` (zeros after normalisation) and the full model runs on the audio and the zeros; a
  video-only model cannot predict such a window (``not_predicted``);
* ``video_only``: the file (or this window) has no audio: the model's video-only path (a video-only model, or the
  video stream of late fusion) when it has one; otherwise the file is "not predictable: no audio and the model has
  no video-only path";
* ``not_predicted``: nothing to predict from (no face and no audio, frames missing from a truncated file...).
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from cfnsr.predict.decode_check import check_decode
from cfnsr.predict.faces import CropSettings, window_faces
from cfnsr.predict.model import Predictor, load_predictor
from cfnsr.predict.outputs import (
    ERROR,
    NO_FACE,
    NOT_PREDICTED,
    OK,
    VIDEO_ONLY,
    summary_row,
    timeline_png,
    unique_png_name,
    write_csv,
)
from cfnsr.predict.probe import InputError, VideoInfo, probe
from cfnsr.predict.windows import RawWindow, WindowStream, plan_windows

NO_VIDEO_ONLY_PATH = "not predictable: no audio and the model has no video-only path"


@dataclass(frozen=True)
class PredictOptions:
    window_s: float | None = None  # None: the checkpoint's clip length (Predictor.window_s)
    hop_s: float | None = None  # None: window_s
    batch_size: int = 8
    smooth: int = 5
    min_face_frames: int = 1
    box_shift: tuple[float, float] = (0.0, 0.0)
    box_scale: float = 1.0
    decode_threads: int = 0
    progress: bool = True
    timeline: bool = True

    @classmethod
    def from_cfg(cls, p: DictConfig | dict[str, Any]) -> PredictOptions:
        keys = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(p) - keys - {"device"})
        if unknown:
            raise ValueError(f"unknown predict settings {unknown}: known are {sorted(keys | {'device'})}")
        values = {k: p[k] for k in keys if k in p}
        if "box_shift" in values:
            values["box_shift"] = tuple(float(v) for v in values["box_shift"])
        return cls(**values)


@dataclass
class FileResult:
    file: str
    info: VideoInfo | None
    windows: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    timeline: Path | None = None
    seconds: float = 0.0


def expand_inputs(spec: str | Path) -> list[Path]:
    """A file, every file under a folder (recursively, hidden ones left out, sorted), or the files a glob matches
    (``**`` spans folders).

    Folders are walked by this code rather than ``Path.rglob`` / ``glob``, which follow symbolic links into
    folders without remembering where they have been: a link back up the tree made them run forever. Here a folder
    (by device and inode) is entered once, so a loop is not followed; a file reached twice (two links, or a link and
    the file) is listed once, under its own path when one reaches it without a link. Names are taken as they are: spaces, non-ASCII characters
    and newlines (quoting them on the command line: docs/predict.md).
    """
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        files = _unique(_walk(path))
        if not files:
            raise FileNotFoundError(f"input={text}: the folder holds no files")
        return files
    if any(ch in text for ch in "*?["):
        base, pattern = _glob_base(Path(text).expanduser())
        files = _unique(f for f in _walk(base, hidden=_has_hidden(pattern)) if pattern.fullmatch(f.as_posix()))
        if not files:
            raise FileNotFoundError(f"input={text}: the pattern matches no file")
        return files
    raise FileNotFoundError(f"input={text}: no such file or folder")


def _walk(root: Path, hidden: bool = False) -> Iterator[Path]:
    """Every file under ``root``, each folder (device, inode) entered once; hidden names left out unless ``hidden``.
    Folders reached without a symbolic link are walked before any reached through one, so that a folder is walked
    under its own path; an unreadable folder is passed over."""
    seen: set[tuple[int, int]] = set()
    real, linked = [root], []
    while real or linked:
        folder = real.pop() if real else linked.pop()
        try:
            st = folder.stat()
            if (st.st_dev, st.st_ino) in seen:
                continue  # a symbolic link back to a folder already walked: a loop, or the same folder twice
            seen.add((st.st_dev, st.st_ino))
            entries = sorted(os.scandir(folder), key=lambda e: e.name, reverse=True)
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith(".") and not hidden:
                continue
            try:
                if entry.is_dir():
                    (linked if entry.is_symlink() else real).append(Path(entry.path))
                elif entry.is_file():
                    yield Path(entry.path)
            except OSError:
                continue


def _unique(paths: Iterable[Path]) -> list[Path]:
    """Sorted, each real file once: under a path without symbolic links when there is one, else the first found."""
    out: dict[str, Path] = {}
    for p in paths:
        real = os.path.realpath(p)
        if real not in out or (real == os.path.abspath(p) and real != os.path.abspath(out[real])):
            out[real] = p
    return sorted(out.values())


def _has_hidden(pattern: re.Pattern[str]) -> bool:
    return "/\\." in pattern.pattern or pattern.pattern.startswith("\\.")


def _name_regex(part: str) -> str:
    """One path part of a glob as a regular expression that never crosses a ``/``."""
    out, i = "", 0
    while i < len(part):
        ch = part[i]
        if ch == "*":
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "[" and part.find("]", i + (3 if part[i + 1:i + 2] == "!" else 2)) > 0:
            end = part.find("]", i + (3 if part[i + 1:i + 2] == "!" else 2))
            body = part[i + 1:end]
            body = "^" + body[1:] if body.startswith("!") else body
            out += "[" + body.replace("\\", "\\\\") + "]"
            i = end
        else:
            out += re.escape(ch)
        i += 1
    return out


def _glob_base(pattern: Path) -> tuple[Path, re.Pattern[str]]:
    """The folder before the first part with a wildcard, and the whole pattern as a regular expression over posix
    paths: ``*`` and ``?`` within one name, ``[...]`` a character class, ``**`` any number of folders."""
    parts = pattern.parts
    first = next(i for i, part in enumerate(parts) if any(ch in part for ch in "*?["))
    base = Path(*parts[:first]) if first else Path(".")
    regex = re.escape(base.as_posix().rstrip("/")) + "/" if first else ""
    for i, part in enumerate(parts[first:]):
        last = first + i == len(parts) - 1
        if part == "**":
            regex += "(?:[^/]+/)*" if not last else "(?:[^/]+/)*[^/]+"
            continue
        regex += _name_regex(part)
        regex += "" if last else "/"
    if base == Path("."):
        regex = "(?:\\./)?" + regex
    return base, re.compile(regex, re.DOTALL)


class _Batcher:
    """Collects windows for the network and runs it ``batch_size`` windows at a time."""

    def __init__(self, predictor: Predictor, batch_size: int) -> None:
        self.predictor = predictor
        self.batch_size = max(int(batch_size), 1)
        self.items: list[tuple[dict[str, Any], np.ndarray, np.ndarray, bool, bool]] = []
        self.model_seconds = 0.0

    def add(self, row: dict[str, Any], crops: np.ndarray, mfcc: np.ndarray, drop_video: bool, video_only: bool
            ) -> None:
        self.items.append((row, crops, mfcc, drop_video, video_only))
        if len(self.items) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.items:
            return
        rows, crops, mfcc, dv, vo = zip(*self.items, strict=True)
        self.items = []
        start = time.perf_counter()
        probs = self.predictor.predict(np.stack(crops), np.stack(mfcc), np.array(dv), np.array(vo))
        self.model_seconds += time.perf_counter() - start
        names = self.predictor.class_names
        for row, p in zip(rows, probs, strict=True):
            row.update({c: float(v) for c, v in zip(names, p, strict=True)})
            row["predicted"] = names[int(np.argmax(p))]


@dataclass
class StageTimes:
    """Seconds spent per stage over a run (for bench/predict.py)."""

    decode: float = 0.0
    faces: float = 0.0
    mfcc: float = 0.0
    model: float = 0.0
    video_s: float = 0.0


def _window_row(file: str, raw: RawWindow, frames: int) -> dict[str, Any]:
    w = raw.window
    return {"file": file, "window": w.index, "start_s": round(w.start, 3), "end_s": round(w.end, 3),
            "frames": frames}


def process_window(raw: RawWindow, file: str, predictor: Predictor, crop: CropSettings, file_has_audio: bool,
                   times: StageTimes | None = None) -> tuple[dict[str, Any], tuple | None]:
    """One decoded window -> its CSV row and, when the network must run, (crops, mfcc, drop_video, video_only)."""
    s = predictor.settings
    row = _window_row(file, raw, s.frames)
    notes = []
    if raw.window.short:
        notes.append(f"the video ({raw.window.span:.2f} s) is shorter than a window: its frames span the whole "
                     f"video")
    if raw.frames is None:
        row.update(status=NOT_PREDICTED, reason=raw.problem or "no frames", audio_present=None)
        return row, None
    has_face, crops = True, None
    if predictor.uses_video:
        t0 = time.perf_counter()
        faces = window_faces(raw.frames, crop)
        if times is not None:
            times.faces += time.perf_counter() - t0
        row["face_frames"] = faces.face_frames
        has_face, crops = faces.crops is not None, faces.crops
    audio_present = raw.audio is not None and raw.audio_coverage > 0
    row["audio_present"] = audio_present if predictor.uses_audio else file_has_audio
    if predictor.uses_audio and audio_present and raw.audio_coverage < 0.999:
        notes.append(f"the audio track covers {raw.audio_coverage:.0%} of the audio window (zeros after it)")
    if predictor.uses_audio and not audio_present:
        why = "no audio stream" if not file_has_audio else "the audio track does not reach this window"
        if predictor.video_only is None:
            row.update(status=NOT_PREDICTED, reason=f"{why}: {NO_VIDEO_ONLY_PATH}")
            return row, None
        if not has_face:
            row.update(status=NOT_PREDICTED, reason=f"{why} and no face in any of the {s.frames} frames")
            return row, None
        status, video_only, drop_video = VIDEO_ONLY, True, False
        notes.insert(0, f"{why}: predicted from the video alone (the model's video-only path)")
    elif predictor.uses_video and not has_face:
        if not predictor.uses_audio:
            row.update(status=NOT_PREDICTED, reason=f"no face in any of the {s.frames} frames and the model "
                                                    f"uses only the video")
            return row, None
        status, video_only, drop_video = NO_FACE, False, True
        notes.insert(0, f"face found in {row.get('face_frames', 0)} of {s.frames} frames (min_face_frames="
                        f"{crop.min_face_frames}): video removed (zeros after normalisation, cfnsr.data.missing)")
    else:
        status, video_only, drop_video = OK, False, False
    if crops is None:
        crops = np.zeros((s.frames, s.size, s.size, 3), np.uint8)
    if predictor.uses_audio and audio_present:
        t0 = time.perf_counter()
        mfcc = predictor.mfcc(raw.audio)
        if times is not None:
            times.mfcc += time.perf_counter() - t0
    else:
        mfcc = np.zeros(predictor.mfcc_shape, np.float32)
    row.update(status=status, reason="; ".join(notes))
    return row, (crops, mfcc, drop_video, video_only)


def predict_file(path: Path, predictor: Predictor, opts: PredictOptions, batcher: _Batcher,
                 bar_windows: Any = None, times: StageTimes | None = None) -> FileResult:
    """All windows of one file (their probabilities are filled in when the batcher runs); never raises for a bad
    file."""
    file, s, start = str(path), predictor.settings, time.perf_counter()
    try:
        info = probe(path)
    except InputError as exc:
        result = FileResult(file, None)
        result.summary = summary_row(file, [], predictor.class_names, None, s.frames, None, ERROR, str(exc))
        return result
    result = FileResult(file, info)
    refusal = _refusal(path, predictor, info)
    if refusal is not None:
        reason, has_audio = refusal
        result.summary = summary_row(file, [], predictor.class_names, info.duration, s.frames, has_audio, ERROR,
                                     reason)
        return result
    window_s = float(opts.window_s) if opts.window_s else predictor.window_s
    windows = plan_windows(info.duration, window_s, float(opts.hop_s) if opts.hop_s else window_s, s.frames,
                           s.audio_offset, s.audio_duration)
    stream = WindowStream(path, windows, s.sample_rate, predictor.audio_samples,
                          with_audio=predictor.uses_audio, threads=opts.decode_threads)
    if bar_windows is not None:
        bar_windows.reset(total=len(windows))
        bar_windows.set_description(path.name[:40])
    failure = _predict_windows(result, stream, predictor, opts, batcher, bar_windows, times)
    for w in windows[len(result.windows):]:  # windows the decoder never reached
        result.windows.append({"file": file, "window": w.index, "start_s": round(w.start, 3),
                               "end_s": round(w.end, 3), "frames": s.frames, "status": NOT_PREDICTED,
                               "reason": failure or "not decoded"})
    batcher.flush()
    if times is not None:
        times.model = batcher.model_seconds
        times.video_s += info.duration
    notes = []
    st = stream.stats
    if st.video_corrupt or st.audio_corrupt:
        notes.append(f"{st.video_corrupt} video and {st.audio_corrupt} audio packets rejected by the decoder "
                     f"and skipped")
    if failure:
        notes.append(failure)
    status = None
    if failure and not any(w["status"] in (OK, NO_FACE, VIDEO_ONLY) for w in result.windows):
        status = ERROR
    result.summary = summary_row(file, result.windows, predictor.class_names, info.duration, s.frames,
                                 info.has_audio, status, "; ".join(notes) or None)
    result.seconds = time.perf_counter() - start
    return result


def _refusal(path: Path, predictor: Predictor, info: VideoInfo) -> tuple[str, bool] | None:
    """(why this file gets no windows at all, the has-audio column of its row), or None when it gets them: no
    audio for an audio-visual model without a video-only path, or a file whose decoding kills a process (checked
    in a child process)."""
    if predictor.uses_audio and not info.has_audio and predictor.video_only is None:
        return f"{NO_VIDEO_ONLY_PATH} (fusion {predictor.fusion})", False
    crash = check_decode(path, with_audio=predictor.uses_audio and info.has_audio)
    return (crash, info.has_audio) if crash is not None else None


def _predict_windows(result: FileResult, stream: WindowStream, predictor: Predictor, opts: PredictOptions,
                     batcher: _Batcher, bar_windows: Any, times: StageTimes | None) -> str | None:
    """Decode ``stream`` window by window into ``result.windows`` (and the batcher); returns why decoding stopped
    early, or None when it ran to the end."""
    crop = predictor.crop_settings(opts.smooth, opts.min_face_frames, opts.box_shift, opts.box_scale)
    assert result.info is not None
    it = iter(stream)
    while True:
        t0 = time.perf_counter()
        try:
            raw = next(it, None)
        except Exception as exc:  # noqa: BLE001 - a broken file must not stop a folder run
            return f"decoding stopped: {type(exc).__name__}: {exc}"
        finally:
            if times is not None:
                times.decode += time.perf_counter() - t0
        if raw is None:
            return None
        try:
            row, model_input = process_window(raw, result.file, predictor, crop, result.info.has_audio, times)
        except Exception as exc:  # noqa: BLE001 - one odd window (a frame the detector chokes on...) is reported
            row, model_input = _window_row(result.file, raw, predictor.settings.frames), None
            row.update(status=NOT_PREDICTED, reason=f"{type(exc).__name__}: {exc}")
        result.windows.append(row)
        if model_input is not None:
            batcher.add(row, *model_input)
        if bar_windows is not None:
            bar_windows.update(1)


def predict_paths(paths: list[Path], predictor: Predictor, opts: PredictOptions, out_dir: str | Path,
                  times: StageTimes | None = None) -> dict[str, Any]:
    """Predict every file of ``paths``; write ``predictions.csv`` and the timelines into ``out_dir``."""
    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    batcher = _Batcher(predictor, opts.batch_size)
    results: list[FileResult] = []
    rows: list[dict[str, Any]] = []
    csv_path: Path | None = None
    taken: set[str] = set()
    bar_files = tqdm(paths, desc="files", unit="file", disable=not opts.progress, position=0, dynamic_ncols=True)
    bar_windows = tqdm(total=0, desc="windows", unit="window", disable=not opts.progress, position=1, leave=False,
                       dynamic_ncols=True)
    try:
        for path in bar_files:
            try:
                result = predict_file(Path(path), predictor, opts, batcher, bar_windows, times)
            except Exception as exc:  # noqa: BLE001 - a folder run never stops at one bad file
                batcher.items = []
                result = FileResult(str(path), None)
                result.summary = summary_row(str(path), [], predictor.class_names, None, predictor.settings.frames,
                                             None, ERROR, f"unexpected {type(exc).__name__}: {exc}")
            if opts.timeline and result.windows:
                summary = result.summary
                overall = summary.get("predicted") or summary.get("status")
                extra = " (no audio: video-only path)" if summary.get("status") == VIDEO_ONLY else ""
                span = result.windows[0]["end_s"] - result.windows[0]["start_s"]
                hop = (result.windows[1]["start_s"] - result.windows[0]["start_s"]) if len(result.windows) > 1 \
                    else span
                title = (f"{Path(path).name}: {overall} overall{extra}\n{predictor.fusion} / {predictor.backbone}, "
                         f"windows of {span:.2f} s every {hop:.2f} s")
                result.timeline = timeline_png(out / unique_png_name(Path(path).stem, taken), title,
                                               result.windows, predictor.class_names,
                                               result.info.duration if result.info else None)
            results.append(result)
            # after every file (atomically): a run that dies later keeps the files done so far
            rows.extend((*result.windows, result.summary))
            csv_path = write_csv(out / "predictions.csv", rows, predictor.class_names)
    finally:
        bar_windows.close()
        bar_files.close()
    if csv_path is None:  # no file at all: the header alone
        csv_path = write_csv(out / "predictions.csv", rows, predictor.class_names)
    return {"csv": csv_path, "results": results, "rows": rows,
            "timelines": [r.timeline for r in results if r.timeline is not None]}


def format_summary(report: dict[str, Any]) -> str:
    lines = []
    for r in report["results"]:
        s = r.summary
        what = s.get("predicted") or "-"
        lines.append(f"  {r.file}: {what} [{s.get('status')}] {s.get('reason') or ''}".rstrip())
    lines.append(f"predictions: {report['csv']}")
    for png in report["timelines"]:
        lines.append(f"timeline:    {png}")
    return "\n".join(lines)


def predict(cfg: DictConfig) -> dict[str, Any]:
    """The Hydra entry point's work: ``cfg.ckpt_path``, ``cfg.input``, ``cfg.predict.*``, ``cfg.paths.output_dir``."""
    opts = PredictOptions.from_cfg(dict(cfg.predict))
    if (opts.window_s is not None and opts.window_s <= 0) or (opts.hop_s is not None and opts.hop_s <= 0):
        raise ValueError(f"predict.window_s and predict.hop_s must be > 0 (or null), got {opts.window_s}, "
                         f"{opts.hop_s}")
    paths = expand_inputs(cfg.input)
    predictor = load_predictor(cfg.ckpt_path, device=cfg.predict.device)
    window_s = opts.window_s or predictor.window_s
    print(f"predict: {len(paths)} file(s) with {cfg.ckpt_path} ({predictor.fusion} / {predictor.backbone}, "
          f"{predictor.settings.frames} frames of {predictor.settings.size}px per window); windows of "
          f"{window_s:.2f} s every {opts.hop_s or window_s:.2f} s on {predictor.device}", file=sys.stderr)
    report = predict_paths(paths, predictor, opts, cfg.paths.output_dir)
    print(format_summary(report))
    return report
