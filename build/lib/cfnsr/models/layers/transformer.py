"""The MulT/fairseq-style pre-LN Transformer encoder that CFN-SR runs over the audio features (docs/paper-facts.md#cfn-sr-transformer)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def sinusoidal_positions(length: int, dim: int, device: torch.device | None = None) -> Tensor:
    """fairseq's sinusoidal table for positions 1..length: (length, dim), first half sin, second half cos.

    fairseq derives positions from non-padding tokens; CNN features are never padding, so they are 1..T.
    """
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=device) * -(math.log(10000.0) / max(half - 1, 1)))
    angles = torch.arange(1, length + 1, device=device)[:, None] * freqs[None]
    table = torch.cat([angles.sin(), angles.cos()], dim=1)
    return F.pad(table, (0, dim % 2))  # odd dims get a zero last column, as in fairseq


class SelfAttention(nn.Module):
    """Multi-head self-attention, (B, T, d) -> (B, T, d), optionally causal (step t sees steps <= t)."""

    def __init__(self, dim: int, num_heads: int, dropout: float, causal: bool) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.dropout = dropout
        self.causal = causal
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, d) -> (B, T, d)."""
        q, k, v = (t.unflatten(-1, (self.num_heads, -1)).transpose(1, 2) for t in self.qkv(x).chunk(3, dim=-1))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=self.causal)  # (B, heads, T, d / heads)
        return self.proj(y.transpose(1, 2).flatten(2))


class EncoderLayer(nn.Module):
    """Pre-LN block: x + drop(attn(LN(x))), then x + drop(fc2(drop(ReLU(fc1(LN(x))))))."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, attn_dropout: float, relu_dropout: float,
                 res_dropout: float, causal: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, num_heads, attn_dropout, causal)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.relu_dropout = nn.Dropout(relu_dropout)
        self.res_dropout = nn.Dropout(res_dropout)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, d) -> (B, T, d)."""
        x = x + self.res_dropout(self.attn(self.norm1(x)))
        return x + self.res_dropout(self.fc2(self.relu_dropout(F.relu(self.fc1(self.norm2(x))))))


class TransformerEncoder(nn.Module):
    """Scale by sqrt(d), add sinusoidal positions, dropout, pre-LN layers, final LayerNorm.

    With d = 64, 8 heads, FFN 256 and 5 layers: 250,048 parameters, as in CFN-SR.
    """

    def __init__(self, dim: int, num_heads: int, num_layers: int, ffn_dim: int, attn_dropout: float,
                 relu_dropout: float, res_dropout: float, embed_dropout: float, causal: bool) -> None:
        super().__init__()
        self.dim = dim
        self.embed_dropout = nn.Dropout(embed_dropout)
        self.layers = nn.ModuleList(
            EncoderLayer(dim, num_heads, ffn_dim, attn_dropout, relu_dropout, res_dropout, causal)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(dim)
        self._init_weights()

    def _init_weights(self) -> None:
        # MulT's init: xavier-uniform projections, zero biases (LayerNorms keep 1 / 0).
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, d) -> (B, T, d)."""
        x = math.sqrt(self.dim) * x + sinusoidal_positions(x.shape[1], self.dim, x.device)
        x = self.embed_dropout(x)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)
