"""Decoded video frames -> the frame nearest to each target time (``cfnsr.data.media.decode_clip``'s video side)."""

from __future__ import annotations

import av
import numpy as np
from av.video.reformatter import VideoReformatter

# The first video frames are held back until this many have been decoded, so that the clip's time origin is the
# earliest of them even if the decoder does not return the earliest first.
_ORIGIN_LOOKAHEAD = 8


class VideoFrames:
    """Decoded video frames -> the frame nearest to each target, with FFmpeg's best-effort timestamps.

    Each frame is offered to two pickers, one timing frames by their presentation timestamps and one by their
    decode timestamps; at the end the presentation timestamps are used unless they go backwards (in the decoder's
    output order, which is display order) more often than the decode timestamps do, the rule of libavcodec's
    guess_correct_pts applied to the whole stream.
    """

    def __init__(self, targets: np.ndarray, fps: float) -> None:
        self.fps = fps
        self.reformatter = VideoReformatter()  # one converter: to_ndarray would set up libswscale per frame
        self.by_pts = NearestFramePicker(targets)
        self.by_dts = NearestFramePicker(targets)
        self.faults = {"pts": 0, "dts": 0}
        self.last: dict[str, float | None] = {"pts": None, "dts": None}
        self.n_decoded = 0

    def _fault(self, key: str, t: float) -> None:
        last = self.last[key]
        if last is not None and t <= last:
            self.faults[key] += 1
        self.last[key] = t

    def push(self, frame: av.VideoFrame) -> None:
        step = 1.0 / self.fps if self.fps > 0 else 0.0
        fallback = self.n_decoded * (step or 1.0)
        self.n_decoded += 1
        t_pts = frame.time
        if t_pts is None:
            t_pts = fallback
        else:
            self._fault("pts", t_pts)
        self.by_pts.push(frame, t_pts)
        if frame.dts is not None and frame.time_base is not None:
            t_dts = float(frame.dts * frame.time_base)
            self._fault("dts", t_dts)
        elif self.last["dts"] is not None:
            # the frames drained from the decoder at the end carry no decode timestamp: one frame on
            t_dts = self.last["dts"] = self.last["dts"] + step
        else:
            t_dts = t_pts
        self.by_dts.push(frame, t_dts)

    def _picker(self) -> NearestFramePicker:
        if self.faults["pts"] > self.faults["dts"]:
            return self.by_dts
        return self.by_pts

    def decoded_times(self) -> list[float]:
        """Times (s, from the first frame) of the frames decoded, by the chosen timestamps."""
        picker = self._picker()
        picker.settle()
        return picker.times_seen

    def finish(self) -> tuple[np.ndarray, np.ndarray, float]:
        """frames uint8 (T, H, W, 3), their times (T,), and the time of the last frame."""
        picker = self._picker()
        frames, times = picker.finish(self.reformatter)
        return frames, times, picker.last_time


class NearestFramePicker:
    """Keeps, for each target time, the nearest frame seen so far (ties go to the earlier frame), whatever order the
    frames arrive in; times are taken from the earliest of the first few frames.

    The frames are kept as decoded (a reference, no copy) and only the chosen ones are converted to RGB at the end,
    so the cost of the frames in between is the decode alone, and at most T frames (plus the first few, until the
    origin is known) are held.
    """

    def __init__(self, targets: np.ndarray) -> None:
        self.targets = np.asarray(targets, dtype=np.float64)
        n = len(self.targets)
        self.best_dist = np.full(n, np.inf)
        self.best_time = np.full(n, np.inf)
        self.best_id = np.full(n, -1, dtype=np.int64)
        self.held: dict[int, av.VideoFrame] = {}
        self.next_id = 0
        self.pending: list[tuple[av.VideoFrame, float]] = []
        self.origin: float | None = None
        self.times_seen: list[float] = []
        self.last_time = -np.inf

    def push(self, frame: av.VideoFrame, t: float) -> None:
        if self.origin is None:
            self.pending.append((frame, t))
            if len(self.pending) >= _ORIGIN_LOOKAHEAD:
                self.settle()
            return
        self._offer(frame, t - self.origin)

    def settle(self) -> None:
        """Fix the time origin (the earliest frame so far) and place the frames held back until now."""
        if self.origin is None and self.pending:
            self.origin = min(t for _, t in self.pending)
            pending, self.pending = self.pending, []
            for frame, t in pending:
                self._offer(frame, t - self.origin)

    def _offer(self, frame: av.VideoFrame, t: float) -> None:
        self.times_seen.append(t)
        self.last_time = max(self.last_time, t)
        dist = np.abs(self.targets - t)
        better = (dist < self.best_dist) | ((dist == self.best_dist) & (t < self.best_time))
        if not better.any():
            return
        self.best_dist[better], self.best_time[better], self.best_id[better] = dist[better], t, self.next_id
        self.held[self.next_id] = frame
        self.next_id += 1
        alive = set(self.best_id.tolist())
        for key in [k for k in self.held if k not in alive]:
            del self.held[key]

    def finish(self, reformatter: VideoReformatter) -> tuple[np.ndarray, np.ndarray]:
        """Returns frames uint8 (T, H, W, 3) and their times (T,); targets past the last frame get the last frame."""
        self.settle()
        assert self.held, "finish() needs at least one frame"
        rgb = {k: reformatter.reformat(f, format="rgb24").to_ndarray() for k, f in self.held.items()}
        frames = np.stack([rgb[k] for k in self.best_id.tolist()])
        return frames, self.best_time.copy()
