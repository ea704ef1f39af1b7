"""Face crop boxes and crops: from landmark extents, from a face detector, or the frame centre.

A face is described per frame by its extents ``[x0, y0, x1, y1]`` (float, pixels of the full frame): the bounding
box of the 68 landmarks, or a detector box. ``crop_faces`` turns the extents into crops of ``size x size``.

Detectors (``DETECTORS``, preprocessing's ``face_fallback`` setting): ``blazeface`` (MediaPipe's BlazeFace, short
range then full range, through ``cv2.dnn``, ``cfnsr.data.blazeface``). OpenCV's Haar cascade, used before, is gone:
it found a face in half the frames BlazeFace finds, with worse boxes, and nowhere more (``bench/face_detector.py``,
docs/predict.md); caches built with it are refused unless no entry used it (``cfnsr.data.settings``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

DETECTORS = ("blazeface",)


@dataclass(frozen=True)
class Box:
    """Integer pixel box, ``right``/``bottom`` exclusive, so ``frame[top:bottom, left:right]`` is the crop."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top


def _fit_interval(lo: float, hi: float, limit: int) -> tuple[int, int]:
    """Round [lo, hi) outwards to integers and move it inside [0, limit) keeping its length when it fits."""
    a, b = math.floor(lo), math.ceil(hi)
    b = max(b, a + 1)
    length = min(b - a, limit)
    a = min(max(a, 0), limit - length)
    return a, a + length


def box_from_extents(extents: np.ndarray, frame_w: int, frame_h: int, margin: float, square: bool) -> Box:
    """Box around ``extents`` [x0, y0, x1, y1] grown by ``margin`` x its width/height on each side.

    square=True makes it square (side = the larger dimension, same centre) so the resize to S x S does not distort
    the face. The box is shifted to lie inside the frame, and only clipped when it is larger than the frame.
    """
    x0, y0, x1, y1 = (float(v) for v in extents)
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    w, h = w * (1 + 2 * margin), h * (1 + 2 * margin)
    if square:
        w = h = max(w, h)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, right = _fit_interval(cx - w / 2, cx + w / 2, frame_w)
    top, bottom = _fit_interval(cy - h / 2, cy + h / 2, frame_h)
    return Box(left, top, right, bottom)


def center_box(frame_w: int, frame_h: int) -> Box:
    """The largest centred square, used when no face is found."""
    side = min(frame_w, frame_h)
    left, top = (frame_w - side) // 2, (frame_h - side) // 2
    return Box(left, top, left + side, top + side)


def crop_resize(frame: np.ndarray, box: Box, size: int) -> np.ndarray:
    """frame uint8 (H, W, 3) -> uint8 (size, size, 3): area averaging when shrinking (no aliasing), bilinear when
    enlarging (cv2.resize's default, as the public code)."""
    crop = frame[box.top:box.bottom, box.left:box.right]
    shrinking = crop.shape[0] > size or crop.shape[1] > size
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp)


def crop_faces(frames: np.ndarray, extents: np.ndarray | None, size: int, margin: float,
               squash_before_crop: bool = False) -> np.ndarray:
    """Crop the face of every frame.

    frames:  uint8 (T, H, W, 3)
    extents: float (T, 4) [x0, y0, x1, y1] in full-frame pixels, or None for the centre square (the whole
             squashed frame with squash_before_crop)
    Default: square box with margin from the full-resolution frame, resized to size x size.
    squash_before_crop=True reproduces the public code: the whole frame is first resized to size x size (aspect
    ratio lost), the (not squared) box is cut from that small frame and enlarged back to size x size.
    Returns uint8 (T, size, size, 3).
    """
    t, h, w = frames.shape[:3]
    out = np.empty((t, size, size, 3), dtype=np.uint8)
    for k in range(t):
        frame = frames[k]
        if squash_before_crop:
            frame = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
            if extents is None:
                out[k] = frame
                continue
            scaled = np.asarray(extents[k], dtype=np.float64) * [size / w, size / h, size / w, size / h]
            box = box_from_extents(scaled, size, size, margin, square=False)
        else:
            box = center_box(w, h) if extents is None else box_from_extents(extents[k], w, h, margin, square=True)
        out[k] = crop_resize(frame, box, size)
    return out


def detect_face_blazeface(frame: np.ndarray) -> np.ndarray | None:
    """Largest face by BlazeFace in an RGB frame uint8 (H, W, 3) -> float32 (4,) [x0, y0, x1, y1] full-frame pixels,
    or None: the short-range model (128x128 input), then, on a frame it finds nothing in, the full-range one (192x192;
    it finds faces down to about 1/16 of the frame's longer side, which the short-range model misses below about
    1/8: a 720p frame is letterboxed to 128 px, so such a face is only 10-15 px there)."""
    from cfnsr.data.blazeface import blazeface  # loads the models once per process

    box = blazeface("short").largest(frame)
    return box if box is not None else blazeface("full").largest(frame)


def detect_face(frame: np.ndarray, detector: str = "blazeface") -> np.ndarray | None:
    """Largest face in an RGB frame uint8 (H, W, 3) by ``detector`` (one of ``DETECTORS``) -> float32 (4,)
    [x0, y0, x1, y1] full-frame pixels, or None."""
    if detector == "blazeface":
        return detect_face_blazeface(frame)
    if detector == "haar":  # recorded by caches and checkpoints made before BlazeFace (OpenCV 5 has no cascades)
        raise ValueError("face detector 'haar' (preprocess.face_fallback=haar, from a config made before BlazeFace) "
                         "is retired: preprocess with preprocess.face_fallback=blazeface")
    raise ValueError(f"unknown face detector {detector!r}: one of {list(DETECTORS)}")


def detect_extents(frames: np.ndarray, detector: str = "blazeface") -> np.ndarray | None:
    """Detector extents for each frame uint8 (T, H, W, 3) -> float32 (T, 4), or None when no frame has a face.

    Frames where the detector misses take the box of the nearest frame where it found one.
    """
    found = [detect_face(f, detector) for f in frames]
    hits = [k for k, box in enumerate(found) if box is not None]
    if not hits:
        return None
    hits_arr = np.array(hits)
    out = np.empty((len(frames), 4), dtype=np.float32)
    for k in range(len(frames)):
        out[k] = found[int(hits_arr[np.abs(hits_arr - k).argmin()])]
    return out
