"""Model-level fusion between backbone stages, with the two unimodal heads' logits summed (MSAF, MMTM)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from cfnsr.models.backbones.base import Backbone
from cfnsr.models.fusion.base import FusionModel, FusionOutput, stage_segments


class StagewiseFusion(FusionModel):
    """Walk both backbones in step; after each pair of fusion points a block exchanges information.

        video: stem..layer3 ─┐             ┌─ layer4 ─┐             ┌─ pool -> head ─┐
                             ├─ blocks[0] ─┤          ├─ blocks[1] ─┤                + -> logits (B, K)
        audio: conv1..conv2 ─┘             └─ conv3  ─┘             └─ pool -> head ─┘

    Subclasses build ``self.blocks`` (one per fusion point, ``block(v, a) -> (v, a)`` keeping shapes)
    from ``self.fusion_channels``. Training uses cross-entropy on the summed logits (the default loss),
    as MSAF does.

    Args:
        fuse_after: stage names after which to fuse, {"video": [...], "audio": [...]}, equal lengths.
    """

    blocks: nn.ModuleList

    def __init__(self, video: Backbone, audio: Backbone, num_classes: int,
                 fuse_after: Mapping[str, Sequence[str]]) -> None:
        super().__init__(video, audio, num_classes)
        if len(fuse_after["video"]) != len(fuse_after["audio"]):
            raise ValueError(f"fuse_after needs as many video as audio points, got {dict(fuse_after)}")
        self.video_segments = stage_segments(video.stage_names, fuse_after["video"])
        self.audio_segments = stage_segments(audio.stage_names, fuse_after["audio"])
        # (video channels, audio channels) at each fusion point, for the subclass to size its blocks.
        self.fusion_channels = [(video.channels_of(v), audio.channels_of(a))
                                for v, a in zip(fuse_after["video"], fuse_after["audio"], strict=True)]

    def forward(self, video: Tensor, audio: Tensor) -> FusionOutput:
        """video: (B, 3, T, H, W), audio: (B, n_mfcc, L) -> summed logits (B, K) + each head's logits."""
        v, a = video, audio
        fused_segments = zip(self.blocks, self.video_segments[:-1], self.audio_segments[:-1], strict=True)
        for block, v_stages, a_stages in fused_segments:
            v, a = block(self.video.forward_stages(v, v_stages), self.audio.forward_stages(a, a_stages))
        v = self.video.forward_stages(v, self.video_segments[-1])
        a = self.audio.forward_stages(a, self.audio_segments[-1])
        streams = {"video": self.video.head(self.video.pool(v)), "audio": self.audio.head(self.audio.pool(a))}
        return FusionOutput(streams["video"] + streams["audio"], streams)
