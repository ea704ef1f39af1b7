"""The audio of a window stream: decoded frames placed on one timeline by their timestamps, averaged to mono,
resampled, and served by sample range (``cfnsr.predict.windows.WindowStream`` reads it).
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from cfnsr.data.media_audio import ChannelReader, mono_samples

# Audio timestamps this close (s) to where the previous frame ended count as contiguous (containers round them).
AUDIO_JITTER = 0.005
# A hole in the audio longer than this (s) is not filled with zeros (a wild timestamp must not allocate hours).
_MAX_AUDIO_GAP = 600.0
_RESAMPLE_BLOCK = 1 << 16
# Audio frames held back to place the track (the median of their timestamp offsets): ~1.1 s of AAC, 1.5 s of AC3.
_SETTLE_FRAMES = 48


class AudioTrack:
    """The audio as a sliding buffer of mono samples at ``rate``; sample i is at i / rate s from ``origin``.

    Frames are placed as ``cfnsr.data.media`` places them: one after the other, a frame whose timestamp is further
    than ``jitter`` from where the previous one ended opening a gap of zeros (a gap within ``jitter`` of a whole
    number of frames counts as exactly that many) or moving back; the whole track then sits at the median
    difference between the frames' timestamps and their places, so that one odd timestamp (AVI derives them from
    byte counts; the first frame after a corrupt packet) does not shift it. ``decode_clip`` takes that median over
    the whole track; a stream cannot wait for the end, so here it is taken over the first ``_SETTLE_FRAMES`` frames,
    which are held back until then. From the first frame whose timestamp runs back (more than ``jitter`` before
    where the previous frame ended), frames follow one another regardless of their timestamps, as in decode_clip.
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
        self.last_at = 0.0  # timestamp of the previous timestamped frame (input samples)
        self.sequential = False  # a timestamp ran backwards: the rest is placed frame after frame (as decode_clip)
        self.reader = ChannelReader()

    @property
    def end_time(self) -> float:
        return self.end / self.rate

    def push(self, frame: av.AudioFrame) -> None:
        samples = mono_samples(frame, self.reader)
        if self.in_rate is None:
            self.in_rate = int(frame.sample_rate)
            if self.in_rate != self.rate:
                self.resampler = av.AudioResampler(format="fltp", layout="mono", rate=self.rate)
        elif frame.sample_rate != self.in_rate:  # a rate change mid-stream: bring the frame to the track's rate
            n = int(round(len(samples) * self.in_rate / frame.sample_rate))
            samples = np.interp(np.arange(n) * (frame.sample_rate / self.in_rate), np.arange(len(samples)),
                                samples).astype(np.float32)
        self.n_frames += 1
        if frame.time is not None and not self.sequential:
            at = (frame.time - self.origin) * self.in_rate  # where the frame belongs, in input samples
            tolerance = self.jitter * self.in_rate
            if self.offsets and (at - (self.offsets[0] + self.pos) < -tolerance or at <= self.last_at):
                self.sequential = True  # not monotonic: timestamps no longer say where frames go
            elif self.offsets:
                gap = at - (self.offsets[0] + self.pos)
                if gap > tolerance:
                    whole = round(gap / self.last_len) if self.last_len else 0
                    if whole > 0 and abs(gap - whole * self.last_len) <= tolerance:
                        gap = whole * self.last_len
                    self.pos += int(round(min(gap, _MAX_AUDIO_GAP * self.in_rate)))
            if self.shift is None and not self.sequential:
                self.offsets.append(at - self.pos)
            self.last_at = at
        place = self.pos
        self.pos += len(samples)
        self.last_len = len(samples)
        if self.shift is None:
            self.pending.append((place, samples))
            if len(self.offsets) >= _SETTLE_FRAMES or self.sequential:  # no more offsets will come
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
