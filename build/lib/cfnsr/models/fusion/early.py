"""Early fusion: pooled unimodal features are combined into one vector and classified by a new head."""

from __future__ import annotations

from torch import Tensor

from cfnsr.models.backbones.base import Backbone
from cfnsr.models.fusion.base import FusionModel, FusionOutput


class EarlyFusion(FusionModel):
    """Base of feature-level fusion: video (B, D_v) and audio (B, D_a) features -> ``fuse`` -> logits (B, K).

    Args:
        keep_unimodal_heads: keep the two unimodal classifiers, as if the model were built from the two
            full unimodal networks. The paper's parameter counts for these rows only match that way
            (docs/paper-facts.md#concat--fc). The fused loss never reaches the heads, so they are frozen (the
            optimiser and DDP then ignore them) and only report their logits in ``streams``.
    """

    def __init__(self, video: Backbone, audio: Backbone, num_classes: int, keep_unimodal_heads: bool) -> None:
        super().__init__(video, audio, num_classes)
        self.keep_unimodal_heads = keep_unimodal_heads
        for backbone in (self.video, self.audio):
            if keep_unimodal_heads:
                backbone.head.requires_grad_(False)
            else:
                backbone.remove_head()

    def forward(self, video: Tensor, audio: Tensor) -> FusionOutput:
        """video: (B, 3, T, H, W), audio: (B, n_mfcc, L) -> logits (B, K)."""
        v, a = self.video.features(video), self.audio.features(audio)
        streams = None
        if self.keep_unimodal_heads:
            # Detached inputs: these diagnostics must not pull the backbones' gradients.
            streams = {"video": self.video.head(v.detach()), "audio": self.audio.head(a.detach())}
        return FusionOutput(self.fuse(v, a), streams)

    def fuse(self, video: Tensor, audio: Tensor) -> Tensor:
        """video (B, D_v), audio (B, D_a) -> logits (B, K)."""
        raise NotImplementedError
