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

import bisect
import math
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from cfnsr.predict.audio_track import AUDIO_JITTER, AudioTrack
from cfnsr.predict.probe import InputError, video_stream

# The audio is decoded this far (s) ahead of the video, so that a window's audio is there when its frames are.
_AUDIO_LEAD = 1.0
# A tail the regular windows leave uncovered gets a window ending at the video's end when it is longer than this
# fraction of a window (a few milliseconds of rounding in the duration do not make a near-duplicate window).
_MIN_TAIL = 0.05


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
        # Whether a decoded frame lies inside each window [start, end]: a window without one would only get
        # frames from outside it (a gap in the timeline: minutes away), so it is served without frames and marked.
        self.starts = np.array([w.start for w in windows], dtype=np.float64)
        self.ends = np.array([w.end for w in windows], dtype=np.float64)
        self.has_frame = np.zeros(len(windows), dtype=bool)
        self.frame_times: list[float] = []  # every decoded frame's time (floats: bounded by the frames present)

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
        self.frame_times.append(t)
        # windows with start <= t <= end (starts and ends are both increasing)
        lo, hi = int(np.searchsorted(self.ends, t, side="left")), int(np.searchsorted(self.starts, t, side="right"))
        if lo < hi:
            self.has_frame[lo:hi] = True
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

    def gap_problem(self, w: int) -> str | None:
        """Why window ``w`` has no frames of its own (no decoded frame inside it), or None when it has one."""
        if self.has_frame[w] or not self.frame_times:
            return None
        start, end = self.windows[w].start, self.windows[w].end
        i = bisect.bisect_left(self.frame_times, start)
        before = f"{self.frame_times[i - 1]:.2f} s" if i > 0 else "the start"
        after = f"{self.frame_times[i]:.2f} s" if i < len(self.frame_times) else "the end of the stream"
        return (f"no video frame inside this window ({start:.2f}-{end:.2f} s): the video has none from {before} to "
                f"{after} (a gap in its timeline); frames from outside the window are not used")

    def take(self, w: int) -> tuple[np.ndarray | None, np.ndarray]:
        frames, times = self.frames.pop(w, None), self.times.pop(w, None)
        if not self.has_frame[w]:
            return None, times if times is not None else np.zeros(len(self.windows[w].frame_times))
        if frames is None or any(f is None for f in frames):
            return None, times if times is not None else np.zeros(len(self.windows[w].frame_times))
        return np.stack(frames), times

    def held(self) -> int:
        return len({id(f) for fs in self.frames.values() for f in fs if f is not None})


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

    def _open_video(self, vc: av.container.InputContainer) -> tuple[av.video.stream.VideoStream, _Clock, float]:
        """The video stream (decoder threads set), its frame clock and the container's start time (s); seeks
        to ``self.seek`` when given."""
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
        return vstream, clock, start

    def _open_audio(self, ac: av.container.InputContainer, start: float) -> tuple[AudioTrack, Iterator[av.AudioFrame]]:
        """The audio track that buffers decoded samples for the windows, and the decoded frames that feed it."""
        astream = ac.streams.audio[0]
        tick = float(astream.time_base) if astream.time_base else 0.0
        track = AudioTrack(self.sample_rate, origin=start, jitter=max(AUDIO_JITTER, 1.5 * tick),
                           anchor_first=self.seek is not None)
        if self.seek is not None:
            first_audio = min((w.audio_start for w in self.windows), default=self.seek)
            ac.seek(int(max(first_audio + start - 0.5, 0.0) * av.time_base), backward=True)
        return track, _decoded(ac, astream, self.stats, "audio")

    def _run(self, vc: av.container.InputContainer, ac: av.container.InputContainer | None) -> Iterator[RawWindow]:
        vstream, clock, start = self._open_video(vc)
        track, audio_frames = self._open_audio(ac, start) if ac is not None else (None, None)
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
                gap = sched.gap_problem(w)
                frames, times = sched.take(w)
                audio, coverage = None, 0.0
                if track is not None:
                    self.stats.max_audio_held_s = max(self.stats.max_audio_held_s, track.held_seconds())
                    audio, coverage = track.get(self._audio_start(w), self.audio_samples)
                    if w + 1 < len(self.windows):
                        track.discard_before(self._audio_start(w + 1))
                problem = sched.problems.get(w) or gap
                if frames is None and problem is None:
                    problem = "the video stream ended before this window's frames"
                pending += 1
                yield RawWindow(self.windows[w], frames, times, audio, coverage, problem)

        for frame in _decoded(vc, vstream, self.stats, "video"):
            self.stats.frames_decoded += 1
            t = clock(frame)
            sched.push(frame, t)
            # once per frame, before windows are served (counting per served window was quadratic in the open
            # windows: a frame after a long gap completes thousands at once)
            self.stats.max_frames_held = max(self.stats.max_frames_held, sched.held())
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
