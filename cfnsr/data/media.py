"""Decode a clip once with PyAV: a few sampled video frames plus the whole audio track.

The public code opened each clip with moviepy and asked for each of the 30 frames by time, which made FFmpeg seek
(and decode from the previous key frame) again and again. Here every packet is demuxed and decoded exactly once, in
order, and only the frames nearest to the wanted times are converted to RGB arrays.

Real recordings are not clean, so the pass is tolerant where FFmpeg's command line is:

* a packet the decoder rejects (PyAV raises ``av.InvalidDataError`` where ``ffmpeg`` prints a warning) is counted
  and skipped; only a stream with more than ``max_corrupt_fraction`` of its packets rejected, or with no decodable
  frame at all, makes the clip an error;
* audio is placed on the clip's timeline by each decoded frame's timestamp, so a skipped packet leaves a gap of
  zeros instead of pulling the rest of the track earlier;
* video frame times follow FFmpeg's "best effort" rule: a decoder returns frames in display order, and when a
  container's presentation timestamps are not increasing in that order (AVI stores none; FFmpeg derives them from
  the decode order, so B-frames come out as 1, 3, 4, 2, ...) the frames' decode timestamps are used instead, as
  ``ffmpeg`` does. Sorting by the broken presentation timestamps would return the wrong pictures.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from cfnsr.data.media_audio import AudioCollector, audio_jitter
from cfnsr.data.media_video import VideoFrames


class MediaError(RuntimeError):
    """A clip that cannot be decoded (empty, truncated, missing a stream...). The message names the file."""


@dataclass(frozen=True)
class DecodedClip:
    """What one decoding pass yields.

    frames:      uint8 (T, H, W, 3) RGB, frame k is the decoded frame nearest to time k*D/T
    frame_times: float64 (T,) presentation time (s, from the first video frame) of each returned frame,
                 non-decreasing
    audio:       float32 (N,) mono (mean of the channels) at ``sample_rate``; sample 0 is at time 0 of the clip
                 (the container's start), each decoded audio frame placed by its timestamp, zeros where packets were
                 skipped or the track starts late. None if not requested
    corrupt_*:   packets the decoder rejected and that were skipped (video + audio = total)
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
    corrupt_packets: int = 0
    corrupt_video_packets: int = 0
    corrupt_audio_packets: int = 0


# How far (in frames) a timestamp may sit from the j/fps grid and still count as frame j (at least, more where the
# stream's time base rounds timestamps more coarsely, as Matroska's 1 ms does at 60 fps); a target within 2.5 times
# that of the midpoint between two frames keeps both when frames are skipped, so that the frame the grid says is
# nearest really is the nearest. Past _MAX_GRID_TOLERANCE the stream is decoded without skipping.
_GRID_TOLERANCE = 0.02
_MAX_GRID_TOLERANCE = 0.1
# Containers whose video packets carry no presentation time (FFmpeg guesses it), where the per-packet
# frame-skipping decision of skip_unneeded cannot be trusted.
_NO_PTS_FORMATS = {"avi"}


def sample_times(duration: float, count: int) -> np.ndarray:
    """The paper's frame times ``k * D / T`` for k = 0..T-1, float64 (T,)."""
    return np.arange(count, dtype=np.float64) * (duration / count)


def header_duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    """The video's duration in seconds as the container header states it (the stream's, else the file's); None if absent."""
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


def needed_frame_slots(targets: np.ndarray, fps: float, margin: float = 1e-6) -> set[int]:
    """Indices j of the frames at j/fps nearest to each target time.

    Ties (a target within ``margin`` frames of the midpoint between two frames): both neighbours, to be safe.
    """
    x = np.asarray(targets, dtype=np.float64) * fps
    lower = np.floor(x).astype(np.int64)
    frac = x - lower
    slots = set(np.where(frac <= 0.5, lower, lower + 1).tolist())
    near_tie = np.abs(frac - 0.5) < margin
    slots.update(lower[near_tie].tolist())
    slots.update((lower[near_tie] + 1).tolist())
    return slots


def decode_clip(path: str | Path, num_frames: int, sample_rate: int, *, with_audio: bool = True,
                threads: int = 1, skip_unneeded: bool = True, max_corrupt_fraction: float = 0.05) -> DecodedClip:
    """Decode ``path`` in one sequential pass.

    num_frames:    T, frames sampled at k*D/T (nearest decoded frame; a frame may be returned twice at low fps)
    sample_rate:   audio is resampled to this rate and averaged to mono; it is placed on the clip's timeline by the
                   decoded frames' timestamps, so sample i is at time i / sample_rate from the clip's start even
                   when packets were skipped (their span is zeros)
    with_audio:    when True a missing audio stream is an error
    threads:       decoder threads for the video stream (1 = single-threaded, 0 = FFmpeg's choice)
    skip_unneeded: on a constant-frame-rate stream, let the decoder drop the non-reference frames (no other frame
                   depends on them) that are not among the T wanted ones, about a third of the H.264 decode work
                   with B-frames; the frames returned are the same (the pass checks that the stream's timestamps
                   allowed it, and decodes again without skipping when they did not)
    max_corrupt_fraction: packets the decoder rejects (a corrupt packet, which FFmpeg's command line skips with a
                   warning) are skipped and counted in the result; more than this fraction of one stream's packets
                   rejected is an error. A stream without any decodable frame is always an error
    Raises ``MediaError`` (message starts with the file name) for anything that prevents a faithful decode.
    """
    path = Path(path)
    if not 0.0 <= max_corrupt_fraction <= 1.0:
        raise ValueError(f"max_corrupt_fraction must be within [0, 1], got {max_corrupt_fraction}")
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise MediaError(f"{path.name}: cannot read file ({exc})") from exc
    if size == 0:
        raise MediaError(f"{path.name}: empty file (0 bytes)")
    try:
        if skip_unneeded:
            with av.open(str(path)) as container:
                try:
                    return _decode(container, path, num_frames, sample_rate, with_audio, threads, True,
                                   max_corrupt_fraction)
                except _SkippingWasUnsafe:
                    pass  # the stream's timestamps are not on a constant-rate grid: decode everything
        with av.open(str(path)) as container:
            return _decode(container, path, num_frames, sample_rate, with_audio, threads, False,
                           max_corrupt_fraction)
    except MediaError:
        raise
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        # PyAV reports truncation, a missing moov atom or an unreadable container as FFmpeg errors
        raise MediaError(f"{path.name}: cannot decode ({type(exc).__name__}: {exc})") from exc


def _is_constant_rate(stream: av.video.stream.VideoStream, duration: float, fps: float) -> bool:
    """Whether frame j is at start + j/fps: the header's frame count matches duration x fps."""
    return fps > 0 and stream.start_time is not None and stream.frames > 0 and \
        abs(stream.frames - duration * fps) <= 1


class _SkippingWasUnsafe(Exception):
    """The skip_unneeded pass found timestamps off the constant-rate grid, so it may have dropped a wanted frame."""


@dataclass
class _PacketCount:
    packets: int = 0  # non-empty packets demuxed
    corrupt: int = 0  # decode calls that raised

    def fraction(self) -> float:
        return self.corrupt / max(self.packets, 1)


class _SkipCheck:
    """What the skip_unneeded pass must confirm: every video packet is on the j/fps grid, the grid has no hole and
    every wanted frame was decoded. Then the frame nearest to each target was among those decoded."""

    def __init__(self, targets: np.ndarray, fps: float, tolerance: float) -> None:
        self.tolerance = tolerance
        self.needed = needed_frame_slots(targets, fps, margin=2.5 * tolerance)
        self.packet_slots: list[int] = []
        self.max_offset = 0.0

    def packet(self, x: float) -> int:
        slot = round(x)
        self.packet_slots.append(slot)
        self.max_offset = max(self.max_offset, abs(x - slot))
        return slot

    def holds(self, decoded_times: list[float], fps: float) -> bool:
        if self.max_offset > self.tolerance or not self.packet_slots:
            return False
        n = len(self.packet_slots)
        if sorted(self.packet_slots) != list(range(n)):  # each frame once, no hole
            return False
        x = np.asarray(decoded_times, dtype=np.float64) * fps
        if len(x) == 0 or np.abs(x - np.round(x)).max() > self.tolerance:
            return False
        return {s for s in self.needed if s < n} <= set(np.round(x).astype(np.int64).tolist())


def _decode(container: av.container.InputContainer, path: Path, num_frames: int, sample_rate: int,
            with_audio: bool, threads: int, skip_unneeded: bool, max_corrupt_fraction: float) -> DecodedClip:
    if not container.streams.video:
        raise MediaError(f"{path.name}: no video stream")
    vstream = container.streams.video[0]
    astream = container.streams.audio[0] if container.streams.audio else None
    if with_audio and astream is None:
        raise MediaError(f"{path.name}: no audio stream")
    duration = header_duration(container, vstream)
    if duration is None or duration <= 0:
        raise MediaError(f"{path.name}: unknown or zero duration")
    _configure_threads(vstream, threads)
    rate = vstream.average_rate or vstream.guessed_rate
    fps = float(rate) if rate else 0.0

    targets = sample_times(duration, num_frames)
    video = VideoFrames(targets, fps)
    audio = None
    if with_audio and astream is not None:
        # clip time 0 is the container's start, as in the wav FFmpeg writes for moviepy
        start = container.start_time / av.time_base if container.start_time is not None else 0.0
        end = max(duration, container.duration / av.time_base if container.duration is not None else 0.0)
        audio = AudioCollector(sample_rate, origin=max(start, 0.0), jitter=audio_jitter(astream),
                                fill_until=max(start, 0.0) + end + 1.0)
    streams = [vstream] + ([astream] if audio is not None else [])

    check = _skip_check(container, vstream, duration, fps, targets) if skip_unneeded else None
    vcount, acount = _demux(container, streams, video, audio, check, fps)
    if check is not None and not check.holds(video.decoded_times(), fps):
        raise _SkippingWasUnsafe
    _check_corruption(path, vcount, acount if audio is not None else None, max_corrupt_fraction)
    if video.n_decoded == 0:
        raise MediaError(f"{path.name}: video stream has no decodable frames "
                         f"({vcount.corrupt} of {vcount.packets} packets corrupt)")
    if audio is not None and audio.n_frames == 0:
        raise MediaError(f"{path.name}: audio stream has no decodable frames "
                         f"({acount.corrupt} of {acount.packets} packets corrupt)")
    frames, times, last_time = video.finish()
    # A file cut short still reports the full duration in its header; refuse rather than repeat the last frame.
    frame_step = 1.0 / fps if fps > 0 else 0.1
    if targets[-1] - last_time > 2.0 * frame_step:
        raise MediaError(f"{path.name}: video ends at {last_time:.2f} s but the header says {duration:.2f} s "
                         f"(truncated file?)")
    return DecodedClip(
        frames=frames, frame_times=times, audio=audio.finish() if audio is not None else None,
        sample_rate=sample_rate, duration=duration, width=vstream.codec_context.width,
        height=vstream.codec_context.height, fps=fps, n_decoded=video.n_decoded,
        corrupt_packets=vcount.corrupt + acount.corrupt, corrupt_video_packets=vcount.corrupt,
        corrupt_audio_packets=acount.corrupt,
    )


def _skip_check(container: av.container.InputContainer, vstream: av.video.stream.VideoStream, duration: float,
                fps: float, targets: np.ndarray) -> _SkipCheck | None:
    """The slots of the wanted frames when unwanted ones may be skipped safely (a constant-rate stream whose
    timestamps fall on the frame grid), else None (every frame is decoded)."""
    if container.format.name in _NO_PTS_FORMATS or not _is_constant_rate(vstream, duration, fps):
        return None
    tolerance = max(_GRID_TOLERANCE, 0.6 * float(vstream.time_base) * fps)
    return _SkipCheck(targets, fps, tolerance) if tolerance <= _MAX_GRID_TOLERANCE else None


def _demux(container: av.container.InputContainer, streams: list[av.stream.Stream], video: VideoFrames,
           audio: AudioCollector | None, check: _SkipCheck | None, fps: float) -> tuple[_PacketCount, _PacketCount]:
    """Decode the streams' packets into ``video`` and ``audio``; returns the (video, audio) packet counts.

    With ``check``, a packet whose frame is not wanted is decoded with skip_frame=NONREF, so the decoder drops it
    if no other frame references it (reference frames are always decoded)."""
    vstream = streams[0]
    ctx, tb, start_pts = vstream.codec_context, vstream.time_base, vstream.start_time
    vcount, acount = _PacketCount(), _PacketCount()
    for packet in container.demux(*streams):
        is_video = packet.stream.index == vstream.index
        count = vcount if is_video else acount
        if packet.size:
            count.packets += 1
        if check is not None and is_video and packet.pts is not None:
            slot = check.packet(float((packet.pts - start_pts) * tb) * fps)
            ctx.skip_frame = "DEFAULT" if slot in check.needed else "NONREF"
        try:
            frames = packet.decode()
        except av.FFmpegError:
            # one bad packet (FFmpeg's command line warns and goes on): skip it, the decoder recovers
            count.corrupt += 1
            continue
        for frame in frames:
            if is_video:
                video.push(frame)
            elif audio is not None:
                audio.push(frame)
    return vcount, acount


def _check_corruption(path: Path, video: _PacketCount, audio: _PacketCount | None, limit: float) -> None:
    over = video.fraction() > limit or (audio is not None and audio.fraction() > limit)
    if not over:
        return
    parts = [f"video {video.corrupt} of {video.packets} ({video.fraction():.1%})"]
    if audio is not None:
        parts.append(f"audio {audio.corrupt} of {audio.packets} ({audio.fraction():.1%})")
    raise MediaError(f"{path.name}: too many corrupt packets: {', '.join(parts)}; at most "
                     f"max_corrupt_fraction={limit:g} ({limit:.1%}) of a stream's packets may be skipped")
