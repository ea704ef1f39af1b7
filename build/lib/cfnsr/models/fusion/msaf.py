"""MSAF (Su et al. 2020): two MSAF blocks between the backbones' stages, logits of both heads summed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import nn

from cfnsr.models.backbones.base import Backbone
from cfnsr.models.fusion.stagewise import StagewiseFusion
from cfnsr.models.layers.msaf_block import MSAFBlock


class MSAF(StagewiseFusion):
    """MSAFNet for RAVDESS (docs/paper-facts.md#msaf-network): 25,940,724 parameters with the paper backbones.

    The block channel at each fusion point is the smaller modality's channels // ``block_channel_divisor``,
    which gives the paper's 16 (video 1024, audio 32) and 32 (2048, 64), and scales to other backbones.
    The video stem keeps its ReLU unless the backbone sets ``stem_relu: false`` (the reference omits it).

    Args:
        fuse_after: see StagewiseFusion.
        block_channel_divisor, reduction, block_dropout, lowest_atten, double_dropout_mask: see MSAFBlock.
    """

    def __init__(self, video: Backbone, audio: Backbone, num_classes: int, *,
                 fuse_after: Mapping[str, Sequence[str]], block_channel_divisor: int, reduction: int,
                 block_dropout: float, lowest_atten: float, double_dropout_mask: bool) -> None:
        super().__init__(video, audio, num_classes, fuse_after)
        self.blocks = nn.ModuleList(
            MSAFBlock((cv, ca), min(cv, ca) // block_channel_divisor, reduction, block_dropout,
                      lowest_atten, double_dropout_mask)
            for cv, ca in self.fusion_channels
        )
