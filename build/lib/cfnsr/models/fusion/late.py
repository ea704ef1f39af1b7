"""Late fusion: both unimodal networks keep their heads and only their class probabilities are combined."""

from __future__ import annotations

from torch import Tensor
from torch.nn import functional as F

from cfnsr.models.fusion.base import FusionModel, FusionOutput


class LateFusion(FusionModel):
    """Base of the late-fusion rules: no parameters beyond the two unimodal networks (25,916,080).

    Each stream is trained with its own cross-entropy and the loss is their sum, so each network
    keeps learning its unimodal task; only the prediction combines them (``combine``).
    """

    def forward(self, video: Tensor, audio: Tensor) -> FusionOutput:
        """video: (B, 3, T, H, W), audio: (B, n_mfcc, L) -> combined log-probabilities (B, K) + stream logits."""
        streams = {"video": self.video(video), "audio": self.audio(audio)}
        return FusionOutput(self.combine(streams), streams)

    def combine(self, streams: dict[str, Tensor]) -> Tensor:
        """Per-stream logits (B, K) -> log of the combined class probabilities (B, K)."""
        raise NotImplementedError

    def loss(self, output: FusionOutput, target: Tensor) -> Tensor:
        """Sum over streams of each stream's cross-entropy."""
        return sum(F.cross_entropy(logits, target) for logits in output.streams.values())
