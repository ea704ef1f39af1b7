"""One clip: rendered (face and voice together), then written as an H.264/AAC mp4 (PyAV) and an OpenFace-style landmark CSV."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import av
import cv2
import numpy as np

from cfnsr.data.ravdess import RavdessName
from cfnsr.data.synthetic.config import SyntheticConfig
from cfnsr.data.synthetic.emotions import FaceExpression
from cfnsr.data.synthetic.video import RenderedClip, render_video
from cfnsr.data.synthetic.voice import render_audio
from cfnsr.files import atomic_write, write_text_atomic


def render_clip(name: RavdessName, cfg: SyntheticConfig) -> RenderedClip:
    """Render frames, voice and landmarks of one clip (no encoding)."""
    frames, lms, poses, mouth, expr = render_video(name, cfg)
    audio, params = render_audio(name, cfg)
    return RenderedClip(name=name, frames=frames, audio=audio, landmarks=lms, poses=poses, mouth=mouth,
                        params=dataclasses.replace(params, face=expr))


def write_mp4(path: Path, frames: np.ndarray, audio: np.ndarray, cfg: SyntheticConfig) -> None:
    """Encode frames uint8 (T, H, W, 3) RGB + audio float32 (N,) into ``path`` (H.264 yuv420p + AAC mono).

    Single-threaded x264 with fixed options so the output is reproducible; the caller makes the write atomic.
    """
    with av.open(str(path), "w", format="mp4", options={"fflags": "+bitexact"}) as container:
        video = container.add_stream("libx264", rate=cfg.fps)
        video.width, video.height, video.pix_fmt = cfg.width, cfg.height, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": str(cfg.crf)}
        video.codec_context.thread_count = 1
        sound = container.add_stream("aac", rate=cfg.sample_rate)
        sound.layout = "mono"
        sound.bit_rate = cfg.audio_bitrate
        sound.options = {"aac_coder": "fast"}  # ~2x faster than the default 'twoloop', quality is ample here

        for i, rgb in enumerate(frames):
            # cv2's I420 conversion is faster than letting libswscale do it inside the encoder.
            frame = av.VideoFrame.from_ndarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode(None))

        chunk = 1024  # AAC frame size
        for s in range(0, len(audio), chunk):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[None, s:s + chunk]), format="fltp",
                                               layout="mono")
            frame.sample_rate = cfg.sample_rate
            frame.pts = s
            container.mux(sound.encode(frame))
        container.mux(sound.encode(None))


_FILLER_BEFORE = ("gaze_0_x", "gaze_0_y", "gaze_0_z", "gaze_1_x", "gaze_1_y", "gaze_1_z", "gaze_angle_x",
                  "gaze_angle_y", "pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz")
_AUS_R = ("01", "02", "04", "05", "06", "07", "09", "10", "12", "14", "15", "17", "20", "23", "25", "26", "45")
_AUS_C = ("01", "02", "04", "05", "06", "07", "09", "10", "12", "14", "15", "17", "20", "23", "25", "26", "28", "45")


def csv_header() -> list[str]:
    """Column names, OpenFace 2.x order: meta, gaze, pose, 2-D landmarks x/y, 3-D landmarks X/Y/Z (upper case: a
    reader must match names case-sensitively), rigid shape params, AU intensities and presences."""
    cols = ["frame", "face_id", "timestamp", "confidence", "success", *_FILLER_BEFORE]
    cols += [f"x_{i}" for i in range(68)] + [f"y_{i}" for i in range(68)]
    cols += [f"{axis}_{i}" for axis in "XYZ" for i in range(68)]
    cols += ["p_scale", "p_rx", "p_ry", "p_rz", "p_tx", "p_ty"]
    cols += [f"AU{a}_r" for a in _AUS_R] + [f"AU{a}_c" for a in _AUS_C]
    return cols


def _action_units(e: FaceExpression, mouth_env: np.ndarray) -> np.ndarray:
    """Plausible AU intensities (T, 17) derived from the expression (so they carry only face information)."""
    T = len(mouth_env)
    r = np.zeros((T, len(_AUS_R)))
    col = {a: i for i, a in enumerate(_AUS_R)}
    r[:, col["01"]] = max(0.0, e.brow_tilt) * 2 + max(0.0, e.brow_raise)
    r[:, col["02"]] = max(0.0, e.brow_raise) * 2
    r[:, col["04"]] = max(0.0, -e.brow_tilt) * 2 + max(0.0, -e.brow_raise)
    r[:, col["05"]] = max(0.0, e.eye_open - 1) * 3
    r[:, col["07"]] = max(0.0, 1 - e.eye_open) * 3
    r[:, col["12"]] = max(0.0, e.mouth_curve) * 2.5
    r[:, col["15"]] = max(0.0, -e.mouth_curve) * 2.5
    r[:, col["25"]] = np.clip(e.mouth_open + mouth_env, 0, None) * 2
    r[:, col["26"]] = np.clip(e.mouth_open + mouth_env - 0.3, 0, None) * 2
    return np.clip(r, 0, 5)


def landmark_csv_text(clip: RenderedClip, cfg: SyntheticConfig) -> str:
    """The OpenFace-style CSV of a rendered clip: header + one row per frame, ', ' separated like OpenFace."""
    T = len(clip.landmarks)
    xs, ys = clip.landmarks[..., 0].astype(np.float64), clip.landmarks[..., 1].astype(np.float64)
    cx, cy, scale, roll = (clip.poses[:, i].astype(np.float64) for i in range(4))
    # A pinhole camera with focal length ~ frame width: fake but self-consistent 3-D values (mm).
    focal = float(cfg.width)
    depth = 600.0 * (cfg.height * 0.15) / scale
    X3 = (xs - cfg.width / 2) * depth[:, None] / focal
    Y3 = (ys - cfg.height / 2) * depth[:, None] / focal
    Z3 = depth[:, None] + 20 * np.cos(np.linspace(-1.5, 1.5, 68))[None, :]
    gaze = np.tile([0.05, 0.1, -0.99, -0.05, 0.1, -0.99, 0.0, 0.1], (T, 1))
    pose = np.stack([(cx - cfg.width / 2) * depth / focal, (cy - cfg.height / 2) * depth / focal, depth,
                     np.full(T, 0.1), np.zeros(T), np.deg2rad(roll)], axis=1)
    p = np.stack([scale / 100, np.full(T, 0.1), np.zeros(T), np.deg2rad(roll), cx, cy], axis=1)
    au_r = _action_units(clip.params.face, clip.mouth.astype(np.float64))
    au_c = (np.concatenate([au_r[:, :16], np.zeros((T, 1)), au_r[:, 16:]], axis=1) > 1.0).astype(np.float64)

    lines = [", ".join(csv_header())]
    fmt = ("%d, 0, %.3f, 0.98, 1, " + ", ".join(["%.3f"] * len(_FILLER_BEFORE)) + ", "
           + ", ".join(["%.1f"] * (68 * 5)) + ", " + ", ".join(["%.3f"] * 6) + ", "
           + ", ".join(["%.2f"] * len(_AUS_R)) + ", " + ", ".join(["%.0f"] * len(_AUS_C)))
    body = np.concatenate([gaze[:, :6], gaze[:, 6:], pose, xs, ys, X3, Y3, Z3, p, au_r, au_c], axis=1)
    for i in range(T):
        lines.append(fmt % (i + 1, i / cfg.fps, *body[i]))
    return "\n".join(lines) + "\n"


def clip_paths(root: Path, name: RavdessName) -> tuple[Path, Path]:
    """(mp4, csv) paths of a clip under ``root``."""
    return root / f"Actor_{name.actor:02d}" / f"{name.stem}.mp4", root / "landmarks" / f"{name.stem}.csv"


def write_clip(root: str | Path, name: RavdessName, cfg: SyntheticConfig) -> bool:
    """Render and write the missing files of one clip (mp4 and/or CSV), each atomically. True if anything was written."""
    root = Path(root)
    mp4, csv = clip_paths(root, name)
    need_mp4, need_csv = not mp4.exists(), not csv.exists()
    if not (need_mp4 or need_csv):
        return False
    clip = render_clip(name, cfg)
    if need_mp4:
        mp4.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(mp4) as tmp:
            write_mp4(tmp, clip.frames, clip.audio, cfg)
    if need_csv:
        csv.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(csv, landmark_csv_text(clip, cfg))
    return True
