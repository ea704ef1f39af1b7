"""Decoded audio frames -> one mono track at the wanted sample rate, placed by timestamps
(``cfnsr.data.media.decode_clip``'s audio side)."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

# Audio timestamps this close (s) to where the previous frame ended count as contiguous (containers round them:
# Matroska to 1 ms, AVI from byte counts); a larger jump places the frame by its timestamp.
_AUDIO_JITTER = 0.005


def audio_jitter(stream: av.audio.stream.AudioStream) -> float:
    """How far (s) an audio frame may start from where the previous one ended and still count as contiguous."""
    tick = float(stream.time_base) if stream.time_base else 0.0
    return max(_AUDIO_JITTER, 1.5 * tick)


# Integer sample formats -> (offset, scale) to float in [-1, 1), as libswresample converts them.
_INT_SCALE = {"u8": (128.0, 1 / 128), "s16": (0.0, 1 / 2 ** 15), "s32": (0.0, 1 / 2 ** 31), "s64": (0.0, 1 / 2 ** 63)}


def mono_samples(frame: av.AudioFrame) -> np.ndarray:
    """float32 (samples,) mean of the channels of any sample format, planar or packed."""
    data = frame.to_ndarray()
    channels = frame.layout.nb_channels or 1
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T
    name = frame.format.packed.name
    if name in _INT_SCALE:
        offset, scale = _INT_SCALE[name]
        data = (data.astype(np.float32) - np.float32(offset)) * np.float32(scale)
    return data.astype(np.float32, copy=False).mean(axis=0)


class AudioCollector:
    """Averages every decoded audio frame to mono, places it on the clip's timeline by its timestamp (at the
    track's own rate) and resamples the assembled track to ``rate`` at the end.

    A frame that starts within ``jitter`` seconds of where the previous one ended follows it directly (containers
    round timestamps: Matroska to 1 ms, AVI derives them from byte counts). A frame further away opens a gap of
    zeros (a skipped packet; a gap within ``jitter`` of a whole number of frames is taken as exactly that many, the
    usual cause) or, if earlier, overwrites. The whole track is then shifted by the median difference between the
    frames' timestamps and their places, so that one rounded timestamp (the first frame's, say) does not shift it.
    Samples before the origin are dropped. Gaps are not opened past ``fill_until`` (s), so that a wild timestamp
    cannot make the track arbitrarily long.

    Channels are averaged here rather than downmixed by libswresample, whose stereo->mono matrix weights each
    channel by 0.707: the paper's path (moviepy's stereo wav, then librosa.load(mono=True)) takes the mean.
    """

    _BLOCK = 1 << 16  # samples per frame handed to the resampler

    def __init__(self, rate: int, *, origin: float, jitter: float, fill_until: float) -> None:
        self.rate = rate
        self.origin = origin
        self.jitter = jitter
        self.fill_until = fill_until
        self.in_rate: int | None = None
        self.chunks: list[tuple[int, np.ndarray]] = []  # (place in samples at in_rate, mono samples)
        self.offsets: list[float] = []  # timestamp minus place, per timestamped frame (samples)
        self.pos = 0  # place of the next frame if it follows directly
        self.last_len = 0
        self.n_frames = 0

    def push(self, frame: av.AudioFrame) -> None:
        samples = mono_samples(frame)
        if self.in_rate is None:
            self.in_rate = frame.sample_rate
        if frame.sample_rate != self.in_rate:  # a rate change mid-stream: bring the frame to the track's rate
            n = int(round(len(samples) * self.in_rate / frame.sample_rate))
            samples = np.interp(np.arange(n) * (frame.sample_rate / self.in_rate), np.arange(len(samples)),
                                samples).astype(np.float32)
        self.n_frames += 1
        t = frame.time
        if t is not None:
            at = (t - self.origin) * self.in_rate
            if self.offsets:
                gap = at - (self.offsets[0] + self.pos)
                tolerance = self.jitter * self.in_rate
                if abs(gap) > tolerance and (gap < 0 or t <= self.fill_until):
                    whole = round(gap / self.last_len) if self.last_len else 0
                    if whole > 0 and abs(gap - whole * self.last_len) <= tolerance:
                        gap = whole * self.last_len
                    self.pos += int(round(gap))
            self.offsets.append(at - self.pos)
        self.chunks.append((self.pos, samples))
        self.pos += len(samples)
        self.last_len = len(samples)

    def finish(self) -> np.ndarray:
        shift = int(round(float(np.median(self.offsets)))) if self.offsets else 0
        end = max((place + shift + len(c) for place, c in self.chunks), default=0)
        track = np.zeros(max(end, 0), dtype=np.float32)
        for place, chunk in self.chunks:
            start = place + shift
            if start < 0:
                chunk, start = chunk[-start:], 0
            track[start:start + len(chunk)] = chunk
        self.chunks = []
        if self.in_rate is None or self.in_rate == self.rate or len(track) == 0:
            return track
        return _resample(track, self.in_rate, self.rate, self._BLOCK)


def _resample(track: np.ndarray, in_rate: int, out_rate: int, block: int) -> np.ndarray:
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=out_rate)
    out: list[np.ndarray] = []
    for start in range(0, len(track), block):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(track[None, start:start + block]), format="fltp",
                                           layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = in_rate, start, Fraction(1, in_rate)
        out.extend(o.to_ndarray()[0] for o in resampler.resample(frame))
    out.extend(o.to_ndarray()[0] for o in resampler.resample(None))
    return np.ascontiguousarray(np.concatenate(out) if out else np.zeros(0), dtype=np.float32)
