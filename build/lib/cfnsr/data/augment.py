"""Batch-level video augmentation and normalisation, run on the device after the batch is transferred.

The public code drew a new random crop and flip for each of the 30 frames of a clip, which makes the face jump
around in time; here one crop/flip is drawn per clip and applied to all its frames (one ``interpolate`` call per
clip, whose frames share the crop box).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ClipAugment(nn.Module):
    """uint8 clips ``(B, T, H, W, 3)`` -> normalised float ``(B, 3, T, H, W)``.

    In training mode each clip gets one random resized crop (area fraction in ``scale``, aspect ratio in ``ratio``)
    and a horizontal flip with probability ``flip``, shared by all its frames; the output keeps the input size.
    In eval mode only the conversion and normalisation happen. Randomness comes from the global torch RNG, which
    the training module reseeds at every epoch start so that resumed runs draw the same crops. Tensors are made on
the input's device, so the module itself never needs moving.

    ``modality_dropout`` (training batches only, applied by the data module): the probability that a clip loses
    one of its two modalities, video or audio chosen 50/50, with the missing-modality policy of
    ``cfnsr.data.missing`` (zeros after normalisation); see ``modality_dropout_masks``. 0 (as in the shipped
    configs) draws nothing, so runs without it see exactly the random numbers they saw before the option existed.
    """

    def __init__(
        self,
        *,
        scale: Sequence[float],
        ratio: Sequence[float],
        flip: float,
        mean: Sequence[float],
        std: Sequence[float],
        modality_dropout: float,
    ) -> None:
        super().__init__()
        if not 0.0 <= float(modality_dropout) <= 1.0:
            raise ValueError(f"augment modality_dropout={modality_dropout} must be in [0, 1]")
        self.modality_dropout = float(modality_dropout)
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"augment scale {tuple(scale)} must satisfy 0 < min <= max <= 1")
        self.scale = (float(scale[0]), float(scale[1]))
        self.log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        self.flip = float(flip)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    @classmethod
    def normalise_only(cls, mean: Sequence[float], std: Sequence[float]) -> ClipAugment:
        """The conversion and normalisation alone, in eval mode (e.g. for prediction): no crop, flip or dropout
        even if switched to training mode."""
        return cls(scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=0.0, mean=mean, std=std, modality_dropout=0.0).eval()

    def forward(self, video: Tensor) -> Tensor:
        """video: uint8 (B, T, H, W, 3) -> float (B, 3, T, H, W)."""
        if self.training:
            x = self._crop_and_flip(video)
        else:
            x = video.permute(0, 4, 1, 2, 3).float()
        # (x / 255 - mean) / std as one scale and one shift, in place: these clips are large (72 MB per
        # RAVDESS batch of 4) and every extra temporary costs page faults.
        scale = x.new_tensor([1 / (255 * s) for s in self.std]).view(1, 3, 1, 1, 1)
        shift = x.new_tensor([m / s for m, s in zip(self.mean, self.std, strict=False)]).view(1, 3, 1, 1, 1)
        return x.mul_(scale).sub_(shift)

    def modality_dropout_masks(self, b: int) -> tuple[Tensor, Tensor] | None:
        """(drop_video, drop_audio) bool (B,) on the CPU for a training batch of ``b`` clips, or None when
        ``modality_dropout`` is 0 (nothing drawn). Each clip is hit with probability ``modality_dropout``; a hit
        clip loses its video or its audio, 50/50, never both. Drawn from the global torch RNG (reseeded per epoch).
        """
        if self.modality_dropout <= 0.0:
            return None
        u = torch.rand(b, 2)
        hit = u[:, 0] < self.modality_dropout
        video = u[:, 1] < 0.5
        return hit & video, hit & ~video

    def _boxes(self, b: int, h: int, w: int) -> list[tuple[int, int, int, int, bool]]:
        """One (top, left, height, width, flip) per clip, drawn on the CPU from the global torch RNG."""
        area = torch.empty(b).uniform_(*self.scale)
        aspect = torch.exp(torch.empty(b).uniform_(*self.log_ratio))
        u = torch.rand(b, 3)
        boxes = []
        for i in range(b):
            cw = min(w, max(1, round(math.sqrt(area[i] * aspect[i]) * w)))
            ch = min(h, max(1, round(math.sqrt(area[i] / aspect[i]) * h)))
            top = int(u[i, 0] * (h - ch + 1))
            left = int(u[i, 1] * (w - cw + 1))
            boxes.append((top, left, ch, cw, bool(u[i, 2] < self.flip)))
        return boxes

    def _crop_and_flip(self, video: Tensor) -> Tensor:
        b, t, h, w, _ = video.shape
        out = torch.empty((b, 3, t, h, w), dtype=torch.float32, device=video.device)
        for i, (top, left, ch, cw, flip) in enumerate(self._boxes(b, h, w)):
            crop = video[i, :, top:top + ch, left:left + cw].permute(0, 3, 1, 2).float()  # (T, 3, ch, cw)
            if (ch, cw) != (h, w):
                crop = F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False, antialias=False)
            if flip:
                crop = crop.flip(-1)
            out[i].copy_(crop.transpose(0, 1))
        return out
