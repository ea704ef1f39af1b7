"""The unimodal baselines: one backbone with its own head (the first two rows of the comparison table)."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from cfnsr.models.backbones.base import Backbone
from cfnsr.models.fusion.base import FusionModel, FusionOutput


class VideoOnly(FusionModel):
    """3D ResNeXt alone; the audio input is ignored. Its checkpoint initialises the fused video backbones."""

    modalities: ClassVar[tuple[str, ...]] = ("video",)

    def __init__(self, video: Backbone, audio: Backbone | None, num_classes: int) -> None:
        super().__init__(video, None, num_classes)

    def forward(self, video: Tensor, audio: Tensor | None = None) -> FusionOutput:
        """video: (B, 3, T, H, W) -> logits (B, K)."""
        return FusionOutput(self.video(video))


class AudioOnly(FusionModel):
    """MFCC CNN alone; the video input is ignored. Its checkpoint initialises the fused audio backbones."""

    modalities: ClassVar[tuple[str, ...]] = ("audio",)

    def __init__(self, video: Backbone | None, audio: Backbone, num_classes: int) -> None:
        super().__init__(None, audio, num_classes)

    def forward(self, video: Tensor | None, audio: Tensor) -> FusionOutput:
        """audio: (B, n_mfcc, L) -> logits (B, K)."""
        return FusionOutput(self.audio(audio))
