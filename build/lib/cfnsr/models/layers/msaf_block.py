"""The MSAF block (Su et al. 2020, "MSAF: Multimodal Split Attention Fusion"), docs/paper-facts.md#msaf-block."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


class MSAFBlock(nn.Module):
    """Split every modality's channels into blocks of c, reweight each block channel-wise, keep shapes.

    Inputs x_m: (B, C_m, *S_m), any trailing dims. With K blocks in all:
        split:     x_m -> (B, N_m, c, *S_m), N_m = ceil(C_m / c), zero-padding the channels
        dropout:   in training, whole blocks are zeroed per sample and survivors scaled by 1/(1-p)
        join:      u = sum_m GAP(sum_j x_{m,j}) (B, c) -> z = ReLU(BN(W_0 u)) (B, c/r)
        highlight: a = W z (B, K, c), softmax over the K blocks separately for every channel
        output:    y_{m,j} = a_{m,j} * x_{m,j}, back to (B, C_m, *S_m)

    The reference code's two bugs are fixed: its pad of ``C % c`` (now ``-C mod c``) and its mask
    applied twice. ``double_dropout_mask=True`` restores the latter (survivors scaled by 1/(1-p)^2).

    Args:
        in_channels: C_m of each modality.
        block_channel: c.
        reduction: r, so the join has c // r units.
        block_dropout: p, probability of dropping a block.
        lowest_atten: floor l of the attention, a <- l + a (1 - l).
        double_dropout_mask: reproduce the reference's twice-applied dropout mask.
    """

    def __init__(self, in_channels: Sequence[int], block_channel: int, reduction: int, block_dropout: float,
                 lowest_atten: float = 0.0, double_dropout_mask: bool = False) -> None:
        super().__init__()
        self.block_channel = block_channel
        self.num_blocks = [math.ceil(c / block_channel) for c in in_channels]
        self.block_dropout = block_dropout
        self.lowest_atten = lowest_atten
        self.double_dropout_mask = double_dropout_mask
        hidden = block_channel // reduction
        self.join = nn.Sequential(nn.Linear(block_channel, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True))
        # One Linear(hidden, c) per block, stacked into a single layer (same parameters, one matmul).
        self.highlight = nn.Linear(hidden, sum(self.num_blocks) * block_channel)

    def forward(self, *xs: Tensor) -> tuple[Tensor, ...]:
        """x_m: (B, C_m, *S_m) each -> same shapes."""
        blocks = [self._split(x, n) for x, n in zip(xs, self.num_blocks, strict=True)]
        mask = self._block_mask(xs[0].shape[0], xs[0].device)
        if mask is not None:
            blocks = [b * _expand(m, b) for b, m in zip(blocks, mask.split(self.num_blocks, dim=1), strict=True)]

        attention = self.attention(blocks)
        if mask is not None and self.double_dropout_mask:
            attention = attention * mask[:, :, None]

        per_modality = attention.split(self.num_blocks, dim=1)
        return tuple(
            (b * _expand(a, b)).flatten(1, 2)[:, : x.shape[1]]
            for x, b, a in zip(xs, blocks, per_modality, strict=True)
        )

    def attention(self, blocks: Sequence[Tensor]) -> Tensor:
        """Split blocks (B, N_m, c, *S_m) of every modality -> weights (B, K, c), a softmax over K per channel."""
        u = sum(b.sum(dim=1).flatten(2).mean(dim=-1) for b in blocks)  # (B, c)
        attention = self.highlight(self.join(u)).unflatten(1, (-1, self.block_channel)).softmax(dim=1)
        return self.lowest_atten + attention * (1 - self.lowest_atten)

    def _split(self, x: Tensor, num_blocks: int) -> Tensor:
        """(B, C, *S) -> (B, N, c, *S), zero-padding C up to N * c."""
        pad = num_blocks * self.block_channel - x.shape[1]
        if pad:
            x = torch.cat([x, x.new_zeros(x.shape[0], pad, *x.shape[2:])], dim=1)
        return x.unflatten(1, (num_blocks, self.block_channel))

    def _block_mask(self, batch: int, device: torch.device) -> Tensor | None:
        """(B, K) of 0 or 1/(1-p), drawn per sample and per block; None outside training."""
        if not self.training or self.block_dropout == 0:
            return None
        keep = 1 - self.block_dropout
        return torch.bernoulli(torch.full((batch, sum(self.num_blocks)), keep, device=device)) / keep


def _expand(weights: Tensor, like: Tensor) -> Tensor:
    """Append singleton dims to ``weights`` so it broadcasts against ``like``."""
    return weights[(...,) + (None,) * (like.dim() - weights.dim())]
