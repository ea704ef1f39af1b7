"""Batch-level video augmentation and normalisation, run on the device after the batch is transferred.

The public code drew a new random crop and flip for each of the 30 frames of a clip, which makes the face jump
around in time; here one crop/flip is drawn per clip and applied to all its frames, in one ``grid_sample`` call for
the whole batch.
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
    """

    def __init__(
        self,
        scale: Sequence[float] = (0.8, 1.0),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
        flip: float = 0.5,
        mean: Sequence[float] = (0.485, 0.456, 0.406),
        std: Sequence[float] = (0.229, 0.224, 0.225),
    ) -> None:
        super().__init__()
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"augment scale {tuple(scale)} must satisfy 0 < min <= max <= 1")
        self.scale = (float(scale[0]), float(scale[1]))
        self.log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        self.flip = float(flip)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    def forward(self, video: Tensor) -> Tensor:
        """video: uint8 (B, T, H, W, 3) -> float (B, 3, T, H, W)."""
        x = video.permute(0, 4, 1, 2, 3).float().div_(255.0)
        if self.training:
            x = self._crop_and_flip(x)
        mean = x.new_tensor(self.mean).view(1, 3, 1, 1, 1)
        std = x.new_tensor(self.std).view(1, 3, 1, 1, 1)
        return (x - mean) / std

    def _crop_and_flip(self, x: Tensor) -> Tensor:
        b, c, t, h, w = x.shape
        device = x.device
        area = torch.empty(b, device=device).uniform_(*self.scale)
        aspect = torch.exp(torch.empty(b, device=device).uniform_(*self.log_ratio))
        # Crop width/height as fractions of the frame; clamping keeps the box inside when the ratio is extreme.
        cw = torch.sqrt(area * aspect).clamp(max=1.0)
        ch = torch.sqrt(area / aspect).clamp(max=1.0)
        cx = (torch.rand(b, device=device) * 2 - 1) * (1 - cw)
        cy = (torch.rand(b, device=device) * 2 - 1) * (1 - ch)
        sign = torch.where(torch.rand(b, device=device) < self.flip, -1.0, 1.0)
        theta = torch.zeros(b, 2, 3, device=device)
        theta[:, 0, 0] = cw * sign
        theta[:, 0, 2] = cx
        theta[:, 1, 1] = ch
        theta[:, 1, 2] = cy
        frames = x.reshape(b, c * t, h, w)  # frames stacked as channels: one grid per clip
        grid = F.affine_grid(theta, [b, c * t, h, w], align_corners=False)
        out = F.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return out.view(b, c, t, h, w)
