"""Count sketch and compact bilinear pooling (Charikar et al. 2002; Gao et al. 2016; Fukui et al. 2016)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class CountSketch(nn.Module):
    """Project (B, n) -> (B, d): input i is added, with a random sign s_i, to output bucket h_i.

    h and s are drawn once from ``seed`` and stored as buffers: they are part of the model's
    definition (saved in checkpoints) but are not learned and not counted as parameters.
    """

    def __init__(self, in_dim: int, out_dim: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        # Drawn on the CPU for reproducibility, then moved to whatever device the model is built on.
        device = torch.get_default_device()
        self.out_dim = out_dim
        self.register_buffer("index", torch.randint(out_dim, (in_dim,), generator=g).to(device))
        self.register_buffer("sign", (torch.randint(2, (in_dim,), generator=g) * 2 - 1).float().to(device))

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, n) -> (B, d)."""
        out = x.new_zeros(x.shape[0], self.out_dim)
        return out.index_add(1, self.index, x * self.sign)


def circular_convolution(a: Tensor, b: Tensor) -> Tensor:
    """(B, d), (B, d) -> (B, d): sum_k a[k] b[(j - k) mod d], computed in the frequency domain.

    Applied to two count sketches it gives the count sketch of their outer product, without ever
    forming the (B, n_a * n_b) outer product.
    """
    d = a.shape[-1]
    return torch.fft.irfft(torch.fft.rfft(a) * torch.fft.rfft(b), n=d)
