"""MMTM fusion (Joze et al. 2020) at MSAF's two fusion points, logits of both heads summed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import nn

from cfnsr.models.backbones.base import Backbone
from cfnsr.models.fusion.stagewise import StagewiseFusion
from cfnsr.models.layers.mmtm_block import MMTM


class MMTMFusion(StagewiseFusion):
    """One MMTM after video layer3 / audio conv2 and one after layer4 / conv3 (docs/paper-facts.md#mmtm).

    With the paper backbones and ratio 4: 25,916,080 + 1,116,720 + 4,463,712 = 31,496,512 parameters.
    The table's 31.97M matches only if a concat head Linear(3712, 128) + Linear(128, 8) is added as
    well, which is speculative, so the heads' logits are summed as in MSAF instead.

    Args:
        fuse_after: see StagewiseFusion.
        ratio: see MMTM.
    """

    def __init__(self, video: Backbone, audio: Backbone, num_classes: int, *,
                 fuse_after: Mapping[str, Sequence[str]], ratio: float) -> None:
        super().__init__(video, audio, num_classes, fuse_after)
        self.blocks = nn.ModuleList(MMTM(cv, ca, ratio) for cv, ca in self.fusion_channels)
