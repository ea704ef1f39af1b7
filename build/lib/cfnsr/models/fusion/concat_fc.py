"""Concat + FC (Ortega et al. 2019): an MLP on the concatenated pooled features."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cfnsr.models.backbones.base import Backbone
from cfnsr.models.fusion.early import EarlyFusion


class ConcatFC(EarlyFusion):
    """[video (B, 2048) ; audio (B, 1664)] -> Linear(3712, hidden) -> ReLU -> Linear(hidden, K).

    With hidden 256 and the unimodal heads kept this is hypothesis H1 of docs/paper-facts.md#concat--fc, the only
    single-hidden-layer configuration that gives the table's 26.87M (26,868,664 parameters). ReLU
    between the layers is assumed; the paper's activation and dropout are unknown.

    Args:
        hidden: width of the hidden layer.
        keep_unimodal_heads: see EarlyFusion.
    """

    def __init__(self, video: Backbone, audio: Backbone, num_classes: int, *, hidden: int,
                 keep_unimodal_heads: bool) -> None:
        super().__init__(video, audio, num_classes, keep_unimodal_heads)
        self.mlp = nn.Sequential(
            nn.Linear(video.feature_dim + audio.feature_dim, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def fuse(self, video: Tensor, audio: Tensor) -> Tensor:
        """video (B, D_v), audio (B, D_a) -> logits (B, K)."""
        return self.mlp(torch.cat([video, audio], dim=1))
