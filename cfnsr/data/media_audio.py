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


class ChannelReader:
    """Reads a decoded audio frame's samples as (samples, channels), any sample format and layout.

    A planar frame with several channels is first interleaved by FFmpeg's own converter (a resampler to the packed
    form of its format, same layout and rate: an exact copy, no mixing). PyAV's ``AudioFrame.to_ndarray()`` is not
    used on planar frames: on 8-channel (7.1) frames it reads past the frame's planes and crashes the process
    (SIGSEGV, PyAV 18). The converter is kept while format, layout and rate stay the same (building one per frame
    costs ~1.5 ms).
    """

    def __init__(self) -> None:
        self._key: tuple[str, str, int, int] | None = None
        self._resampler: av.AudioResampler | None = None

    def packed(self, frame: av.AudioFrame) -> np.ndarray:
        """(samples, channels) in the frame's own sample type (packed)."""
        channels = frame.layout.nb_channels or 1
        if not frame.format.is_planar or channels == 1:
            # one plane holds everything: to_ndarray reads just that plane
            return frame.to_ndarray().reshape(-1, channels)
        key = (frame.format.name, frame.layout.name, channels, int(frame.sample_rate))
        if key != self._key or self._resampler is None:
            self._resampler = av.AudioResampler(format=frame.format.packed.name, layout=frame.layout,
                                                rate=frame.sample_rate)
            self._key = key
        out = self._resampler.resample(frame)
        if not out:  # a same-rate conversion holds nothing back; an empty result is an empty frame
            return np.zeros((0, channels), dtype=np.float32)
        return np.concatenate([o.to_ndarray().reshape(-1, channels) for o in out])

    def mono(self, frame: av.AudioFrame) -> np.ndarray:
        """float32 (samples,) mean of the channels."""
        data = self.packed(frame)
        name = frame.format.packed.name
        if name in _INT_SCALE:
            offset, scale = _INT_SCALE[name]
            data = (data.astype(np.float32) - np.float32(offset)) * np.float32(scale)
        return data.astype(np.float32, copy=False).mean(axis=1)


def mono_samples(frame: av.AudioFrame, reader: ChannelReader | None = None) -> np.ndarray:
    """float32 (samples,) mean of the channels of any sample format and layout, planar or packed (``reader`` keeps
    its converter between frames)."""
    return (reader or ChannelReader()).mono(frame)


class AudioCollector:
    """Averages every decoded audio frame to mono, places it on the clip's timeline by its timestamp (at the
    track's own rate) and resamples the assembled track to ``rate`` at the end.

    A frame that starts within ``jitter`` seconds of where the previous one ended follows it directly (containers
    round timestamps: Matroska to 1 ms, AVI derives them from byte counts). A frame further away opens a gap of
    zeros (a skipped packet; a gap within ``jitter`` of a whole number of frames is taken as exactly that many, the
    usual cause). The whole track is then shifted by the median difference between the
    frames' timestamps and their places, so that one rounded timestamp (the first frame's, say) does not shift it.
    Samples before the origin are dropped. Gaps are not opened past ``fill_until`` (s), so that a wild timestamp
    cannot make the track arbitrarily long.

    Timestamps are trusted only while they are monotonic. From the first frame whose timestamp repeats the
    previous one or lies more than ``jitter`` before where the previous frame ended (AVI files carrying AC3 whose
    header gives a wrong sample size repeat each timestamp several times, or run backwards), every later frame
    follows the previous one directly, as FFmpeg's decoder hands them out (``ffmpeg -i clip -f wav -`` gives the
    whole track); placing them at those timestamps would overwrite most of the track and cut it short.

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
        self.last_at = 0.0  # timestamp of the previous timestamped frame (input samples)
        self.sequential = False  # a timestamp ran backwards: the rest is placed frame after frame
        self.reader = ChannelReader()

    def push(self, frame: av.AudioFrame) -> None:
        samples = mono_samples(frame, self.reader)
        if self.in_rate is None:
            self.in_rate = frame.sample_rate
        if frame.sample_rate != self.in_rate:  # a rate change mid-stream: bring the frame to the track's rate
            n = int(round(len(samples) * self.in_rate / frame.sample_rate))
            samples = np.interp(np.arange(n) * (frame.sample_rate / self.in_rate), np.arange(len(samples)),
                                samples).astype(np.float32)
        self.n_frames += 1
        t = frame.time
        if t is not None and not self.sequential:
            at = (t - self.origin) * self.in_rate
            tolerance = self.jitter * self.in_rate
            if self.offsets and (at - (self.offsets[0] + self.pos) < -tolerance or at <= self.last_at):
                self.sequential = True  # not monotonic: timestamps no longer say where frames go
            elif self.offsets:
                gap = at - (self.offsets[0] + self.pos)
                if gap > tolerance and t <= self.fill_until:
                    whole = round(gap / self.last_len) if self.last_len else 0
                    if whole > 0 and abs(gap - whole * self.last_len) <= tolerance:
                        gap = whole * self.last_len
                    self.pos += int(round(gap))
            if not self.sequential:
                self.offsets.append(at - self.pos)
            self.last_at = at
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
