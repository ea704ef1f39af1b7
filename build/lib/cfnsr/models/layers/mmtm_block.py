"""The Multimodal Transfer Module (Joze et al. 2020, "MMTM: Multimodal Transfer Module for CNN Fusion")."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class MMTM(nn.Module):
    """Squeeze both modalities, excite each one's channels from the joint squeeze.

        s = [GAP(a); GAP(b)]            (B, C_a + C_b)
        z = ReLU(W s + w)               (B, hidden), hidden = int(2 (C_a + C_b) / ratio)
        a' = 2 sigmoid(W_a z + w_a) * a (gates broadcast over a's trailing dims), same for b

    The hidden size follows the official code (ratio 4 -> (C_a + C_b) / 2), not the paper's text.

    Args:
        channels_a, channels_b: C_a and C_b.
        ratio: the official code's ``ratio``.
    """

    def __init__(self, channels_a: int, channels_b: int, ratio: float) -> None:
        super().__init__()
        hidden = int(2 * (channels_a + channels_b) / ratio)
        self.squeeze = nn.Linear(channels_a + channels_b, hidden)
        self.excite_a = nn.Linear(hidden, channels_a)
        self.excite_b = nn.Linear(hidden, channels_b)

    def forward(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        """a: (B, C_a, *S_a), b: (B, C_b, *S_b) -> same shapes."""
        s = torch.cat([a.flatten(2).mean(dim=-1), b.flatten(2).mean(dim=-1)], dim=1)
        z = torch.relu(self.squeeze(s))
        return a * _gate(self.excite_a(z), a), b * _gate(self.excite_b(z), b)


def _gate(excitation: Tensor, x: Tensor) -> Tensor:
    """(B, C) excitation -> 2 sigmoid(.), shaped to broadcast over x (B, C, *S)."""
    return 2 * torch.sigmoid(excitation)[(...,) + (None,) * (x.dim() - 2)]
