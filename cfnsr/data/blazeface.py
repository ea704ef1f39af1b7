"""MediaPipe's BlazeFace face detector, run by OpenCV's own TFLite importer (``cv2.dnn.readNetFromTFLite``).

The models are vendored in ``cfnsr/data/models/`` (model card: ``cfnsr/data/models/README.md``), checked against
their sha256 when loaded. What the code below relies on (from the models' MediaPipe graph configuration):

* input: one RGB image, ``input_size`` x ``input_size`` (128 short range, 192 full range), values in [-1, 1]; the
  frame is letterboxed (aspect ratio kept, padded with zeros = mid-grey) so a face is not distorted;
* anchors (SSD, ``fixed_anchor_size``): one anchor centre per cell of each feature map (``ceil(input / stride)``
  cells a side), ``anchors_per_layer`` per cell and layer (2 with ``interpolated_scale_aspect_ratio``); consecutive
  layers of the same stride share one feature map and stack their anchors per cell. Short range: strides
  [8, 16, 16, 16] -> 16x16x2 + 8x8x6 = 896 anchors; full range: stride [4], 1 anchor -> 48x48 = 2304;
* outputs: a score logit per anchor (sigmoid, clipped to +-100) and 16 regressor values per anchor: box centre x, y,
  width, height, then 6 keypoints (x, y) (right eye, left eye, nose tip, mouth, right ear, left ear), all in input
  pixels relative to the anchor centre: ``value / input_size + anchor`` (width, height: ``value / input_size``);
* detections above ``score_threshold`` (0.5 short, 0.6 full range) are merged by *weighted* non-maximum suppression:
  the best remaining detection and every other one overlapping it by IoU > 0.3 become one detection, the score-
  weighted mean of their boxes and keypoints, with the best one's score.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

MODELS_DIR = Path(__file__).resolve().parent / "models"
NUM_KEYPOINTS = 6
NMS_IOU = 0.3  # MediaPipe's min_suppression_threshold for both models


@dataclass(frozen=True)
class BlazeFaceModel:
    """One vendored BlazeFace variant: its file, checksum and the anchor/decoding facts of its graph config."""

    file: str
    sha256: str
    input_size: int
    strides: tuple[int, ...]
    anchors_per_layer: int
    score_threshold: float

    @property
    def path(self) -> Path:
        return MODELS_DIR / self.file


SHORT_RANGE = BlazeFaceModel("face_detection_short_range.tflite",
                             "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
                             input_size=128, strides=(8, 16, 16, 16), anchors_per_layer=2, score_threshold=0.5)
FULL_RANGE = BlazeFaceModel("face_detection_full_range.tflite",
                            "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
                            input_size=192, strides=(4,), anchors_per_layer=1, score_threshold=0.6)
MODELS = {"short": SHORT_RANGE, "full": FULL_RANGE}


@dataclass(frozen=True)
class Detections:
    """boxes float32 (M, 4) [x0, y0, x1, y1], keypoints float32 (M, 6, 2) (x, y), scores float32 (M,), best first.
    Normalised [0, 1] coordinates of the network input, or pixels of the frame (``BlazeFace.detect``)."""

    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


def ssd_anchors(input_size: int, strides: tuple[int, ...], anchors_per_layer: int) -> np.ndarray:
    """Anchor centres float32 (N, 2) (x, y) in [0, 1], in the order of the network's outputs: feature map by feature
    map (consecutive layers of one stride share a map), row by row, cell by cell, the cell's anchors together."""
    centres: list[np.ndarray] = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        same = 1
        while layer + same < len(strides) and strides[layer + same] == stride:
            same += 1
        cells = math.ceil(input_size / stride)
        grid = (np.arange(cells, dtype=np.float64) + 0.5) / cells  # anchor_offset 0.5
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        per_cell = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(per_cell, anchors_per_layer * same, axis=0))
        layer += same
    return np.concatenate(centres).astype(np.float32)


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, input_size: int,
           score_threshold: float) -> Detections:
    """Network outputs -> the detections above ``score_threshold`` (before NMS), best first.

    raw_boxes float (N, 16), raw_scores float (N,) or (N, 1) logits, anchors float (N, 2) -> Detections in
    normalised input coordinates.
    """
    raw_boxes = np.asarray(raw_boxes, dtype=np.float64).reshape(len(anchors), -1)
    logits = np.clip(np.asarray(raw_scores, dtype=np.float64).reshape(len(anchors)), -100.0, 100.0)
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = np.flatnonzero(scores >= score_threshold)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    r, a = raw_boxes[keep] / input_size, anchors[keep].astype(np.float64)
    cx, cy = r[:, 0] + a[:, 0], r[:, 1] + a[:, 1]
    w, h = r[:, 2], r[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kp = r[:, 4:4 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2) + a[:, None, :]
    return Detections(boxes.astype(np.float32), kp.astype(np.float32), scores[keep].astype(np.float32))


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box (4,) with each of boxes (M, 4); 0 where either has no area."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = max(box[2] - box[0], 0) * max(box[3] - box[1], 0)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(det: Detections, iou_threshold: float = NMS_IOU) -> Detections:
    """MediaPipe's weighted NMS: repeatedly take the best remaining detection, merge it with every remaining one
    whose IoU with it exceeds ``iou_threshold`` into their score-weighted mean box and keypoints (score: the best
    one's), and drop those. Input in any order; output best first."""
    order = np.argsort(-det.scores, kind="stable")
    boxes, kps, scores = (det.boxes[order].astype(np.float64), det.keypoints[order].astype(np.float64),
                          det.scores[order].astype(np.float64))
    out_b, out_k, out_s = [], [], []
    remaining = np.arange(len(scores))
    while len(remaining):
        best = remaining[0]
        overlap = _iou(boxes[best], boxes[remaining]) > iou_threshold
        overlap[0] = True  # the best one itself (even a degenerate box)
        group = remaining[overlap]
        weights = scores[group] / scores[group].sum()
        out_b.append((boxes[group] * weights[:, None]).sum(axis=0))
        out_k.append((kps[group] * weights[:, None, None]).sum(axis=0))
        out_s.append(scores[best])
        remaining = remaining[~overlap]
    if not out_s:
        return Detections(np.zeros((0, 4), np.float32), np.zeros((0, NUM_KEYPOINTS, 2), np.float32),
                          np.zeros(0, np.float32))
    return Detections(np.array(out_b, np.float32), np.array(out_k, np.float32), np.array(out_s, np.float32))


def _check_model(model: BlazeFaceModel) -> None:
    path = model.path
    if not path.is_file():
        raise RuntimeError(f"the BlazeFace model {path} is missing (it ships inside the cfnsr package: reinstall it)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != model.sha256:
        raise RuntimeError(f"the BlazeFace model {path} has sha256 {digest}, expected {model.sha256} (damaged or "
                           f"replaced file: reinstall cfnsr)")
    if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromTFLite"):
        raise RuntimeError(f"OpenCV {cv2.__version__} cannot read TFLite models (cv2.dnn.readNetFromTFLite needs "
                           f"OpenCV >= 4.8)")


class BlazeFace:
    """A BlazeFace network (one per process: a ``cv2.dnn.Net`` is neither picklable nor thread-safe)."""

    def __init__(self, model: BlazeFaceModel = SHORT_RANGE, score_threshold: float | None = None,
                 iou_threshold: float = NMS_IOU) -> None:
        _check_model(model)
        self.model = model
        self.net = cv2.dnn.readNetFromTFLite(str(model.path))
        self.outputs = list(self.net.getUnconnectedOutLayersNames())
        self.anchors = ssd_anchors(model.input_size, model.strides, model.anchors_per_layer)
        self.score_threshold = model.score_threshold if score_threshold is None else float(score_threshold)
        self.iou_threshold = iou_threshold

    def _letterbox(self, frame: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        """RGB uint8 (H, W, 3) -> (S, S, 3) with the frame scaled to fit and centred, plus (scale, pad_x, pad_y):
        input pixel = frame pixel * scale + pad."""
        s = self.model.input_size
        h, w = frame.shape[:2]
        scale = s / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        small = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        pad_x, pad_y = (s - nw) // 2, (s - nh) // 2
        # padding 127.5 would be 0 after normalisation; uint8 128 is within 1/127.5 of it
        out = np.full((s, s, 3), 128, np.uint8)
        out[pad_y:pad_y + nh, pad_x:pad_x + nw] = small
        return out, nw / w, pad_x, pad_y

    def detect_normalised(self, image: np.ndarray) -> Detections:
        """RGB uint8 (S, S, 3) already at the input size -> detections after NMS, normalised coordinates."""
        blob = cv2.dnn.blobFromImage(image, scalefactor=1 / 127.5, mean=(127.5, 127.5, 127.5), swapRB=False)
        self.net.setInput(blob)
        outs = dict(zip(self.outputs, self.net.forward(self.outputs), strict=True))
        # the regressor output is the one with 16 values per anchor, the classifier the one with 1
        raw_boxes = next(o for o in outs.values() if o.shape[-1] == 4 + 2 * NUM_KEYPOINTS)
        raw_scores = next(o for o in outs.values() if o.shape[-1] == 1)
        det = decode(raw_boxes, raw_scores, self.anchors, self.model.input_size, self.score_threshold)
        return weighted_nms(det, self.iou_threshold)

    def detect(self, frame: np.ndarray) -> Detections:
        """All faces in an RGB frame uint8 (H, W, 3): Detections in frame pixels, best score first."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"BlazeFace.detect wants an RGB uint8 (H, W, 3) frame, got {frame.dtype} {frame.shape}")
        image, scale, pad_x, pad_y = self._letterbox(frame)
        det = self.detect_normalised(image)
        s = self.model.input_size
        offset = np.array([pad_x, pad_y], np.float32)
        boxes = (det.boxes.reshape(-1, 2, 2) * s - offset) / scale
        kps = (det.keypoints * s - offset) / scale
        return Detections(boxes.reshape(-1, 4).astype(np.float32), kps.astype(np.float32), det.scores)

    def largest(self, frame: np.ndarray) -> np.ndarray | None:
        """The largest face of an RGB frame -> float32 (4,) [x0, y0, x1, y1] frame pixels, or None."""
        det = self.detect(frame)
        if not len(det):
            return None
        area = (det.boxes[:, 2] - det.boxes[:, 0]) * (det.boxes[:, 3] - det.boxes[:, 1])
        return det.boxes[int(np.argmax(area))].copy()


@functools.lru_cache(maxsize=4)
def blazeface(model: str = "short") -> BlazeFace:
    """The process's BlazeFace network for ``model`` ("short" or "full" range), loaded once."""
    if model not in MODELS:
        raise ValueError(f"unknown BlazeFace model {model!r}: one of {sorted(MODELS)}")
    return BlazeFace(MODELS[model])
