"""A checkpoint ready to predict: the network rebuilt from its saved config, with that run's preprocessing.

Everything that shapes a model's input comes from the checkpoint's ``cfnsr_config`` (the run's resolved config),
never from predict's own settings: frames T, crop size and margin, squash and channel order (``preprocess.*``), the
audio sample rate, window and MFCC parameters, the normalisation mean/std (``augment.*``), the class count and
names, the backbone and the fusion. A checkpoint whose config lacks any of them is refused with the list of what is
missing, rather than predicted with guessed values. The file is read with ``weights_only=True``
(``cfnsr.runs.checkpoint_files.load_checkpoint``), like every checkpoint cfnsr reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from torch import Tensor

from cfnsr.builders.checkpoint_config import check_saved_config, hydra_searchpath
from cfnsr.data.augment import ClipAugment
from cfnsr.data.corpus import DATA_CONF_DIR, shipped_class_names
from cfnsr.data.features import compute_mfcc, mfcc_frames, window_length
from cfnsr.data.missing import remove_per_clip
from cfnsr.data.settings import PreprocessSettings
from cfnsr.models.build import build_model
from cfnsr.models.fusion.base import FusionModel, FusionOutput
from cfnsr.models.fusion.late import LateFusion
from cfnsr.predict.faces import CropSettings
from cfnsr.predict.windows import default_window_s
from cfnsr.runs.checkpoint_files import CheckpointError, load_checkpoint

# What predict reads from a checkpoint's config, by what it is for.
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "preprocessing settings": tuple(f"preprocess.{k}" for k in (
        "frames", "size", "crop_margin", "squash_before_crop", "channel_order", "sample_rate", "n_mfcc", "n_fft",
        "hop_length")),
    "clip length": ("preprocess.audio_offset", "preprocess.audio_duration"),
    "normalisation": ("augment.mean", "augment.std"),
    "model": ("data.num_classes", "backbone.name", "fusion.name", "fusion.model._target_"),
}


class PredictCheckpointError(CheckpointError):
    """A checkpoint predict cannot use; the message names the file and what is missing."""


def _get(cfg: Mapping[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node or node[part] is None:
            return None
        node = node[part]
    return node


def class_names_of(cfg: Mapping[str, Any]) -> tuple[str, ...] | None:
    """``data.class_names`` when the config has it; for a checkpoint saved before that key existed, the class names
    of the shipped ``conf/data/<data.name>.yaml`` when their count is its ``data.num_classes``; None when the
    classes cannot be named."""
    k = _get(cfg, "data.num_classes")
    names = _get(cfg, "data.class_names")
    if names is not None:
        names = tuple(str(n) for n in names)
        return names if k is None or len(names) == int(k) else None
    shipped = shipped_class_names(_get(cfg, "data.name"))
    if shipped is not None and k is not None and int(k) == len(shipped):
        return shipped
    return None


def check_predict_config(cfg: Mapping[str, Any], source: str) -> tuple[str, ...]:
    """Raise ``PredictCheckpointError`` listing what ``cfg`` lacks for prediction; returns the class names."""
    problems = []
    for what, keys in REQUIRED_KEYS.items():
        missing = [k for k in keys if _get(cfg, k) is None]
        if missing:
            problems.append(f"{what} ({', '.join(missing)})")
    for key in ("augment.mean", "augment.std"):
        value = _get(cfg, key)
        if value is not None and (not isinstance(value, (list, tuple)) or len(value) != 3):
            problems.append(f"normalisation ({key} must hold 3 values, got {value!r})")
    names = class_names_of(cfg)
    if names is None:
        problems.append(f"class names (data.class_names is missing and data.name={_get(cfg, 'data.name')!r} "
                        f"with data.num_classes={_get(cfg, 'data.num_classes')!r} matches no shipped corpus in "
                        f"{DATA_CONF_DIR})")
    if problems:
        raise PredictCheckpointError(
            f"{source}: cannot predict with this checkpoint: its saved config (cfnsr_config) lacks "
            f"{'; '.join(problems)}. Predict takes every input setting from the checkpoint rather than guessing "
            f"it; checkpoints written by `python train.py` carry all of them.")
    return names


def video_only_head(model: FusionModel) -> Callable[[FusionOutput], Tensor] | None:
    """How to read a prediction from the video alone, or None when the model has no video-only path.

    A video-only model predicts from the video anyway; a late-fusion model's video stream is a complete unimodal
    network whose logits (``FusionOutput.streams["video"]``) never see the audio. Early and model-level fusion mix the
    audio into every logit (their ``streams``, where present, come from frozen or audio-mixed features), so they
    have none.
    """
    if tuple(model.modalities) == ("video",):
        return lambda out: out.logits
    if isinstance(model, LateFusion) and "video" in model.modalities:
        return lambda out: out.streams["video"]
    return None


@dataclass
class Predictor:
    """A network in eval mode on ``device`` plus the preprocessing of the run that trained it."""

    model: FusionModel
    device: torch.device
    settings: PreprocessSettings
    class_names: tuple[str, ...]
    normalise: ClipAugment
    source: str
    fusion: str
    backbone: str
    run_config: dict[str, Any]

    @property
    def uses_video(self) -> bool:
        return "video" in self.model.modalities

    @property
    def uses_audio(self) -> bool:
        return "audio" in self.model.modalities

    @property
    def video_only(self) -> Callable[[FusionOutput], Tensor] | None:
        return video_only_head(self.model)

    @property
    def window_s(self) -> float:
        """The default window: the training clip length the audio window implies (see windows.default_window_s)."""
        return default_window_s(self.settings.audio_offset, self.settings.audio_duration)

    @property
    def audio_samples(self) -> int:
        return window_length(self.settings.sample_rate, self.settings.audio_duration)

    @property
    def mfcc_shape(self) -> tuple[int, int]:
        return self.settings.n_mfcc, mfcc_frames(self.audio_samples, self.settings.hop_length)

    def crop_settings(self, smooth: int = 5, min_face_frames: int = 1, box_shift: tuple[float, float] = (0.0, 0.0),
                      box_scale: float = 1.0) -> CropSettings:
        s = self.settings
        shift = tuple(float(v) for v in box_shift)
        if len(shift) != 2 or not float(box_scale) > 0:
            raise ValueError(f"box_shift must be [dx, dy] and box_scale > 0, got {list(box_shift)}, {box_scale}")
        return CropSettings(size=s.size, margin=s.crop_margin, squash_before_crop=s.squash_before_crop,
                            channel_order=s.channel_order, smooth=int(smooth), min_face_frames=int(min_face_frames),
                            box_shift=shift, box_scale=float(box_scale))

    def mfcc(self, samples: np.ndarray) -> np.ndarray:
        """The MFCC the run computed for a clip, of an audio window float32 (audio_samples,)."""
        s = self.settings
        return compute_mfcc(samples, s.sample_rate, s.n_mfcc, s.n_fft, s.hop_length)

    @torch.no_grad()
    def predict(self, video: np.ndarray, audio: np.ndarray, drop_video: np.ndarray, video_only: np.ndarray
                ) -> np.ndarray:
        """Class probabilities (B, K) float64.

        video: uint8 (B, T, S, S, 3) crops in the run's channel order; audio: float32 (B, n_mfcc, L);
        drop_video: bool (B,), windows whose video is removed (no face); video_only: bool (B,), windows predicted
        from the video alone (no audio), which needs ``self.video_only``. Removed inputs get the missing-modality
        zeros of ``cfnsr.data.missing`` (after normalisation).
        """
        video_only = np.asarray(video_only, dtype=bool)
        if video_only.any() and self.video_only is None:
            raise ValueError(f"{self.fusion}: this model has no video-only path")
        v = self.normalise(torch.from_numpy(np.ascontiguousarray(video)).to(self.device))
        a = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).to(self.device)
        dv = torch.from_numpy(np.asarray(drop_video, dtype=bool)).to(self.device)
        da = torch.from_numpy(video_only).to(self.device)
        v, a = remove_per_clip(v, a, dv, da)
        out = self.model(v, a)
        logits = out.logits
        if video_only.any():
            assert self.video_only is not None
            logits = torch.where(da[:, None], self.video_only(out), logits)
        return torch.softmax(logits.float(), dim=-1).double().cpu().numpy()


def _device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"predict.device={name}: no CUDA device here (use predict.device=cpu)")
    return device


def predictor_from_config(run_cfg: Mapping[str, Any], state_dict: Mapping[str, Tensor] | None,
                          device: str = "cpu", source: str = "<config>") -> Predictor:
    """Build a ``Predictor`` from a run config (plain dict) and its Lightning state dict (``model.*`` keys);
    ``state_dict=None`` keeps the fresh initialisation (benchmarks)."""
    # Before OmegaConf resolves anything or Hydra imports a target: the saved config is data (checkpoint_config).
    check_saved_config(run_cfg, source, hydra_searchpath())
    run_cfg = OmegaConf.to_container(OmegaConf.create(dict(run_cfg)), resolve=True)
    names = check_predict_config(run_cfg, source)
    known = {f.name for f in fields(PreprocessSettings)}
    try:
        settings = PreprocessSettings(**{k: v for k, v in run_cfg["preprocess"].items() if k in known})
    except (TypeError, ValueError) as exc:
        raise PredictCheckpointError(f"{source}: invalid preprocessing settings in its config: {exc}") from exc
    num_classes = int(run_cfg["data"]["num_classes"])
    cfg = OmegaConf.create(run_cfg)
    model = build_model(cfg.backbone, cfg.fusion, num_classes)
    if state_dict is not None:
        own = {k[len("model."):]: v for k, v in state_dict.items() if k.startswith("model.")}
        result = model.load_state_dict(own, strict=False)
        if result.missing_keys or result.unexpected_keys or not own:
            raise PredictCheckpointError(
                f"{source}: its weights do not fit the {cfg.fusion.name}/{cfg.backbone.name} model its config "
                f"describes (missing {list(result.missing_keys)[:5]}, unexpected {list(result.unexpected_keys)[:5]})")
    dev = _device(device)
    model.to(dev).eval()
    aug = run_cfg["augment"]
    normalise = ClipAugment.normalise_only(mean=aug["mean"], std=aug["std"])
    return Predictor(model=model, device=dev, settings=settings, class_names=names, normalise=normalise,
                     source=source, fusion=str(cfg.fusion.name), backbone=str(cfg.backbone.name),
                     run_config=run_cfg)


def load_predictor(ckpt_path: str | Path, device: str = "cpu") -> Predictor:
    """Read ``ckpt_path`` as data and rebuild its network and preprocessing; ``PredictCheckpointError`` (a
    ``CheckpointError``) names the file and the reason when it cannot be used."""
    ckpt = load_checkpoint(ckpt_path, require_run=False)
    return predictor_from_config(ckpt["cfnsr_config"], ckpt["state_dict"], device=device, source=str(ckpt_path))
