"""Tiny real test media: an mp4 (H.264 + AAC, written with PyAV) showing a drawn face, and its OpenFace CSV.

The face is a cartoon (skin ellipse, eyes, brows, nose, mouth) that OpenCV's Haar cascade finds, drifting slowly
so frames differ. The CSV puts the 68 "landmarks" on the face ellipse, so their bounding box is the ellipse's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

SKIN = (225, 190, 160)  # RGB of the face ellipse
BACKGROUND = (40, 90, 200)


@dataclass(frozen=True)
class FaceTrack:
    """Face ellipse per frame: centres cx, cy float (N,), semi-axes rx, ry (pixels)."""

    cx: np.ndarray
    cy: np.ndarray
    rx: float
    ry: float


def face_track(width: int, height: int, n_frames: int, center: tuple[float, float] = (0.5, 0.5),
               scale: float = 0.33) -> FaceTrack:
    """A face of height ``scale * 2 * height`` around ``center`` (fractions of the frame) drifting by 2 %."""
    ry = scale * height
    phase = np.linspace(0, 2 * np.pi, n_frames)
    cx = center[0] * width + 0.02 * width * np.sin(phase)
    cy = center[1] * height + 0.01 * height * np.cos(phase)
    return FaceTrack(cx=cx, cy=cy, rx=0.75 * ry, ry=ry)


def draw_face(img: np.ndarray, cx: float, cy: float, ry: float) -> None:
    """Draw the cartoon face in place on an RGB uint8 image (H, W, 3)."""
    s = ry
    c = (int(round(cx)), int(round(cy)))
    cv2.ellipse(img, c, (int(0.75 * s), int(s)), 0, 0, 360, SKIN, -1)
    cv2.ellipse(img, (c[0], c[1] - int(0.75 * s)), (int(0.8 * s), int(0.4 * s)), 0, 180, 360, (60, 40, 20), -1)
    for dx in (-1, 1):
        ex, ey = c[0] + dx * int(0.32 * s), c[1] - int(0.15 * s)
        cv2.ellipse(img, (ex, ey), (int(0.16 * s), int(0.08 * s)), 0, 0, 360, (255, 255, 255), -1)
        cv2.circle(img, (ex, ey), max(1, int(0.07 * s)), (30, 20, 10), -1)
        cv2.line(img, (ex - int(0.18 * s), ey - int(0.18 * s)), (ex + int(0.18 * s), ey - int(0.2 * s)),
                 (50, 30, 20), max(2, int(0.05 * s)))
    cv2.line(img, (c[0], c[1] - int(0.05 * s)), (c[0] - int(0.06 * s), c[1] + int(0.25 * s)), (170, 120, 100),
             max(2, int(0.04 * s)))
    cv2.ellipse(img, (c[0], c[1] + int(0.45 * s)), (int(0.25 * s), int(0.08 * s)), 0, 0, 360, (150, 50, 50), -1)


def write_clip(path: str | Path, *, width: int = 160, height: int = 90, fps: int = 12, duration: float = 3.2,
               audio: bool = True, video: bool = True, sample_rate: int = 48000, channels: int = 2,
               audio_duration: float | None = None, track: FaceTrack | None = None, face: bool = True,
               gop: int | None = None, preset: str = "ultrafast", faststart: bool = False) -> FaceTrack:
    """Write an mp4 with a drawn face (H.264 yuv420p) and a 440 Hz sine (AAC). Returns the face track drawn.

    faststart=True puts the index (moov) first, so a truncated copy still opens and claims the full duration.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n_frames = int(round(duration * fps))
    track = track or face_track(width, height, n_frames)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=options) as out:
        vs = None
        if video:
            vs = out.add_stream("libx264", rate=fps)
            vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
            opts = {"preset": preset}
            if gop:
                opts["g"] = str(gop)
            vs.options = opts
        as_ = None
        if audio:
            as_ = out.add_stream("aac", rate=sample_rate)
            as_.layout = "stereo" if channels == 2 else "mono"
        if vs is not None:
            for i in range(n_frames):
                img = np.empty((height, width, 3), np.uint8)
                img[:] = BACKGROUND
                if face:
                    draw_face(img, track.cx[i], track.cy[i], track.ry)
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts = i
                out.mux(vs.encode(frame))
            out.mux(vs.encode(None))
        if as_ is not None:
            total = int((audio_duration if audio_duration is not None else duration) * sample_rate)
            t = 0
            while t < total:
                k = min(1024, total - t)
                tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(t, t + k) / sample_rate)).astype(np.float32)
                frame = av.AudioFrame.from_ndarray(np.tile(tone, (channels, 1)), format="fltp",
                                                   layout=as_.layout.name)
                frame.sample_rate, frame.pts = sample_rate, t
                out.mux(as_.encode(frame))
                t += k
            out.mux(as_.encode(None))
    return track


def track_landmarks(track: FaceTrack) -> tuple[np.ndarray, np.ndarray]:
    """68 points on each frame's face ellipse -> xs, ys float (N, 68); their box is the ellipse's box."""
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    xs = track.cx[:, None] + track.rx * np.cos(angles)[None]
    ys = track.cy[:, None] + track.ry * np.sin(angles)[None]
    return xs, ys


def write_openface_csv(path: str | Path, xs: np.ndarray, ys: np.ndarray, fps: float, *, face_id: bool = True,
                       success: bool = True, spaces: bool = True, shuffle: int | None = None,
                       failed_rows: tuple[int, ...] = (), extra_columns: int = 5) -> None:
    """Write an OpenFace-style CSV: ``frame, [face_id,] timestamp, confidence, [success,] x_0.. y_0.. AU..``.

    shuffle: seed to shuffle the column order; failed_rows get confidence 0, success 0 and landmarks 0 (as
    OpenFace writes when it loses the face); extra_columns adds unrelated columns that must be ignored.
    """
    n = len(xs)
    cols: dict[str, np.ndarray] = {"frame": np.arange(1, n + 1, dtype=float)}
    if face_id:
        cols["face_id"] = np.zeros(n)
    cols["timestamp"] = np.arange(n) / fps
    conf = np.full(n, 0.98)
    ok = np.ones(n)
    xs, ys = np.array(xs, dtype=float), np.array(ys, dtype=float)
    for r in failed_rows:
        conf[r], ok[r], xs[r], ys[r] = 0.0, 0.0, 0.0, 0.0
    cols["confidence"] = conf
    if success:
        cols["success"] = ok
    for i in range(68):
        cols[f"x_{i}"] = xs[:, i]
    for i in range(68):
        cols[f"y_{i}"] = ys[:, i]
    for j in range(extra_columns):
        cols[f"AU{j:02d}_r"] = np.full(n, 0.5)
    names = list(cols)
    if shuffle is not None:
        random.Random(shuffle).shuffle(names)
    sep = ", " if spaces else ","
    lines = [sep.join(names)]
    for r in range(n):
        lines.append(sep.join(f"{cols[c][r]:.3f}" for c in names))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines) + "\n")


def make_clip_with_csv(root: str | Path, stem: str, *, csv: bool = True, csv_layout: str = "landmarks",
                       **clip_kwargs) -> Path:
    """Write ``<root>/Actor_XX/<stem>.mp4`` and (unless csv=False) its CSV; returns the mp4 path.

    csv_layout: "landmarks" (landmarks/<stem>.csv), "landmarks-actor" (landmarks/Actor_XX/) or "actor" (Actor_XX/).
    """
    root = Path(root)
    actor = f"Actor_{stem.split('-')[-1]}"
    mp4 = root / actor / f"{stem}.mp4"
    track = write_clip(mp4, **clip_kwargs)
    if csv:
        folder = {"landmarks": root / "landmarks", "landmarks-actor": root / "landmarks" / actor,
                  "actor": root / actor}[csv_layout]
        xs, ys = track_landmarks(track)
        write_openface_csv(folder / f"{stem}.csv", xs, ys, clip_kwargs.get("fps", 12))
    return mp4
