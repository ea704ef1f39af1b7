"""Cut a video into windows and decode them in one streaming pass, holding only the current windows' frames.

A model trained on RAVDESS clips saw T frames sampled at k*D/T over one clip and the MFCC of ``audio_duration``
seconds starting ``audio_offset`` seconds into it. A longer video is cut into windows of ``window_s`` seconds every
``hop_s`` seconds; window w gets the T frames nearest to ``start_w + k * window_s / T`` and the audio window placed as
in training (``audio_offset`` after the window start), so each window is shaped like a training clip.

Decoding is one sequential pass (no seeking): the video and the audio stream are demuxed from two handles on the same
file, the audio kept a little ahead of the video, so the memory held is bounded whatever the length and the
interleaving of the file: the RGB frames chosen for the windows not yet complete (T per window, shared between
overlapping windows), the last decoded frame, and the audio from the oldest open window's audio start on.

Timing follows cfnsr.data.media.decode_clip: video times are measured from the first video frame, by presentation
timestamps unless they go backwards (in display order) more often than decode timestamps do (AVI); audio is placed
by its frames' timestamps from the container's start (zeros where the track starts late or has holes), averaged to
mono over the channels and resampled to the checkpoint's sample rate.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

# Container formats that hold a single picture (or a picture sequence read as images), not a video.
_IMAGE_FORMATS = {"image2", "image2pipe", "gif_pipe", "apng", "webp_pipe"}
# The audio is decoded this far (s) ahead of the video, so that a window's audio is there when its frames are.
_AUDIO_LEAD = 1.0
# Audio timestamps this close (s) to where the previous frame ended count as contiguous (containers round them).
_AUDIO_JITTER = 0.005
# A hole in the audio longer than this (s) is not filled with zeros (a wild timestamp must not allocate hours).
_MAX_AUDIO_GAP = 600.0
_RESAMPLE_BLOCK = 1 << 16
# Audio frames held back to place the track (the median of their timestamp offsets): ~1.1 s of AAC, 1.5 s of AC3.
_SETTLE_FRAMES = 48
# A tail the regular windows leave uncovered gets a window ending at the video's end when it is longer than this
# fraction of a window (a few milliseconds of rounding in the duration do not make a near-duplicate window).
_MIN_TAIL = 0.05


class InputError(RuntimeError):
    """A file that cannot be predicted on: not a media file, no video stream, unreadable... The message says why."""


# ----------------------------------------------------------------------------------------------------------- probe

@dataclass(frozen=True)
class VideoInfo:
    """What the file's headers (or, when they lack a duration, a demux pass) say."""

    duration: float  # s, video stream (else container) duration
    fps: float
    width: int
    height: int
    has_audio: bool
    container: str
    video_codec: str
    audio_codec: str | None


def probe(path: str | Path) -> VideoInfo:
    """Open ``path`` and describe its first video stream; raises ``InputError`` when it is not a usable video."""
    path = Path(path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror or exc})") from exc
    if size == 0:
        raise InputError("empty file (0 bytes)")
    try:
        with av.open(str(path)) as container:
            fmt = container.format.name
            vstream = video_stream(container)
            if vstream is None:
                kinds = sorted({s.type for s in container.streams}) or ["no streams"]
                what = "only a cover picture" if container.streams.video else "no video stream"
                raise InputError(f"not a video: {what} ({fmt}: {', '.join(kinds)})")
            if fmt in _IMAGE_FORMATS or fmt.endswith("_pipe") or (vstream.frames == 1):
                raise InputError(f"not a video: a still image ({fmt})")
            duration = _header_duration(container, vstream)
            if duration is None or duration <= 0:
                duration = _demuxed_duration(container, vstream)
            if duration is None or duration <= 0:
                raise InputError("not a video: no duration and no timestamped video packets")
            rate = vstream.average_rate or vstream.guessed_rate
            astream = container.streams.audio[0] if container.streams.audio else None
            return VideoInfo(
                duration=float(duration), fps=float(rate) if rate else 0.0,
                width=int(vstream.codec_context.width), height=int(vstream.codec_context.height),
                has_audio=astream is not None, container=fmt, video_codec=vstream.codec_context.name,
                audio_codec=astream.codec_context.name if astream is not None else None)
    except InputError:
        raise
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise InputError(f"not a media file FFmpeg can read ({type(exc).__name__}: {exc})") from exc


def video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    """The first video stream that is not an attached picture (the cover art of an audio file)."""
    flag = getattr(getattr(av.stream, "Disposition", None), "attached_pic", None)
    for stream in container.streams.video:
        if flag is not None and int(getattr(stream, "disposition", 0) or 0) & int(flag):
            continue
        return stream
    return None


def _header_duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _demuxed_duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    """End of the last video packet minus the first one's start, by demuxing (no decoding)."""
    first = last = None
    for packet in container.demux(stream):
        if packet.pts is None or packet.time_base is None:
            continue
        t0 = float(packet.pts * packet.time_base)
        t1 = t0 + float((packet.duration or 0) * packet.time_base)
        first = t0 if first is None else min(first, t0)
        last = t1 if last is None else max(last, t1)
    return None if first is None else last - first


# ----------------------------------------------------------------------------------------------------------- plan

@dataclass(frozen=True)
class Window:
    """One window: frames at ``frame_times`` (s from the first video frame), audio from ``audio_start`` (s)."""

    index: int
    start: float
    end: float
    frame_times: np.ndarray  # float64 (T,), start + k * (end - start) / T
    audio_start: float
    short: bool = False  # the video is shorter than a window: this one spans the whole video

    @property
    def span(self) -> float:
        return self.end - self.start


def default_window_s(audio_offset: float, audio_duration: float) -> float:
    """The training clip length the audio window implies: offset + duration rounded up to 0.1 s (0.5 + 2.45 -> 3.0)."""
    return math.ceil(round((audio_offset + audio_duration) * 10, 6)) / 10


def audio_offset_in(span: float, audio_offset: float, audio_duration: float) -> float:
    """Where the audio window starts inside a window of ``span`` s: ``audio_offset`` as in training when the audio
    window fits, else centred (a window shorter than offset + duration), never before the window start."""
    if audio_offset + audio_duration <= span + 1e-9:
        return audio_offset
    return max(0.0, (span - audio_duration) / 2)


def plan_windows(duration: float, window_s: float, hop_s: float, frames: int, audio_offset: float,
                 audio_duration: float) -> list[Window]:
    """Windows of ``window_s`` every ``hop_s`` over [0, duration], plus one ending at ``duration`` when the last
    regular window stops more than 5 % of a window short of it; a video shorter than ``window_s`` gets one window
    over all of it."""
    if window_s <= 0 or hop_s <= 0 or frames <= 0:
        raise ValueError(f"window_s and hop_s must be > 0 and frames >= 1, got {window_s}, {hop_s}, {frames}")
    eps = 1e-6
    if duration <= window_s + eps:
        spans = [(0.0, duration, duration < window_s - eps)]
    else:
        starts = []
        k = 0
        while k * hop_s + window_s <= duration + eps:
            starts.append(k * hop_s)
            k += 1
        if duration - (starts[-1] + window_s) > _MIN_TAIL * window_s:
            starts.append(duration - window_s)
        spans = [(s, s + window_s, False) for s in starts]
    out = []
    for i, (start, end, short) in enumerate(spans):
        span = end - start
        times = start + np.arange(frames, dtype=np.float64) * (span / frames)
        out.append(Window(i, start, end, times, start + audio_offset_in(span, audio_offset, audio_duration), short))
    return out


# ----------------------------------------------------------------------------------------------------------- decode

@dataclass
class RawWindow:
    """A window as decoded: its frames and audio, before face cropping and MFCC.

    frames:   uint8 (T, H, W, 3) RGB, or None when the video ended before this window's frames (``problem`` says so)
    times:    float64 (T,) time of each frame returned
    audio:    float32 (n,) the audio window at the stream's sample rate (zeros where the track has no samples), or
              None without an audio stream
    audio_coverage: fraction of the audio window the track covered
    """

    window: Window
    frames: np.ndarray | None
    times: np.ndarray
    audio: np.ndarray | None
    audio_coverage: float
    problem: str | None = None


@dataclass
class StreamStats:
    video_packets: int = 0
    video_corrupt: int = 0
    audio_packets: int = 0
    audio_corrupt: int = 0
    frames_decoded: int = 0
    max_frames_held: int = 0  # distinct RGB frames held at once for open windows (the memory bound)
    max_audio_held_s: float = 0.0
    last_frame_time: float = 0.0


def _decoded(container: av.container.InputContainer, stream: av.stream.Stream, stats: StreamStats,
             kind: str) -> Iterator[av.frame.Frame]:
    """Every frame of ``stream``; a packet the decoder rejects is skipped and counted, as ffmpeg's command line does."""
    for packet in container.demux(stream):
        if packet.size:
            setattr(stats, f"{kind}_packets", getattr(stats, f"{kind}_packets") + 1)
        try:
            frames = packet.decode()
        except av.FFmpegError:
            setattr(stats, f"{kind}_corrupt", getattr(stats, f"{kind}_corrupt") + 1)
            continue
        yield from frames


class _Clock:
    """Best-effort video frame times (s from the first frame), non-decreasing."""

    def __init__(self, fps: float) -> None:
        self.step = 1.0 / fps if fps > 0 else 0.04
        self.faults = {"pts": 0, "dts": 0}
        self.last: dict[str, float | None] = {"pts": None, "dts": None}
        self.origins: dict[str, float | None] = {"pts": None, "dts": None}  # first time seen on each clock
        self.prev: float | None = None

    def start_at(self, origin: float) -> None:
        """Measure times from ``origin`` (a seeking reader never decodes the stream's first frame)."""
        self.origins = {"pts": origin, "dts": origin}

    def _see(self, key: str, t: float | None) -> None:
        if t is None:
            return
        if self.last[key] is not None and t <= self.last[key]:
            self.faults[key] += 1
        self.last[key] = t
        if self.origins[key] is None:
            self.origins[key] = t

    def __call__(self, frame: av.VideoFrame) -> float:
        t_pts = frame.time
        t_dts = float(frame.dts * frame.time_base) if frame.dts is not None and frame.time_base is not None else None
        self._see("pts", t_pts)
        self._see("dts", t_dts)
        key = "dts" if t_dts is not None and (t_pts is None or self.faults["pts"] > self.faults["dts"]) else "pts"
        raw = t_dts if key == "dts" else t_pts
        if raw is None:  # no timestamp at all: one frame on
            t = self.prev + self.step if self.prev is not None else 0.0
        else:
            t = raw - self.origins[key]
        if self.prev is not None:
            t = max(t, self.prev)
        self.prev = t
        return t


class _Held:
    """A decoded frame and its RGB array, converted on first use."""

    __slots__ = ("t", "frame", "rgb")

    def __init__(self, t: float, frame: av.VideoFrame) -> None:
        self.t, self.frame, self.rgb = t, frame, None

    def array(self, reformatter: VideoReformatter) -> np.ndarray:
        if self.rgb is None:
            self.rgb = reformatter.reformat(self.frame, format="rgb24").to_ndarray()
            self.frame = None  # the RGB copy is all that is needed from now on
        return self.rgb


class _FrameScheduler:
    """Assigns to every window's target times the nearest decoded frame (ties: the earlier), as frames arrive in
    time order: the nearest frame to a target is the last one before it or the first one after it."""

    def __init__(self, windows: list[Window]) -> None:
        self.windows = windows
        times = np.concatenate([w.frame_times for w in windows]) if windows else np.zeros(0)
        owner = np.concatenate([np.full(len(w.frame_times), i) for i, w in enumerate(windows)]) if windows else \
            np.zeros(0, dtype=np.int64)
        slot = np.concatenate([np.arange(len(w.frame_times)) for w in windows]) if windows else np.zeros(0, np.int64)
        order = np.argsort(times, kind="stable")
        self.targets, self.owner, self.slot = times[order], owner[order], slot[order]
        self.ptr = 0
        self.frames: dict[int, list[np.ndarray | None]] = {}
        self.times: dict[int, np.ndarray] = {}
        self.missing = {i: len(w.frame_times) for i, w in enumerate(windows)}
        self.prev: _Held | None = None
        self.reformatter = VideoReformatter()
        self.problems: dict[int, str] = {}

    def _assign(self, i: int, held: _Held) -> None:
        w, k = int(self.owner[i]), int(self.slot[i])
        if w not in self.frames:
            self.frames[w] = [None] * len(self.windows[w].frame_times)
            self.times[w] = np.zeros(len(self.windows[w].frame_times))
        self.frames[w][k] = held.array(self.reformatter)
        self.times[w][k] = held.t
        self.missing[w] -= 1

    def push(self, frame: av.VideoFrame, t: float) -> None:
        cur = _Held(t, frame)
        prev = self.prev
        while self.ptr < len(self.targets) and self.targets[self.ptr] <= t:
            tau = self.targets[self.ptr]
            pick = prev if prev is not None and (tau - prev.t) <= (t - tau) else cur
            self._assign(self.ptr, pick)
            self.ptr += 1
        if prev is not None and prev.rgb is None:
            prev.frame = None  # not chosen by any target: drop the decoded picture
        self.prev = cur

    def finish(self, frame_step: float) -> None:
        """End of stream: targets within two frame steps after the last frame take it; later ones are missing."""
        last = self.prev
        while self.ptr < len(self.targets):
            tau = self.targets[self.ptr]
            if last is not None and tau - last.t <= 2.0 * frame_step:
                self._assign(self.ptr, last)
            else:
                w = int(self.owner[self.ptr])
                end = f"{last.t:.2f} s" if last is not None else "its start (no frame decoded)"
                self.problems.setdefault(w, f"the video ends at {end}, before this window's frames "
                                            f"(truncated file or wrong duration in its header)")
            self.ptr += 1
        if last is not None and last.rgb is None:
            last.frame = None

    def complete(self, w: int) -> bool:
        return self.missing[w] == 0

    def take(self, w: int) -> tuple[np.ndarray | None, np.ndarray]:
        frames, times = self.frames.pop(w, None), self.times.pop(w, None)
        if frames is None or any(f is None for f in frames):
            return None, times if times is not None else np.zeros(len(self.windows[w].frame_times))
        return np.stack(frames), times

    def held(self) -> int:
        return len({id(f) for fs in self.frames.values() for f in fs if f is not None})


def _mono(frame: av.AudioFrame) -> np.ndarray:
    """float32 (samples,): the mean of the channels, for any sample format (planar or packed, int or float)."""
    data = frame.to_ndarray()
    channels = frame.layout.nb_channels or 1
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T
    kind = frame.format.packed.name
    if kind == "u8":
        data = (data.astype(np.float32) - 128.0) / 128.0
    elif kind in ("s16", "s32", "s64"):
        data = data.astype(np.float32) / np.float32(2.0 ** ({"s16": 15, "s32": 31, "s64": 63}[kind]))
    return data.astype(np.float32, copy=False).mean(axis=0)


class _AudioTrack:
    """The audio as a sliding buffer of mono samples at ``rate``; sample i is at i / rate s from ``origin``.

    Frames are placed as ``cfnsr.data.media`` places them: one after the other, a frame whose timestamp is further
    than ``jitter`` from where the previous one ended opening a gap of zeros (a gap within ``jitter`` of a whole
    number of frames counts as exactly that many) or moving back; the whole track then sits at the median
    difference between the frames' timestamps and their places, so that one odd timestamp (AVI derives them from
    byte counts; the first frame after a corrupt packet) does not shift it. ``decode_clip`` takes that median over
    the whole track; a stream cannot wait for the end, so here it is taken over the first ``_SETTLE_FRAMES`` frames,
    which are held back until then. A frame moved back over samples already passed on has its overlap dropped
    (decode_clip overwrites the earlier samples instead).
    """

    def __init__(self, rate: int, origin: float, jitter: float, anchor_first: bool = False) -> None:
        self.rate = rate
        self.anchor_first = anchor_first  # a seeking reader: the track starts where its first frame belongs
        self.origin = origin
        self.jitter = jitter
        self.in_rate: int | None = None
        self.pos = 0  # place of the next frame if it follows directly (input samples, before the shift)
        self.last_len = 0
        self.offsets: list[float] = []  # timestamp minus place, of the first timestamped frames
        self.shift: int | None = None  # median of offsets, once settled
        self.pending: list[tuple[int, np.ndarray]] = []  # (place, samples) held until the shift is known
        self.fed: int | None = None  # input samples passed to the resampler (from origin)
        self.resampler: av.AudioResampler | None = None
        self.chunks: list[np.ndarray] = []
        self.base = 0  # out-rate index of chunks[0][0]
        self.end = 0  # out-rate samples produced so far
        self.done = False
        self.n_frames = 0

    @property
    def end_time(self) -> float:
        return self.end / self.rate

    def push(self, frame: av.AudioFrame) -> None:
        samples = _mono(frame)
        if self.in_rate is None:
            self.in_rate = int(frame.sample_rate)
            if self.in_rate != self.rate:
                self.resampler = av.AudioResampler(format="fltp", layout="mono", rate=self.rate)
        elif frame.sample_rate != self.in_rate:  # a rate change mid-stream: bring the frame to the track's rate
            n = int(round(len(samples) * self.in_rate / frame.sample_rate))
            samples = np.interp(np.arange(n) * (frame.sample_rate / self.in_rate), np.arange(len(samples)),
                                samples).astype(np.float32)
        self.n_frames += 1
        if frame.time is not None:
            at = (frame.time - self.origin) * self.in_rate  # where the frame belongs, in input samples
            if self.offsets:
                gap = at - (self.offsets[0] + self.pos)
                tolerance = self.jitter * self.in_rate
                if abs(gap) > tolerance:
                    whole = round(gap / self.last_len) if self.last_len else 0
                    if whole > 0 and abs(gap - whole * self.last_len) <= tolerance:
                        gap = whole * self.last_len
                    self.pos += int(round(max(gap, -self.pos) if gap < 0 else min(gap, _MAX_AUDIO_GAP
                                                                                   * self.in_rate)))
            if self.shift is None:
                self.offsets.append(at - self.pos)
        place = self.pos
        self.pos += len(samples)
        self.last_len = len(samples)
        if self.shift is None:
            self.pending.append((place, samples))
            if len(self.offsets) >= _SETTLE_FRAMES:
                self._settle()
        else:
            self._emit(place + self.shift, samples)

    def _settle(self) -> None:
        self.shift = int(round(float(np.median(self.offsets)))) if self.offsets else 0
        pending, self.pending = self.pending, []
        for place, samples in pending:
            self._emit(place + self.shift, samples)

    def _emit(self, place: int, samples: np.ndarray) -> None:
        """Pass ``samples`` (input rate) that belong at ``place`` on: zeros before them if there is a hole, their
        overlap with what was passed on dropped."""
        assert self.in_rate is not None
        if self.fed is None:
            self.fed = max(place, 0) if self.anchor_first else 0
            self.base = self.end = int(round(self.fed * self.rate / self.in_rate))
        if place > self.fed:
            self._feed(np.zeros(place - self.fed, np.float32))
        elif place < self.fed:
            samples = samples[min(len(samples), self.fed - place):]
        self._feed(samples)

    def _feed(self, samples: np.ndarray) -> None:
        if len(samples) == 0:
            return
        assert self.in_rate is not None and self.fed is not None
        if self.resampler is None:
            self._append(samples)
        else:
            for start in range(0, len(samples), _RESAMPLE_BLOCK):
                block = np.ascontiguousarray(samples[None, start:start + _RESAMPLE_BLOCK])
                frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")
                frame.sample_rate, frame.time_base = self.in_rate, Fraction(1, self.in_rate)
                frame.pts = self.fed + start
                for out in self.resampler.resample(frame):
                    self._append(out.to_ndarray()[0])
        self.fed += len(samples)

    def _append(self, samples: np.ndarray) -> None:
        if len(samples):
            self.chunks.append(np.ascontiguousarray(samples, dtype=np.float32))
            self.end += len(samples)

    def finish(self) -> None:
        if self.shift is None and self.in_rate is not None:
            self._settle()
        if self.resampler is not None and not self.done:
            for out in self.resampler.resample(None):
                self._append(out.to_ndarray()[0])
        self.done = True

    def get(self, start: int, length: int) -> tuple[np.ndarray, float]:
        """Samples [start, start + length) (zeros outside the track) and the fraction the track covered."""
        out = np.zeros(length, np.float32)
        pos = self.base
        covered = 0
        for chunk in self.chunks:
            a, b = max(start, pos), min(start + length, pos + len(chunk))
            if a < b:
                out[a - start:b - start] = chunk[a - pos:b - pos]
                covered += b - a
            pos += len(chunk)
            if pos >= start + length:
                break
        return out, covered / max(length, 1)

    def discard_before(self, sample: int) -> None:
        while self.chunks and self.base + len(self.chunks[0]) <= sample:
            self.base += len(self.chunks.pop(0))

    def held_seconds(self) -> float:
        return (self.end - self.base) / self.rate


class WindowStream:
    """Iterate ``RawWindow`` s of ``path`` in window order, decoding the file once.

    windows:      from ``plan_windows``
    sample_rate:  audio is returned at this rate (the checkpoint's)
    audio_samples: length of each window's audio (``int(audio_duration * sample_rate)``, as in training)
    with_audio:   decode the audio stream (when the file has one)
    threads:      video decoder threads (0: FFmpeg's choice, 1: single-threaded)
    seek:         start decoding at the key frame before this time (s) instead of the file's start (the per-window
                  seeking baseline of bench/predict.py; windows before it are not served)
    """

    def __init__(self, path: str | Path, windows: list[Window], sample_rate: int, audio_samples: int,
                 with_audio: bool = True, threads: int = 0, seek: float | None = None) -> None:
        self.path = Path(path)
        self.windows = windows
        self.sample_rate = sample_rate
        self.audio_samples = audio_samples
        self.with_audio = with_audio
        self.threads = threads
        self.seek = seek
        self.stats = StreamStats()

    def _audio_start(self, w: int) -> int:
        return int(round(self.windows[w].audio_start * self.sample_rate))

    def __iter__(self) -> Iterator[RawWindow]:
        with av.open(str(self.path)) as vc:
            has_audio = self.with_audio and bool(vc.streams.audio)
            with (av.open(str(self.path)) if has_audio else nullcontext()) as ac:
                yield from self._run(vc, ac)

    def _run(self, vc: av.container.InputContainer, ac: av.container.InputContainer | None) -> Iterator[RawWindow]:
        vstream = video_stream(vc)
        if vstream is None:
            raise InputError("not a video: no video stream")
        ctx = vstream.codec_context
        if self.threads == 1:
            ctx.thread_count = 1
        else:
            ctx.thread_type = "AUTO"
            ctx.thread_count = max(self.threads, 0)
        rate = vstream.average_rate or vstream.guessed_rate
        clock = _Clock(float(rate) if rate else 0.0)
        start = max(vc.start_time / av.time_base if vc.start_time is not None else 0.0, 0.0)
        if self.seek is not None:
            # times stay measured from the stream's first frame, which a seeking reader never decodes
            clock.start_at(float(vstream.start_time * vstream.time_base) if vstream.start_time is not None else start)
            vc.seek(int((self.seek + start) * av.time_base), backward=True)
        track = audio_frames = None
        if ac is not None:
            astream = ac.streams.audio[0]
            tick = float(astream.time_base) if astream.time_base else 0.0
            track = _AudioTrack(self.sample_rate, origin=start, jitter=max(_AUDIO_JITTER, 1.5 * tick),
                                anchor_first=self.seek is not None)
            if self.seek is not None:
                first_audio = min((w.audio_start for w in self.windows), default=self.seek)
                ac.seek(int(max(first_audio + start - 0.5, 0.0) * av.time_base), backward=True)
            audio_frames = _decoded(ac, astream, self.stats, "audio")
        sched = _FrameScheduler(self.windows)
        pending = 0

        def audio_end(w: int) -> float:
            return (self._audio_start(w) + self.audio_samples) / self.sample_rate

        def pull_audio(until: float) -> None:
            assert track is not None and audio_frames is not None
            while not track.done and track.end_time < until:
                frame = next(audio_frames, None)
                if frame is None:
                    track.finish()
                else:
                    track.push(frame)

        def ready(final: bool) -> Iterator[RawWindow]:
            nonlocal pending
            while pending < len(self.windows):
                w = pending
                if not (sched.complete(w) or w in sched.problems or final):
                    return
                if track is not None and not (track.done or track.end_time >= audio_end(w)):
                    return
                self.stats.max_frames_held = max(self.stats.max_frames_held, sched.held())
                frames, times = sched.take(w)
                audio, coverage = None, 0.0
                if track is not None:
                    self.stats.max_audio_held_s = max(self.stats.max_audio_held_s, track.held_seconds())
                    audio, coverage = track.get(self._audio_start(w), self.audio_samples)
                    if w + 1 < len(self.windows):
                        track.discard_before(self._audio_start(w + 1))
                problem = sched.problems.get(w)
                if frames is None and problem is None:
                    problem = "the video stream ended before this window's frames"
                pending += 1
                yield RawWindow(self.windows[w], frames, times, audio, coverage, problem)

        for frame in _decoded(vc, vstream, self.stats, "video"):
            self.stats.frames_decoded += 1
            t = clock(frame)
            sched.push(frame, t)
            self.stats.last_frame_time = t
            if track is not None:
                pull_audio(t + _AUDIO_LEAD)
            yield from ready(final=False)
            if pending >= len(self.windows):
                return  # every window served: the rest of the file is not needed
        if self.stats.frames_decoded == 0:
            raise InputError(f"the video stream has no decodable frames ({self.stats.video_corrupt} of "
                             f"{self.stats.video_packets} packets rejected by the decoder)")
        sched.finish(clock.step)
        if track is not None and pending < len(self.windows):
            pull_audio(max(audio_end(w) for w in range(pending, len(self.windows))) + 0.05)
        yield from ready(final=True)
