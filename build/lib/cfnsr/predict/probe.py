"""What a video file holds, read from its headers and packets (no frame decoded): ``probe``.

A file that is no video (an image, audio only, unreadable) raises ``InputError`` naming it and the reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av

from cfnsr.data.media import header_duration

# Container formats that hold a single picture (or a picture sequence read as images), not a video.
_IMAGE_FORMATS = {"image2", "image2pipe", "gif_pipe", "apng", "webp_pipe"}


class InputError(RuntimeError):
    """A file that cannot be predicted on: not a media file, no video stream, unreadable... The message says why."""



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
            duration = header_duration(container, vstream)
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
