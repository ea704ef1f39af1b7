"""Decode an mp4 once with PyAV: a few sampled video frames plus the whole audio track.

The public code opened each clip with moviepy and asked for each of the 30 frames by time, which made FFmpeg seek
(and decode from the previous key frame) again and again. Here every packet is demuxed and decoded exactly once, in
order, and only the frames nearest to the wanted times are converted to RGB arrays.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter


class MediaError(RuntimeError):
    """A clip that cannot be decoded (empty, truncated, missing a stream...). The message names the file."""


@dataclass(frozen=True)
class DecodedClip:
    """What one decoding pass yields.

    frames:      uint8 (T, H, W, 3) RGB, frame k is the decoded frame nearest to time k*D/T
    frame_times: float64 (T,) presentation time (s, from the first video frame) of each returned frame
    audio:       float32 (N,) mono (mean of the channels) at ``sample_rate``; sample 0 is at time 0 of the clip. None if not requested
    """

    frames: np.ndarray
    frame_times: np.ndarray
    audio: np.ndarray | None
    sample_rate: int
    duration: float  # D, seconds (video stream duration, else container duration)
    width: int
    height: int
    fps: float
    n_decoded: int  # video frames decoded in the pass


def sample_times(duration: float, count: int) -> np.ndarray:
    """The paper's frame times ``k * D / T`` for k = 0..T-1, float64 (T,)."""
    return np.arange(count, dtype=np.float64) * (duration / count)


def _video_duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _configure_threads(stream: av.video.stream.VideoStream, threads: int) -> None:
    # Frame threading pays off only when there are idle cores; with one worker process per core it just adds
    # contention, so the caller chooses.
    ctx = stream.codec_context
    if threads == 1:
        ctx.thread_count = 1
    else:
        ctx.thread_type = "AUTO"
        ctx.thread_count = max(threads, 0)


def needed_frame_slots(targets: np.ndarray, fps: float) -> set[int]:
    """Indices j of the frames at j/fps nearest to each target time (ties: both neighbours, to be safe)."""
    x = np.asarray(targets, dtype=np.float64) * fps
    lower = np.floor(x).astype(np.int64)
    frac = x - lower
    slots = set(np.where(frac <= 0.5, lower, lower + 1).tolist())
    near_tie = np.abs(frac - 0.5) < 1e-6
    slots.update(lower[near_tie].tolist())
    slots.update((lower[near_tie] + 1).tolist())
    return slots


def decode_clip(path: str | Path, num_frames: int, sample_rate: int, *, with_audio: bool = True,
                threads: int = 1, skip_unneeded: bool = True) -> DecodedClip:
    """Decode ``path`` in one sequential pass.

    num_frames:    T, frames sampled at k*D/T (nearest decoded frame; a frame may be returned twice at low fps)
    sample_rate:   audio is resampled to this rate and averaged to mono
    with_audio:    when True a missing audio stream is an error
    threads:       decoder threads for the video stream (1 = single-threaded, 0 = FFmpeg's choice)
    skip_unneeded: on a constant-frame-rate stream, let the decoder drop the non-reference frames (no other frame
                   depends on them) that are not among the T wanted ones, about a third of the H.264 decode work
                   with B-frames; the frames returned are the same
    Raises ``MediaError`` (message starts with the file name) for anything that prevents a faithful decode.
    """
    path = Path(path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise MediaError(f"{path.name}: cannot read file ({exc})") from exc
    if size == 0:
        raise MediaError(f"{path.name}: empty file (0 bytes)")
    try:
        with av.open(str(path)) as container:
            return _decode(container, path, num_frames, sample_rate, with_audio, threads, skip_unneeded)
    except MediaError:
        raise
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        # PyAV reports truncation, a missing moov atom or corrupt packets as FFmpeg errors
        raise MediaError(f"{path.name}: cannot decode ({type(exc).__name__}: {exc})") from exc


def _is_constant_rate(stream: av.video.stream.VideoStream, duration: float, fps: float) -> bool:
    """Whether frame j is at start + j/fps: the header's frame count matches duration x fps."""
    return fps > 0 and stream.start_time is not None and stream.frames > 0 and \
        abs(stream.frames - duration * fps) <= 1


def _decode(container: av.container.InputContainer, path: Path, num_frames: int, sample_rate: int,
            with_audio: bool, threads: int, skip_unneeded: bool) -> DecodedClip:
    if not container.streams.video:
        raise MediaError(f"{path.name}: no video stream")
    vstream = container.streams.video[0]
    astream = container.streams.audio[0] if container.streams.audio else None
    if with_audio and astream is None:
        raise MediaError(f"{path.name}: no audio stream")
    duration = _video_duration(container, vstream)
    if duration is None or duration <= 0:
        raise MediaError(f"{path.name}: unknown or zero duration")
    _configure_threads(vstream, threads)
    rate = vstream.average_rate or vstream.guessed_rate
    fps = float(rate) if rate else 0.0

    targets = sample_times(duration, num_frames)
    picker = _NearestFramePicker(targets)
    audio = _AudioCollector(sample_rate) if (with_audio and astream is not None) else None
    streams = [vstream] + ([astream] if audio is not None else [])

    # Slots of the wanted frames; a packet whose frame is not wanted is decoded with skip_frame=NONREF, so the
    # decoder drops it if no other frame references it (reference frames are always decoded).
    needed = needed_frame_slots(targets, fps) if skip_unneeded and _is_constant_rate(vstream, duration, fps) \
        else None
    ctx = vstream.codec_context
    tb, start_pts = vstream.time_base, vstream.start_time
    v_start: float | None = None
    n_decoded = 0
    for packet in container.demux(*streams):
        if needed is not None and packet.stream is vstream and packet.pts is not None:
            slot = round(float((packet.pts - start_pts) * tb) * fps)
            ctx.skip_frame = "DEFAULT" if slot in needed else "NONREF"
        for frame in packet.decode():
            if isinstance(frame, av.VideoFrame):
                t = frame.time if frame.time is not None else n_decoded / (fps or 1.0)
                if v_start is None:
                    v_start = t
                picker.push(frame, t - v_start)
                n_decoded += 1
            elif audio is not None:
                audio.push(frame)

    if n_decoded == 0:
        raise MediaError(f"{path.name}: video stream has no decodable frames")
    frames, times = picker.finish()
    # A file cut short still reports the full duration in its header; refuse rather than repeat the last frame.
    frame_step = 1.0 / fps if fps > 0 else 0.1
    if targets[-1] - picker.last_time > 2.0 * frame_step:
        raise MediaError(f"{path.name}: video ends at {picker.last_time:.2f} s but the header says {duration:.2f} s "
                         f"(truncated file?)")
    return DecodedClip(
        frames=frames, frame_times=times, audio=audio.finish() if audio is not None else None,
        sample_rate=sample_rate, duration=duration, width=vstream.codec_context.width,
        height=vstream.codec_context.height, fps=fps, n_decoded=n_decoded,
    )


class _NearestFramePicker:
    """Streams decoded frames and keeps, for each target time, the nearest one (ties go to the earlier frame).

    Only chosen frames are converted to RGB, so the cost of the 70-odd frames in between is the decode alone.
    """

    def __init__(self, targets: np.ndarray) -> None:
        self.targets = targets
        # one converter for the clip: VideoFrame.to_ndarray would set up a new libswscale context per frame
        self.reformatter = VideoReformatter()
        self.next = 0  # index of the first target not yet assigned
        self.chosen: list[np.ndarray | None] = [None] * len(targets)
        self.times = np.zeros(len(targets), dtype=np.float64)
        self.prev: tuple[av.VideoFrame, float] | None = None
        self.prev_rgb: np.ndarray | None = None
        self.last_time = -np.inf

    def _rgb(self, frame: av.VideoFrame) -> np.ndarray:
        return self.reformatter.reformat(frame, format="rgb24").to_ndarray()

    def push(self, frame: av.VideoFrame, t: float) -> None:
        cur_rgb: np.ndarray | None = None
        while self.next < len(self.targets) and self.targets[self.next] <= t:
            target = self.targets[self.next]
            if self.prev is not None and target - self.prev[1] <= t - target:
                if self.prev_rgb is None:
                    self.prev_rgb = self._rgb(self.prev[0])
                self.chosen[self.next], self.times[self.next] = self.prev_rgb, self.prev[1]
            else:
                if cur_rgb is None:
                    cur_rgb = self._rgb(frame)
                self.chosen[self.next], self.times[self.next] = cur_rgb, t
            self.next += 1
        self.prev, self.prev_rgb, self.last_time = (frame, t), cur_rgb, t

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """Returns frames uint8 (T, H, W, 3) and their times (T,); targets past the last frame get the last frame."""
        if self.next < len(self.targets):
            assert self.prev is not None
            rgb = self.prev_rgb if self.prev_rgb is not None else self._rgb(self.prev[0])
            for k in range(self.next, len(self.targets)):
                self.chosen[k], self.times[k] = rgb, self.prev[1]
        return np.stack(self.chosen), self.times.copy()


class _AudioCollector:
    """Resamples every decoded audio frame to float32 at ``rate``, averages the channels to mono and aligns the
    track to time 0.

    Channels are averaged here rather than downmixed by libswresample, whose stereo->mono matrix weights each
    channel by 0.707: the paper's path (moviepy's stereo wav, then librosa.load(mono=True)) takes the mean.
    """

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.resampler = av.AudioResampler(format="fltp", layout=None, rate=rate)
        self.chunks: list[np.ndarray] = []
        self.start: float | None = None

    def push(self, frame: av.AudioFrame) -> None:
        if self.start is None:
            self.start = frame.time if frame.time is not None else 0.0
        for out in self.resampler.resample(frame):
            self.chunks.append(out.to_ndarray().mean(axis=0))

    def finish(self) -> np.ndarray:
        for out in self.resampler.resample(None):
            self.chunks.append(out.to_ndarray().mean(axis=0))
        audio = np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.float32)
        # moviepy's wav starts at the clip's time 0: pad a late-starting track, drop samples before 0
        shift = int(round((self.start or 0.0) * self.rate))
        if shift > 0:
            audio = np.concatenate([np.zeros(shift, dtype=np.float32), audio])
        elif shift < 0:
            audio = audio[-shift:]
        return np.ascontiguousarray(audio, dtype=np.float32)
