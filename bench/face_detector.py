"""Face detector benchmark: Haar cascades against BlazeFace on a corpus with landmark CSVs, and on real footage.

Corpus part (default: the synthetic corpus's fold-1 test actors 1-4, as ``python -m cfnsr.predict.detector_gap``): every
clip decoded as preprocessing decodes it (``--frames`` frames at k*D/T), each frame given to each detector, the box
compared with the landmark box of the same frame (the bounding box of the CSV's 68 points, what training crops
around). Per detector: faces found (% of frames), found on the fearful (06) and surprised (08) clips, median IoU with
the landmark box (frames with a face), median centre offset and side ratio, and ms per frame (wall, this process,
``cv2.setNumThreads(--threads)``).

Detectors: ``haar`` (preprocessing's old fallback: the default frontal cascade), ``haar-staged`` (predict's old
three-stage cascade search), ``blazeface-short`` and ``blazeface-full`` (one model each) and ``blazeface`` (short
range, then full range on the frames it missed: the new default of both).

``--real FILE...``: the same detectors on real videos (no landmarks: found % and ms/frame only), ``--real-frames``
frames spread over each.

Usage: ``python bench/face_detector.py [--root DIR] [--actors 1,2,3,4] [--frames 16] [--detectors ...]
[--real FILE ...] [--threads 1]``
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cfnsr.data.blazeface import blazeface  # noqa: E402
from cfnsr.data.faces import detect_face_blazeface  # noqa: E402
from cfnsr.data.landmarks import find_landmark_csv, read_openface_csv, rows_for_times  # noqa: E402
from cfnsr.data.media import decode_clip  # noqa: E402
from cfnsr.data.ravdess import parse_name  # noqa: E402

# The Haar detectors cfnsr used before BlazeFace, kept here as the baseline (OpenCV < 5: its 5.x wheels have no
# cascades). Preprocessing's fallback: the default frontal cascade on the frame shrunk to 480 px. Predict's search:
# that, then alt2 upright, then alt2 on the frame rotated by +-25 degrees, each on the frames the previous stages
# found nothing in.
DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"
ALT_CASCADE = "haarcascade_frontalface_alt2.xml"
ROTATIONS = (25.0, -25.0)


@functools.lru_cache(maxsize=2)
def _cascade(name: str) -> cv2.CascadeClassifier:
    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
        raise SystemExit(f"OpenCV {cv2.__version__} has no Haar cascades (5.x): leave haar out of --detectors")
    return cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / name))


def detect_face_haar(frame: np.ndarray, max_side: int = 480) -> np.ndarray | None:
    """Largest face by the default cascade (cfnsr's former preprocessing fallback) -> [x0, y0, x1, y1] or None."""
    h, w = frame.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        gray = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    min_side = max(20, int(min(gray.shape) * 0.15))
    found = _cascade(DEFAULT_CASCADE).detectMultiScale(gray, scaleFactor=1.1, minNeighbors=4,
                                                      minSize=(min_side, min_side))
    if len(found) == 0:
        return None
    x, y, bw, bh = max(found, key=lambda b: b[2] * b[3])
    return np.array([x, y, x + bw, y + bh], dtype=np.float32) / scale


def _alt_search(frame: np.ndarray, rotations: tuple[float, ...], max_side: int = 480) -> np.ndarray | None:
    h, w = frame.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        gray = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    gh, gw = gray.shape
    min_side = max(20, int(min(gh, gw) * 0.15))
    best: tuple[float, np.ndarray] | None = None
    for angle in rotations or (0.0,):
        rot = cv2.getRotationMatrix2D((gw / 2, gh / 2), angle, 1.0)
        turned = gray if angle == 0 else cv2.warpAffine(gray, rot, (gw, gh), flags=cv2.INTER_LINEAR,
                                                        borderMode=cv2.BORDER_REPLICATE)
        found = _cascade(ALT_CASCADE).detectMultiScale(turned, scaleFactor=1.1, minNeighbors=3, minSize=(min_side, min_side))
        if len(found) == 0:
            continue
        x, y, bw, bh = max(found, key=lambda b: b[2] * b[3])
        cx, cy = cv2.invertAffineTransform(rot) @ np.array([x + bw / 2, y + bh / 2, 1.0])
        if best is None or bw * bh > best[0]:
            best = (float(bw * bh), np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]) / scale)
    return None if best is None else best[1].astype(np.float32)


def _haar_staged() -> Callable[[np.ndarray], np.ndarray | None]:
    def run(frame: np.ndarray) -> np.ndarray | None:
        for stage in (detect_face_haar, lambda f: _alt_search(f, ()), lambda f: _alt_search(f, ROTATIONS)):
            box = stage(frame)
            if box is not None:
                return box
        return None
    return run


DETECTORS: dict[str, Callable[[], Callable[[np.ndarray], np.ndarray | None]]] = {
    "haar": lambda: detect_face_haar,
    "haar-staged": _haar_staged,
    "blazeface-short": lambda: blazeface("short").largest,
    "blazeface-full": lambda: blazeface("full").largest,
    "blazeface": lambda: detect_face_blazeface,
}


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def corpus_frames(root: Path, actors: set[int], frames: int) -> list[tuple[str, int, np.ndarray, np.ndarray]]:
    """(stem, emotion, RGB frames (T, H, W, 3), landmark boxes (T, 4)) of every clip of ``actors``."""
    out = []
    for path in sorted(root.glob("Actor_*/*.mp4")):
        name = parse_name(path.stem)
        if name.actor not in actors:
            continue
        csv = find_landmark_csv(root, name)
        if csv is None:
            continue
        clip = decode_clip(path, frames, 16000, with_audio=False)
        lm = read_openface_csv(csv)
        boxes = lm.extents(rows_for_times(lm, clip.frame_times, clip.duration))
        out.append((path.stem, name.emotion, clip.frames, boxes))
    return out


def _pct(values: list[float], p: float) -> float:
    return float(np.percentile(values, p)) if values else float("nan")


def bench_corpus(clips: list[tuple[str, int, np.ndarray, np.ndarray]], names: list[str]) -> None:
    print(f"{'detector':16s} {'found %':>8s} {'fearful %':>9s} {'surpr. %':>8s} {'IoU med':>7s} {'IoU p10':>7s} "
          f"{'dx':>6s} {'dy':>6s} {'side':>5s} {'ms/frame':>8s}")
    base_ms = None
    for name in names:
        detect = DETECTORS[name]()
        detect(clips[0][2][0])  # warm-up: model load, first-call allocations
        found: dict[int, list[bool]] = {}
        ious, dxs, dys, sides = [], [], [], []
        seconds, n = 0.0, 0
        for _stem, emotion, frames, lm_boxes in clips:
            for frame, lm in zip(frames, lm_boxes, strict=True):
                t0 = time.perf_counter()
                box = detect(frame)
                seconds += time.perf_counter() - t0
                n += 1
                found.setdefault(emotion, []).append(box is not None)
                if box is not None:
                    ious.append(iou(box, lm))
                    side = max(box[2] - box[0], box[3] - box[1])
                    dxs.append(((lm[0] + lm[2]) - (box[0] + box[2])) / 2 / side)
                    dys.append(((lm[1] + lm[3]) - (box[1] + box[3])) / 2 / side)
                    sides.append(max(lm[2] - lm[0], lm[3] - lm[1]) / side)
        every = np.concatenate([np.array(v) for v in found.values()])
        ms = 1000 * seconds / n
        base_ms = base_ms or ms
        print(f"{name:16s} {100 * every.mean():8.1f} {100 * np.mean(found.get(6, [0])):9.1f} "
              f"{100 * np.mean(found.get(8, [0])):8.1f} {_pct(ious, 50):7.3f} {_pct(ious, 10):7.3f} {_pct(dxs, 50):+6.3f} "
              f"{_pct(dys, 50):+6.3f} {_pct(sides, 50):5.2f} {ms:8.2f}  ({base_ms / ms:.2f}x the first row's speed)")
    print("dx, dy: median offset of the landmark box centre from the detector box centre (fractions of the detector "
          "box side; + = right, down); side: median landmark side / detector side")


def bench_real(paths: list[Path], names: list[str], frames: int) -> None:
    print(f"{'video':28s} {'detector':16s} {'found':>9s} {'ms/frame':>8s}")
    for path in paths:
        clip = decode_clip(path, frames, 16000, with_audio=False)
        for name in names:
            detect = DETECTORS[name]()
            detect(clip.frames[0])
            t0 = time.perf_counter()
            hits = sum(detect(f) is not None for f in clip.frames)
            ms = 1000 * (time.perf_counter() - t0) / len(clip.frames)
            print(f"{path.name:28s} {name:16s} {hits:4d}/{len(clip.frames):<4d} {ms:8.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=Path("data/synthetic_legacy"))
    ap.add_argument("--actors", default="1,2,3,4")
    ap.add_argument("--frames", type=int, default=16)
    # the Haar baseline needs OpenCV < 5 (5.x wheels have no cascades): left out of the default there
    ap.add_argument("--detectors", default=("haar,haar-staged," if hasattr(cv2, "CascadeClassifier") else "")
                    + "blazeface-short,blazeface-full,blazeface")
    ap.add_argument("--real", type=Path, nargs="*", default=[])
    ap.add_argument("--real-frames", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    cv2.setNumThreads(args.threads)
    names = [n for n in args.detectors.split(",") if n]
    unknown = [n for n in names if n not in DETECTORS]
    if unknown:
        ap.error(f"unknown detectors {unknown}: choose from {list(DETECTORS)}")
    if args.root.is_dir():
        clips = corpus_frames(args.root, {int(a) for a in args.actors.split(",")}, args.frames)
        if not clips:
            ap.error(f"{args.root}: no clip of actors {args.actors} with a landmark CSV")
        print(f"{args.root}: {len(clips)} clips of actors {args.actors}, {args.frames} frames each, "
              f"{clips[0][2].shape[2]}x{clips[0][2].shape[1]}")
        bench_corpus(clips, names)
    elif not args.real:
        ap.error(f"{args.root} is not a folder (make one with python -m cfnsr.data.synthetic)")
    if args.real:
        bench_real(args.real, names, args.real_frames)
    return 0


if __name__ == "__main__":
    sys.exit(main())
