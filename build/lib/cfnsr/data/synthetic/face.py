"""Face geometry (iBUG-68 landmark layout) and drawing with OpenCV."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from cfnsr.data.synthetic.actors import ActorLook
from cfnsr.data.synthetic.config import _S_NOISE_BANK, _rng
from cfnsr.data.synthetic.emotions import FaceExpression

# Face-local units: head half-width = 1, origin at the centre of the head ellipse, y pointing down (image convention).
HEAD_RY = 1.3
_EYE_X, _EYE_Y, _EYE_HW, _EYE_HH = 0.36, -0.02, 0.16, 0.10
_BROW_Y = -0.33
_MOUTH_Y = 0.70
_FRINGE_Y = -0.74  # hair covers the head above this line, always above the highest brow
_JAW_THETA = np.linspace(np.pi, 0.0, 17)


def _static_landmarks(e: FaceExpression) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks that do not move within a clip, float64 (68, 2), and the per-point lip-gap coefficients (20,) of
    points 48..67 (y = static y + coefficient * gap)."""
    p = np.zeros((68, 2))
    p[0:17, 0] = np.cos(_JAW_THETA)
    p[0:17, 1] = HEAD_RY * np.sin(_JAW_THETA)

    eye_top = _EYE_Y - _EYE_HH * max(e.eye_open, 0.15)  # brows stay above the open lid, even during a blink
    t = np.linspace(0.0, 1.0, 5)  # 0 outer end, 1 inner end
    brow_y = _BROW_Y - 0.12 * e.brow_raise - 0.05 * np.sin(np.pi * (0.3 + 0.6 * t)) - 0.07 * e.brow_tilt * t
    brow_y = np.clip(brow_y, _FRINGE_Y + 0.06, eye_top - 0.05)
    brow_x = -0.62 + 0.48 * t
    p[17:22, 0], p[17:22, 1] = brow_x, brow_y
    p[22:27, 0], p[22:27, 1] = -brow_x[::-1], brow_y[::-1]

    p[27:31, 1] = [-0.05, 0.07, 0.19, 0.31]
    p[31:36, 0] = [-0.13, -0.065, 0.0, 0.065, 0.13]
    p[31:36, 1] = [0.36, 0.39, 0.40, 0.39, 0.36]

    # Eyes clockwise from the image-left corner (outer corner of the image-left eye, inner corner of the other);
    # their y is set per frame (blinks).
    xs = np.array([-1.0, -0.4, 0.4, 1.0, 0.4, -0.4]) * _EYE_HW
    p[36:42, 0] = -_EYE_X + xs
    p[42:48, 0] = _EYE_X + xs
    p[36:48, 1] = _EYE_Y

    mw = 0.30 * e.mouth_width
    p[48:68, 0] = mw * _LIP_U
    # Corners move with the curve, the middle stays; lips are thicker in the middle.
    bend = -0.12 * e.mouth_curve * _LIP_U ** 2
    p[48:68, 1] = _MOUTH_Y + bend + _LIP_THICK
    return p, _LIP_GAP_SIGN * 0.5 * np.clip(1 - _LIP_U ** 2, 0, None) ** 0.7


# Lip points 48..67 along the mouth (u = -1 left corner .. 1 right corner), whether they sit on the upper (-1) or
# lower (+1) side of the lip gap, and their lip thickness offset.
_LIP_U = np.array([-1.0, -0.6, -0.25, 0.0, 0.25, 0.6, 1.0,  # 48..54 outer upper
                   0.6, 0.25, 0.0, -0.25, -0.6,  # 55..59 outer lower
                   -0.82, -0.4, 0.0, 0.4, 0.82,  # 60..64 inner upper
                   0.4, 0.0, -0.4])  # 65..67 inner lower
_LIP_GAP_SIGN = np.array([-1.0] * 7 + [1.0] * 5 + [-1.0] * 5 + [1.0] * 3)
_LIP_THICK = np.concatenate([-0.055 * (1 - _LIP_U[:7] ** 2), 0.075 * (1 - 0.6 * _LIP_U[7:12] ** 2), np.zeros(8)])
_EYE_SHAPE = np.array([0.0, -0.92, -0.92, 0.0, 0.92, 0.92])


def face_landmarks_local(e: FaceExpression, open_extra: float | np.ndarray = 0.0,
                         blink: float | np.ndarray = 1.0) -> np.ndarray:
    """The 68 iBUG landmarks in face-local units, float64 (*B, 68, 2) [x, y], B = broadcast shape of the inputs.

    open_extra: lip opening added by articulation; blink: eyelid factor (1 open, ~0 closed).
    Points 0-16 jaw (image-left ear level -> chin -> image-right), 17-21 / 22-26 brows (outer->inner / inner->outer),
    27-30 nose bridge, 31-35 nostril base, 36-41 / 42-47 eyes (clockwise from the image-left corner),
    48-59 outer lips (left corner, upper lip, right corner, lower lip), 60-67 inner lips.
    """
    open_extra, blink = np.broadcast_arrays(np.asarray(open_extra, np.float64), np.asarray(blink, np.float64))
    static, gap_coef = _static_landmarks(e)
    p = np.broadcast_to(static, (*open_extra.shape, 68, 2)).copy()
    hh = _EYE_HH * max(e.eye_open, 0.15) * blink[..., None]
    p[..., 36:42, 1] += _EYE_SHAPE * hh
    p[..., 42:48, 1] += _EYE_SHAPE * hh
    gap = 0.22 * np.maximum(e.mouth_open + open_extra, 0.0)[..., None]
    p[..., 48:68, 1] += gap_coef * gap
    return p


_SHIFT = 4  # cv2 sub-pixel bits: smooth motion of small features
_ONE = 1 << _SHIFT


def _fx(points: np.ndarray) -> np.ndarray:
    return np.round(points * _ONE).astype(np.int32)


def _transform(local: np.ndarray, poses: np.ndarray) -> np.ndarray:
    """Face-local points (T, P, 2) -> pixels (T, P, 2), poses float (T, 4) [cx, cy, scale, roll_deg].

    + roll turns clockwise on screen (y points down), the same convention as cv2.ellipse's angle.
    """
    a = np.deg2rad(poses[:, 3])[:, None]
    c, s = np.cos(a), np.sin(a)
    x, y = local[..., 0], local[..., 1]
    scale = poses[:, 2:3]
    return np.stack([poses[:, 0:1] + scale * (c * x - s * y), poses[:, 1:2] + scale * (s * x + c * y)], axis=-1)


def _fringe_polygon() -> np.ndarray:
    """The part of the (slightly enlarged) head ellipse above _FRINGE_Y, with a straight lower edge, (P, 2)."""
    th = np.linspace(np.pi, 2 * np.pi, 24)
    top = np.stack([np.cos(th) * 1.01, np.sin(th) * HEAD_RY * 1.01], axis=1)
    top = top[top[:, 1] < _FRINGE_Y]
    edge_x = np.sqrt(max(0.0, 1 - (_FRINGE_Y / HEAD_RY) ** 2)) * 1.01
    return np.concatenate([[[-edge_x, _FRINGE_Y]], top, [[edge_x, _FRINGE_Y]]])


# Extra drawing anchors (face-local), appended after the 68 landmarks before transforming.
_ANCHORS = np.concatenate([
    [[0.0, 0.0], [0.0, 3.0], [0.0, -0.1], [-_EYE_X, _EYE_Y], [_EYE_X, _EYE_Y]],  # head, body, hair, eye centres
    [[-0.42, 0.7], [0.42, 0.7], [0.45, 2.0], [-0.45, 2.0]],  # neck
    _fringe_polygon(),
])
_A_HEAD, _A_BODY, _A_HAIR, _A_EYES, _A_NECK, _A_FRINGE = 68, 69, 70, 71, 73, 77


def _colour(rgb: Sequence[float], light: float) -> tuple[float, float, float]:
    return tuple(float(min(255.0, c * light)) for c in rgb)  # type: ignore[return-value]


@dataclass(frozen=True)
class _Palette:
    skin: tuple[float, float, float]
    shade: tuple[float, float, float]
    hair: tuple[float, float, float]
    lips: tuple[float, float, float]
    clothes: tuple[float, float, float]
    iris: tuple[float, float, float]
    sclera: tuple[float, float, float]
    lid: tuple[float, float, float]
    mouth: tuple[float, float, float]

    @classmethod
    def of(cls, look: ActorLook, light: float) -> _Palette:
        return cls(skin=_colour(look.skin, light), shade=_colour(look.skin, light * 0.72),
                   hair=_colour(look.hair, light), lips=_colour(look.lips, light),
                   clothes=_colour(look.clothes, light), iris=_colour(look.iris, light),
                   sclera=_colour((240, 240, 235), light), lid=_colour((40, 30, 30), light),
                   mouth=_colour((60, 20, 25), light))


def _draw_face(img: np.ndarray, pts: np.ndarray, scale: float, roll: float, eye_hh: float, lip_gap_px: float,
               pal: _Palette) -> None:
    """Draw body, head and features onto ``img`` (uint8 (H, W, 3) RGB, in place).

    pts: int32 (68 + anchors, 2) fixed-point pixels (landmarks then _ANCHORS); scale: pixels per face unit;
    eye_hh: eyelid half-opening (face units); lip_gap_px: inner lip gap in pixels.
    """
    aa = cv2.LINE_AA
    thick = max(1, int(round(scale / 14)))
    k = scale * _ONE

    def ell(anchor: int, ax: float, ay: float, colour: Sequence[float], start: int = 0, end: int = 360,
            width: int = -1) -> None:
        cv2.ellipse(img, (int(pts[anchor, 0]), int(pts[anchor, 1])), (int(ax * k + 0.5), int(ay * k + 0.5)), roll,
                    start, end, colour, width, aa, _SHIFT)

    ell(_A_BODY, 2.4, 1.3, pal.clothes)
    cv2.fillConvexPoly(img, pts[_A_NECK:_A_NECK + 4], pal.shade, aa, _SHIFT)
    ell(_A_HAIR, 1.08, HEAD_RY * 1.05, pal.hair, 180, 360)  # hair volume behind the top of the head
    ell(_A_HEAD, 1.0, HEAD_RY, pal.skin)
    cv2.fillPoly(img, [pts[_A_FRINGE:]], pal.hair, aa, _SHIFT)
    hh = max(eye_hh, 0.004)
    r = min(0.062, eye_hh)
    for eye in (_A_EYES, _A_EYES + 1):
        ell(eye, _EYE_HW, hh, pal.sclera)
        if r > 0.012:
            ell(eye, r, r, pal.iris)
            ell(eye, r * 0.45, r * 0.45, (15.0, 15.0, 15.0))
        ell(eye, _EYE_HW, hh, pal.lid, width=max(1, int(round(scale / 22))))
    cv2.polylines(img, [pts[17:22], pts[22:27]], False, pal.hair, max(1, int(round(scale / 9))), aa, _SHIFT)
    cv2.polylines(img, [pts[27:31], pts[31:36]], False, pal.shade, thick, aa, _SHIFT)
    cv2.fillPoly(img, [pts[48:60]], pal.lips, aa, _SHIFT)
    if lip_gap_px > 0.8:
        cv2.fillPoly(img, [pts[60:68]], pal.mouth, aa, _SHIFT)
    else:
        cv2.polylines(img, [pts[60:65]], False, pal.mouth, thick, aa, _SHIFT)


@lru_cache(maxsize=4)
def _noise_bank(seed: int, width: int, height: int, sigma: float, count: int = 4, pad: int = 32,
                tile: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian pixel noise with std ``sigma`` grey levels, split into its positive and negative parts, each uint8
    (count, H + pad, W + pad, 3). Frames add / subtract shifted windows of it with saturating uint8 arithmetic,
    which is far cheaper than drawing fresh noise for every frame. The bank repeats a ``tile`` x ``tile`` patch so
    that it costs the same at 1280x720 as at 320x180 (a repeat every 128 px is invisible under this much noise)."""
    rng = _rng(seed, _S_NOISE_BANK, width, height)
    patch = np.round(rng.standard_normal((count, tile, tile, 3), dtype=np.float32) * sigma)
    reps = (1, -(-(height + pad) // tile), -(-(width + pad) // tile), 1)
    bank = np.tile(patch, reps)[:, :height + pad, :width + pad]
    return np.clip(bank, 0, 255).astype(np.uint8), np.clip(-bank, 0, 255).astype(np.uint8)
