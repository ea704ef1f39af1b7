"""Face crops for prediction: the largest detected face per sampled frame, its box smoothed over the window.

There is no landmark CSV for an arbitrary video, so the faces of a window's T sampled frames come from the face
detector preprocessing falls back on by default (``cfnsr.data.faces.detect_face_blazeface``: MediaPipe's BlazeFace,
the short-range model on the whole frame letterboxed to 128x128, then the full-range model (192x192) on a frame where
it found nothing; the largest face). BlazeFace finds faces tilted in plane up to about 60 degrees and the synthetic
corpus's drawn faces in 99.9 % of frames (docs/predict.md), where the Haar cascades used before needed two more
cascades and rotated searches and still missed a quarter. The boxes are then made steady over time:

1. frames without a face take a box interpolated between the nearest frames with one (the nearest one at the ends of
   the window);
2. each coordinate is replaced by its running median over ``smooth`` consecutive sampled frames (centred, shorter at
   the window's ends), which removes one-frame jumps and single false detections;
3. optionally (``box_shift``, ``box_scale``; off by default) moved and scaled onto the box the training crops were
   cut around: ``python -m cfnsr.predict.detector_gap`` fits both on a corpus with landmark CSVs.

The crops are then cut exactly as preprocessing cuts them (``cfnsr.data.faces.crop_faces`` with the checkpoint's
size, margin and squash setting; BGR when its ``channel_order`` is bgr).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cfnsr.data.faces import crop_faces, detect_face_blazeface

# The stages of detect_boxes, each run on the frames the previous ones found no face in: frame -> box or None.
# One stage: BlazeFace's own fallback (short range, then full range) is inside detect_face_blazeface.
STAGES: tuple[Callable[[np.ndarray], np.ndarray | None], ...] = (detect_face_blazeface,)


def detect_largest_face(frame: np.ndarray) -> np.ndarray | None:
    """Largest face in one RGB frame uint8 (H, W, 3) -> float32 (4,) [x0, y0, x1, y1] full-frame pixels, or None:
    every stage in turn until one finds a face."""
    for stage in STAGES:
        box = stage(frame)
        if box is not None:
            return box
    return None


@dataclass(frozen=True)
class CropSettings:
    """The face-crop part of a checkpoint's preprocessing settings, plus predict's own smoothing."""

    size: int
    margin: float
    squash_before_crop: bool
    channel_order: str  # rgb | bgr
    smooth: int = 5  # running-median length in sampled frames (1 = no smoothing)
    min_face_frames: int = 1  # fewer detections than this in a window: the window has no face
    # Detector box -> the box the model's training crops were cut around (see calibrate_boxes)
    box_shift: tuple[float, float] = (0.0, 0.0)
    box_scale: float = 1.0


@dataclass(frozen=True)
class WindowFaces:
    """crops: uint8 (T, S, S, 3) in the checkpoint's channel order, or None when the window has no face;
    found: bool (T,) frames where the detector found a face; boxes: float32 (T, 4) smoothed boxes or None."""

    crops: np.ndarray | None
    found: np.ndarray
    boxes: np.ndarray | None

    @property
    def face_frames(self) -> int:
        return int(self.found.sum())


def detect_boxes(frames: np.ndarray, detector: Callable[[np.ndarray], np.ndarray | None] | None = None
                 ) -> np.ndarray:
    """RGB frames uint8 (T, H, W, 3) -> float64 (T, 4) [x0, y0, x1, y1] of the largest face, NaN where none.

    Without ``detector``, the stages of ``STAGES`` in turn, each on the frames still without a face; with
    ``detector``, that function on every frame.
    """
    boxes = np.full((len(frames), 4), np.nan)
    stages = STAGES if detector is None else (detector,)
    for stage in stages:
        for k in np.flatnonzero(np.isnan(boxes[:, 0])):
            box = stage(frames[k])
            if box is not None:
                boxes[k] = box
    return boxes


def smooth_boxes(boxes: np.ndarray, smooth: int) -> np.ndarray | None:
    """Fill the misses (NaN rows) of ``boxes`` (T, 4) by interpolation, then take a centred running median over
    ``smooth`` frames. None when no frame has a box."""
    hit = ~np.isnan(boxes).any(axis=1)
    if not hit.any():
        return None
    idx = np.arange(len(boxes))
    filled = np.stack([np.interp(idx, idx[hit], boxes[hit, c]) for c in range(4)], axis=1)
    half = max(int(smooth), 1) // 2
    if half == 0:
        return filled
    out = np.empty_like(filled)
    for k in range(len(filled)):
        out[k] = np.median(filled[max(0, k - half):k + half + 1], axis=0)
    return out


def calibrate_boxes(boxes: np.ndarray, shift: tuple[float, float] = (0.0, 0.0), scale: float = 1.0) -> np.ndarray:
    """Map detector boxes (T, 4) onto the boxes training cropped around: squares of side ``scale`` x the detector
    box's side, centred ``shift`` (x, y, fractions of that side; + = right, down) away from its centre.

    A detector box and a landmark box of the same face differ systematically (a detector box spans brows to chin,
    a 68-point landmark box from the jaw line's top to the chin, and its size ratio depends on the landmark set); ``python -m cfnsr.predict.detector_gap`` fits
    ``shift`` and ``scale`` on a corpus with landmark CSVs. (0, 0) and 1 leave the boxes as detected.
    """
    if tuple(shift) == (0.0, 0.0) and scale == 1.0:
        return boxes
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 + shift[0] * side
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 + shift[1] * side
    half = side * scale / 2
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=1).astype(boxes.dtype)


def fit_calibration(detector: np.ndarray, landmark: np.ndarray) -> tuple[tuple[float, float], float]:
    """The ``(shift, scale)`` of ``calibrate_boxes`` that maps detector boxes (N, 4) onto the landmark boxes (N, 4)
    of the same frames (medians, so a few false detections do not pull it)."""
    side = np.maximum(detector[:, 2] - detector[:, 0], detector[:, 3] - detector[:, 1])
    side_lm = np.maximum(landmark[:, 2] - landmark[:, 0], landmark[:, 3] - landmark[:, 1])
    dx = ((landmark[:, 0] + landmark[:, 2]) - (detector[:, 0] + detector[:, 2])) / 2 / side
    dy = ((landmark[:, 1] + landmark[:, 3]) - (detector[:, 1] + detector[:, 3])) / 2 / side
    return (float(np.median(dx)), float(np.median(dy))), float(np.median(side_lm / side))


def window_faces(frames: np.ndarray, settings: CropSettings,
                 detector: Callable[[np.ndarray], np.ndarray | None] | None = None) -> WindowFaces:
    """Detect, smooth and crop the faces of one window's frames uint8 (T, H, W, 3) RGB."""
    raw = detect_boxes(frames, detector)
    found = ~np.isnan(raw).any(axis=1)
    if found.sum() < max(settings.min_face_frames, 1):
        return WindowFaces(None, found, None)
    boxes = smooth_boxes(raw, settings.smooth)
    assert boxes is not None
    boxes = calibrate_boxes(boxes, settings.box_shift, settings.box_scale)
    crops = crop_faces(frames, boxes.astype(np.float32), settings.size, settings.margin,
                       settings.squash_before_crop)
    if settings.channel_order == "bgr":
        crops = np.ascontiguousarray(crops[..., ::-1])
    return WindowFaces(crops, found, boxes.astype(np.float32))
