"""Rendering the video of one clip: head motion, blinks, lip articulation, noise."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from cfnsr.data.ravdess import RavdessName
from cfnsr.data.synthetic.actors import ActorLook, actor_look
from cfnsr.data.synthetic.config import _S_CLIP_FACE, _S_CLIP_PIXELS, SyntheticConfig, _rng
from cfnsr.data.synthetic.emotions import FaceExpression, VoiceParams, face_expression
from cfnsr.data.synthetic.face import (
    _ANCHORS,
    _EYE_HH,
    HEAD_RY,
    _colour,
    _draw_face,
    _fx,
    _noise_bank,
    _Palette,
    _transform,
    face_landmarks_local,
)
from cfnsr.data.synthetic.timing import _envelope, _speech_span, _syllables


@dataclass(frozen=True)
class ClipParams:
    """The parameters actually used for one clip (emotion-level values after actor and per-clip variation)."""

    face: FaceExpression
    voice: VoiceParams
    f0: float  # Hz, mean pitch of this clip
    speech_start: float
    speech_end: float


@dataclass(frozen=True)
class RenderedClip:
    """One clip before encoding.

    frames:    uint8 (T, H, W, 3) RGB, T = cfg.num_frames
    audio:     float32 (N,) mono in [-1, 1] at cfg.sample_rate, N = cfg.num_samples
    landmarks: float32 (T, 68, 2) [x, y] in pixels of the frame
    poses:     float32 (T, 4) [cx, cy, scale, roll_deg] of the head
    mouth:     float32 (T,) lip opening added by articulation while speaking (same units as mouth_open)
    """

    name: RavdessName
    frames: np.ndarray
    audio: np.ndarray
    landmarks: np.ndarray
    poses: np.ndarray
    mouth: np.ndarray
    params: ClipParams


def _jitter_face(e: FaceExpression, rng: np.random.Generator, amount: float) -> FaceExpression:
    # Always draw the same number of values, so the stream is emotion-independent.
    d = [float(v) for v in rng.normal(0.0, 1.0, 6) * amount]
    return FaceExpression(brow_raise=e.brow_raise + 0.15 * d[0], brow_tilt=e.brow_tilt + 0.15 * d[1],
                          eye_open=max(0.2, e.eye_open * (1 + 0.08 * d[2])), mouth_curve=e.mouth_curve + 0.12 * d[3],
                          mouth_open=max(0.0, e.mouth_open + 0.06 * d[4]),
                          mouth_width=e.mouth_width * (1 + 0.05 * d[5]))


def _head_poses(look: ActorLook, rng: np.random.Generator, cfg: SyntheticConfig, times: np.ndarray) -> np.ndarray:
    """Head pose per frame, float64 (T, 4) [cx, cy, scale, roll_deg]: actor position + drift + sway, clip jitter."""
    W, H = cfg.width, cfg.height
    scale = look.head_rx * H * rng.uniform(0.94, 1.06)
    c0 = np.array([look.center_x * W + rng.normal(0, 0.02 * W), look.center_y * H + rng.normal(0, 0.015 * H)])
    phase = rng.uniform(0, 2 * np.pi, 3)
    roll0 = look.roll_deg + rng.normal(0, 1.5)
    w = 2 * np.pi * look.sway_hz * times
    sway = look.sway * H * np.stack([np.sin(w + phase[0]), 0.6 * np.sin(1.3 * w + phase[1])], axis=1)
    centre = c0 + np.outer(times, look.drift) * H + sway
    # Keep the whole head (hair included) inside the frame.
    lo = np.array([1.15 * scale + 2, 1.5 * scale + 2])
    hi = np.maximum(lo, np.array([W - 1.15 * scale - 2, H - HEAD_RY * scale - 2]))
    centre = np.clip(centre, lo, hi)
    scales = scale * (1 + 0.015 * np.sin(0.9 * times + phase[2]))
    roll = roll0 + 2.0 * np.sin(0.7 * w + phase[1])
    return np.column_stack([centre, scales, roll])


def render_video(name: RavdessName, cfg: SyntheticConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                                     FaceExpression]:
    """Frames uint8 (T, H, W, 3) RGB, landmarks float32 (T, 68, 2), poses float32 (T, 4), articulation float32 (T,),
    and the expression used."""
    look = actor_look(cfg.seed, name.actor)
    rng = _rng(cfg.seed, _S_CLIP_FACE, *name.fields)
    W, H, T = cfg.width, cfg.height, cfg.num_frames
    times = np.arange(T) / cfg.fps

    expr = _jitter_face(face_expression(name.emotion, name.intensity).scaled(look.expressiveness), rng,
                        cfg.expression_jitter)
    # Lip articulation with its own, emotion-independent timing: sharing the voice's speaking rate would leak
    # the audio classes into the video.
    start, end = _speech_span(rng, cfg.duration)
    vis_syl = _syllables(rng, start, end, rng.uniform(3.0, 4.6))
    mouth = look.articulation * _envelope(times, vis_syl, rng.uniform(0.6, 1.0, len(vis_syl)))[0].astype(np.float64)
    blink = np.ones(T)
    for t_blink in np.cumsum(rng.exponential(2.5, 4)):
        blink -= 0.92 * np.exp(-0.5 * ((times - t_blink) / 0.05) ** 2)
    blink = np.clip(blink, 0.08, 1.0)
    light = float(rng.uniform(0.95, 1.05))
    poses = _head_poses(look, rng, cfg, times)

    local = face_landmarks_local(expr, mouth, blink)  # (T, 68, 2)
    anchors = np.broadcast_to(_ANCHORS, (T, *_ANCHORS.shape))
    px = _transform(np.concatenate([local, anchors], axis=1), poses)
    fixed = _fx(px)
    eye_hh = _EYE_HH * max(expr.eye_open, 0.15) * blink
    lip_gap = (local[:, 66, 1] - local[:, 62, 1]) * poses[:, 2]

    bg = np.empty((H, W, 3), dtype=np.uint8)
    grad = np.linspace(1.06, 0.9, H, dtype=np.float32)[:, None, None]
    bg[:] = np.clip(np.asarray(_colour(look.background, light), np.float32) * grad, 0, 255).astype(np.uint8)
    pal = _Palette.of(look, light)

    sigma = cfg.noise * 255.0
    plus, minus = _noise_bank(cfg.seed, W, H, round(sigma, 3)) if sigma > 0 else (None, None)
    prng = _rng(cfg.seed, _S_CLIP_PIXELS, *name.fields)
    frames = np.empty((T, H, W, 3), dtype=np.uint8)
    for i in range(T):
        img = frames[i]
        img[:] = bg
        _draw_face(img, fixed[i], float(poses[i, 2]), float(poses[i, 3]), float(eye_hh[i]), float(lip_gap[i]), pal)
        if plus is not None:
            k, dy, dx = prng.integers(len(plus)), prng.integers(plus.shape[1] - H), prng.integers(plus.shape[2] - W)
            cv2.add(img, plus[k, dy:dy + H, dx:dx + W], dst=img)
            cv2.subtract(img, minus[k, dy:dy + H, dx:dx + W], dst=img)
    return frames, px[:, :68].astype(np.float32), poses.astype(np.float32), mouth.astype(np.float32), expr
