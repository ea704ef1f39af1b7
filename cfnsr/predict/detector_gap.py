"""How much a checkpoint loses when its faces come from predict's detector instead of the landmark CSVs.

``python -m cfnsr.predict.detector_gap ckpt_path=<ckpt> [data.root=<corpus>] [data.cache_dir=<cache>] [device=cpu]
[batch_size=16] [smooth=5] [calib_clips=48] [box_shift=[dx,dy]] [box_scale=1.0] [limit=0] [progress=true]``

Training crops faces around the landmark boxes of the corpus's OpenFace CSVs; predict has no CSV and crops around the
largest face BlazeFace finds, smoothed over the window (cfnsr.predict.faces). This evaluates the checkpoint on
the test actors of the fold it was trained on, and prints WAR and UAR of each way and its difference to the first:

* ``landmark crops (cache)``: the cache entries the run was tested on (the run's own test numbers, recomputed);
* ``detector crops``: the same source mp4s decoded and cropped by predict's pipeline with the given ``box_shift`` /
  ``box_scale`` (predict's defaults: none), one window spanning each clip so that the frames are the cache's
  (k*D/T), with the cache's MFCC: the crops are the only difference;
* ``detector crops, calibrated``: the same, with the detector boxes moved and scaled onto the landmark boxes by a
  calibration fitted on ``calib_clips`` clips of the fold's *training* actors (``faces.fit_calibration``: medians of
  the offset and size ratio between the detector's and the landmark boxes of the same frames); printed as the
  ``predict.box_shift=... predict.box_scale=...`` that reproduce it;
* ``predict end to end``: detector crops as in the second row and predict's own audio decode and MFCC, i.e. what
  ``predict.py`` computes for the clip as one window.

A clip where the detector finds no face is predicted with the video removed (predict's no_face policy) and counted.

``data.root`` / ``data.cache_dir`` default to the checkpoint's dataset's default paths (``data/<name>.yaml`` with
``CFNSR_DATA_DIR``), never to the paths saved in the checkpoint (docs/trust.md).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from cfnsr.builders.checkpoint_config import data_paths
from cfnsr.builders.objects import fold_split
from cfnsr.data.cache import cached_clips, load_clip, load_meta
from cfnsr.data.corpus import Speaker, meta_label_speaker
from cfnsr.data.faces import crop_faces
from cfnsr.data.landmarks import LandmarkError, read_openface_csv
from cfnsr.predict.faces import calibrate_boxes, detect_boxes, fit_calibration, smooth_boxes
from cfnsr.predict.model import Predictor, predictor_from_config
from cfnsr.predict.probe import probe
from cfnsr.predict.windows import RawWindow, WindowStream, plan_windows
from cfnsr.runs.checkpoint_files import load_checkpoint

VARIANTS = ("landmark crops (cache)", "detector crops", "detector crops, calibrated", "predict end to end")
USAGE = ("usage: python -m cfnsr.predict.detector_gap ckpt_path=<ckpt> [data.root=<corpus>] [data.cache_dir=<cache>] "
         "[device=cpu] [batch_size=16] [smooth=5] [calib_clips=48] [box_shift=[dx,dy]] [box_scale=1.0] [limit=0] "
         "[progress=true]")
KEYS = {"ckpt_path", "data", "device", "batch_size", "smooth", "calib_clips", "box_shift", "box_scale", "limit",
        "progress"}


def war_uar(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> tuple[float, float]:
    """WAR (micro accuracy) and UAR (mean recall over the classes present in ``labels``)."""
    war = float(np.mean(pred == labels)) if len(labels) else float("nan")
    recalls = [float(np.mean(pred[labels == c] == c)) for c in range(num_classes) if np.any(labels == c)]
    return war, float(np.mean(recalls)) if recalls else float("nan")


def _decode_clip_window(predictor: Predictor, source: Path) -> RawWindow:
    """The clip as predict decodes one window spanning it: frames at k*D/T, audio from audio_offset."""
    s = predictor.settings
    info = probe(source)
    window = plan_windows(info.duration, info.duration, info.duration, s.frames, s.audio_offset, s.audio_duration)
    raw = next(iter(WindowStream(source, window, s.sample_rate, predictor.audio_samples)))
    if raw.frames is None:
        raise RuntimeError(f"{source}: {raw.problem}")
    return raw


def _landmark_boxes(root: Path, meta: dict[str, Any]) -> np.ndarray | None:
    """The landmark box of each of the entry's frames (as preprocessing cut them), or None without a CSV."""
    csv, rows = meta.get("landmark_csv"), meta.get("landmark_rows")
    if not csv or rows is None or meta.get("face_source", "landmarks") != "landmarks":
        return None
    try:
        return read_openface_csv(root / csv).extents(np.asarray(rows))
    except (LandmarkError, OSError, IndexError):
        return None


def calibrate(predictor: Predictor, root: Path, cache_dir: Path, stems: list[str], smooth: int
              ) -> dict[str, Any] | None:
    """Fit ``(box_shift, box_scale)`` on ``stems``: detector boxes (smoothed, where a face was found) against the
    landmark boxes of the same frames."""
    det, lm = [], []
    for stem in stems:
        meta = load_meta(cache_dir, stem)
        boxes = _landmark_boxes(root, meta)
        if boxes is None:
            continue
        raw = _decode_clip_window(predictor, root / meta["source"])
        found_boxes = detect_boxes(raw.frames)
        found = ~np.isnan(found_boxes).any(axis=1)
        smoothed = smooth_boxes(found_boxes, smooth)
        if smoothed is None or len(boxes) != len(found):
            continue
        det.append(smoothed[found])
        lm.append(boxes[found])
    if not det:
        return None
    shift, scale = fit_calibration(np.concatenate(det), np.concatenate(lm))
    return {"box_shift": [round(shift[0], 3), round(shift[1], 3)], "box_scale": round(scale, 3),
            "clips": len(det), "frames": int(sum(len(d) for d in det))}


def _crops(predictor: Predictor, frames: np.ndarray, smoothed: np.ndarray | None,
           calib: tuple[tuple[float, float], float] | None, like: np.ndarray) -> np.ndarray:
    """Crops around the smoothed detector boxes moved/scaled by ``calib``; zeros (removed later) without a face."""
    s = predictor.settings
    if smoothed is None or calib is None:
        return np.zeros_like(like)
    boxes = calibrate_boxes(smoothed, calib[0], calib[1]).astype(np.float32)
    out = crop_faces(frames, boxes, s.size, s.crop_margin, s.squash_before_crop)
    return np.ascontiguousarray(out[..., ::-1]) if s.channel_order == "bgr" else out


def _spread(stems: list[str], n: int) -> list[str]:
    if n <= 0 or len(stems) <= n:
        return stems
    return [stems[int(i)] for i in np.linspace(0, len(stems) - 1, n).round()]


class _Predictions:
    """Batches of model inputs per crop variant, predicted ``batch_size`` clips at a time."""

    def __init__(self, predictor: Any, batch_size: int) -> None:
        self.predictor, self.batch_size = predictor, batch_size
        self.preds: dict[str, list[int]] = {v: [] for v in VARIANTS}
        self.batch: dict[str, list[tuple[np.ndarray, np.ndarray, bool]]] = {v: [] for v in VARIANTS}

    def add(self, inputs: dict[str, tuple[np.ndarray, np.ndarray, bool]]) -> None:
        """One clip's (video uint8 (T, S, S, 3), MFCC (n_mfcc, L), video missing) per variant."""
        for variant, item in inputs.items():
            self.batch[variant].append(item)
        if len(self.batch[VARIANTS[0]]) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        for variant, items in self.batch.items():
            if items:
                video, audio, drop = zip(*items, strict=True)
                probs = self.predictor.predict(np.stack(video), np.stack(audio), np.array(drop),
                                               np.zeros(len(drop), bool))
                self.preds[variant].extend(np.argmax(probs, axis=1).tolist())
                self.batch[variant] = []


def _fold_clips(run_cfg: DictConfig, cache_dir: Path, limit: int, calib_clips: int) -> tuple[list[str], list[str]]:
    """(the test actors' clips, up to ``limit``; ``calib_clips`` clips spread over the training actors) from the
    cache, by the speaker each entry's meta.json records (not the file name)."""
    split = fold_split(run_cfg)
    stems = cached_clips(cache_dir)
    speaker: dict[str, Speaker] = {s: meta_label_speaker(load_meta(cache_dir, s), s)[1] for s in stems}
    test = [s for s in stems if speaker[s] in set(split.test_actors)]
    if not test:
        raise FileNotFoundError(f"{cache_dir}: no cache entry of the test actors {list(split.test_actors)} of fold "
                                f"{run_cfg.fold} (data.cache_dir=<cache> if it moved)")
    train = _spread([s for s in stems if speaker[s] in set(split.train_actors)], calib_clips)
    return (test[:limit] if limit else test), train


def detector_gap(ckpt_path: str | Path, root: str | None = None, cache_dir: str | None = None, device: str = "cpu",
                 batch_size: int = 16, smooth: int = 5, calib_clips: int = 48,
                 box_shift: tuple[float, float] = (0.0, 0.0), box_scale: float = 1.0, limit: int = 0,
                 progress: bool = True) -> dict[str, Any]:
    """Evaluate ``ckpt_path`` on its test fold with landmark and with detector crops; returns the figures."""
    from tqdm import tqdm

    ckpt = load_checkpoint(ckpt_path, require_run=False)
    run_cfg = OmegaConf.create(ckpt["cfnsr_config"])
    predictor = predictor_from_config(ckpt["cfnsr_config"], ckpt["state_dict"], device=device,
                                      source=str(ckpt_path))
    # Paths come from the command or the dataset's defaults, never from the checkpoint (checkpoint_config).
    root, cache_dir = (Path(p) for p in data_paths(str(run_cfg.data.name), root, cache_dir,
                                                     source=str(ckpt_path), generate=run_cfg.data.get("generate")))
    test, train = _fold_clips(run_cfg, cache_dir, limit, calib_clips)
    calibration = calibrate(predictor, root, cache_dir, train, smooth) if calib_clips > 0 else None
    given = (tuple(float(v) for v in box_shift), float(box_scale))
    fitted = (tuple(calibration["box_shift"]), calibration["box_scale"]) if calibration else None

    predictions = _Predictions(predictor, batch_size)
    labels: list[int] = []
    face_frames: list[int] = []
    no_face: list[str] = []
    face_sources: dict[str, int] = {}
    for stem in tqdm(test, desc="crop gap", unit="clip", disable=not progress, dynamic_ncols=True):
        frames_cache, mfcc_cache = (np.asarray(a) for a in load_clip(cache_dir, stem, mmap=False))
        meta = load_meta(cache_dir, stem)
        source_kind = meta.get("face_source", "landmarks")
        face_sources[source_kind] = face_sources.get(source_kind, 0) + 1
        raw = _decode_clip_window(predictor, root / meta["source"])
        found_boxes = detect_boxes(raw.frames)
        found = ~np.isnan(found_boxes).any(axis=1)
        face_frames.append(int(found.sum()))
        smoothed = smooth_boxes(found_boxes, smooth) if found.sum() >= 1 else None
        if smoothed is None:
            no_face.append(stem)
        detector = _crops(predictor, raw.frames, smoothed, given, frames_cache)
        recalibrated = _crops(predictor, raw.frames, smoothed, fitted, frames_cache) if fitted else detector
        mfcc_own = predictor.mfcc(raw.audio) if raw.audio is not None else np.zeros_like(mfcc_cache)
        labels.append(int(meta["label"]))
        predictions.add(dict(zip(VARIANTS, [(frames_cache, mfcc_cache, False),
                                            (detector, mfcc_cache, smoothed is None),
                                            (recalibrated, mfcc_cache, smoothed is None),
                                            (detector, mfcc_own, smoothed is None)], strict=True)))
    predictions.flush()
    preds, y, k = predictions.preds, np.array(labels), len(predictor.class_names)
    scores = {v: war_uar(np.array(preds[v]), y, k) for v in VARIANTS}
    if fitted is None:
        scores.pop(VARIANTS[2])
    base = scores[VARIANTS[0]]
    split, s = fold_split(run_cfg), predictor.settings
    return {
        "ckpt": str(ckpt_path), "fold": int(run_cfg.fold), "test_actors": list(split.test_actors),
        "clips": len(test), "fusion": predictor.fusion, "backbone": predictor.backbone,
        "frames": s.frames, "size": s.size, "cache_face_sources": face_sources,
        "box_shift": list(given[0]), "box_scale": given[1], "calibration": calibration,
        "scores": {v: {"war": w, "uar": u} for v, (w, u) in scores.items()},
        "gap": {v: {"war": scores[v][0] - base[0], "uar": scores[v][1] - base[1]} for v in scores if v != VARIANTS[0]},
        "agreement": float(np.mean(np.array(preds[VARIANTS[0]]) == np.array(preds[VARIANTS[1]]))),
        "no_face_clips": no_face,
        "mean_face_frames": float(np.mean(face_frames)) if face_frames else float("nan"),
    }


def format_detector_gap(r: dict[str, Any]) -> str:
    lines = [f"detector-crop gap of {r['ckpt']}: {r['fusion']} / {r['backbone']}, fold {r['fold']} test actors "
             f"{r['test_actors']}, {r['clips']} clips, {r['frames']} frames of {r['size']}px "
             f"(cache crops from: {r['cache_face_sources']}); detector boxes: box_shift={r['box_shift']} "
             f"box_scale={r['box_scale']}",
             f"{'variant':28s} {'WAR':>7s} {'UAR':>7s} {'dWAR':>7s} {'dUAR':>7s}"]
    for v, sc in r["scores"].items():
        gap = r["gap"].get(v)
        d = f"{100 * gap['war']:+7.2f} {100 * gap['uar']:+7.2f}" if gap else f"{'-':>7s} {'-':>7s}"
        lines.append(f"{v:28s} {100 * sc['war']:7.2f} {100 * sc['uar']:7.2f} {d}")
    lines.append(f"same prediction with landmark and detector crops: {100 * r['agreement']:.1f}% of clips; the "
                 f"detector found a face in {r['mean_face_frames']:.1f} of {r['frames']} frames on average; "
                 f"{len(r['no_face_clips'])} clips without any face (video removed)")
    c = r.get("calibration")
    if c:
        lines.append(f"calibration fitted on {c['frames']} frames of {c['clips']} training-actor clips: "
                     f"predict.box_shift=[{c['box_shift'][0]},{c['box_shift'][1]}] predict.box_scale={c['box_scale']}")
    else:
        lines.append("no calibration (calib_clips=0, or no training clip with a landmark CSV)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(f"{USAGE}\n\n{__doc__}")
        return 0
    if not argv or any("=" not in a for a in argv):
        print(USAGE, file=sys.stderr)
        return 2
    cfg = OmegaConf.from_dotlist(argv)
    unknown = sorted(set(cfg.keys()) - KEYS) + [f"data.{k}" for k in (cfg.get("data") or {})
                                                 if k not in ("root", "cache_dir")]
    if unknown or not cfg.get("ckpt_path"):
        print(f"{USAGE}\n(unknown keys: {unknown})" if unknown else USAGE, file=sys.stderr)
        return 2
    data = cfg.get("data") or {}
    result = detector_gap(cfg.ckpt_path, root=data.get("root"), cache_dir=data.get("cache_dir"),
                      device=str(cfg.get("device", "cpu")), batch_size=int(cfg.get("batch_size", 16)),
                      smooth=int(cfg.get("smooth", 5)), calib_clips=int(cfg.get("calib_clips", 48)),
                      box_shift=tuple(cfg.get("box_shift", (0.0, 0.0))), box_scale=float(cfg.get("box_scale", 1.0)),
                      limit=int(cfg.get("limit", 0)), progress=bool(cfg.get("progress", True)))
    print(format_detector_gap(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
