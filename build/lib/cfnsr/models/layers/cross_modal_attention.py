"""CFN-SR's cross-modal block: an audio-conditioned spatial attention map reweights the video features."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class CrossModalAttention(nn.Module):
    """x (B, C, S, H, W) video features, y (B, d) audio summary -> reweighted x, same shape (docs/paper-facts.md#cfn-sr-as-run).

        q   = tanh(channel_affine(x) + y_affine(y))     (B, S, H, W, k), y broadcast over positions
        map = softmax over the H*W positions of attn_weight_affine(q), separately per slice s  (B, S, H, W)
        out = x * (1 + map)     (residual) or x * map

    Each sample gets its own map. Layer names are the reference's.

    Args:
        video_channels: C.
        audio_dim: d.
        k: width of the joint space.
        residual: keep the residual ``x +``.
        batch_sum_attention: reproduce the reference code's bug of summing the maps over the batch,
            which makes every sample's output depend on the rest of its batch.
    """

    def __init__(self, video_channels: int, audio_dim: int, k: int, residual: bool = True,
                 batch_sum_attention: bool = False) -> None:
        super().__init__()
        self.channel_affine = nn.Linear(video_channels, k)
        self.y_affine = nn.Linear(audio_dim, k, bias=False)
        self.attn_weight_affine = nn.Linear(k, 1)
        self.residual = residual
        self.batch_sum_attention = batch_sum_attention

    def attention_map(self, x: Tensor, y: Tensor) -> Tensor:
        """x: (B, C, S, H, W), y: (B, d) -> (B, S, H, W); every (b, s) slice sums to 1."""
        q = torch.tanh(self.channel_affine(x.movedim(1, -1)) + self.y_affine(y)[:, None, None, None])
        scores = self.attn_weight_affine(q).squeeze(-1)
        return scores.flatten(2).softmax(dim=-1).view_as(scores)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """x: (B, C, S, H, W), y: (B, d) -> (B, C, S, H, W)."""
        attention = self.attention_map(x, y)
        if self.batch_sum_attention:
            attention = attention.sum(dim=0, keepdim=True)
        attention = attention[:, None]  # broadcast over channels
        return x * (1 + attention) if self.residual else x * attention
