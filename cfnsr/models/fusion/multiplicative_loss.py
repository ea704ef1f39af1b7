"""Multiplicative combination loss (Liu et al. 2018, "Learn to Combine Modalities in Multimodal Deep Learning"):
fusion=multiplicative_loss, the table's "Multiplicative" (formerly fusion=multiplicative)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from cfnsr.models.backbones.base import Backbone
from cfnsr.models.fusion.averaging import log_mean_probability
from cfnsr.models.fusion.base import FusionOutput
from cfnsr.models.fusion.late import LateFusion


class MultiplicativeLoss(LateFusion):
    """Late fusion whose loss lets a stream ignore the samples another stream already gets right.

    For M streams and true class y:

        L = - sum_i [ prod_{j != i} (1 - p_j^y) ]^(beta / (M - 1)) * log p_i^y

    i.e. for video and audio ``-(1 - p_a^y)^beta log p_v^y - (1 - p_v^y)^beta log p_a^y``, averaged
    over the batch. The weights are detached: they only rescale each stream's cross-entropy, so no
    stream is rewarded for making the other one worse. Prediction: the mean of the probabilities, as
    ``Averaging`` (``log_mean_probability``).

    Args:
        beta: the exponent of the down-weighting factor (0 gives the sum of cross-entropies).
    """

    def __init__(self, video: Backbone, audio: Backbone, num_classes: int, *, beta: float) -> None:
        super().__init__(video, audio, num_classes)
        self.beta = beta

    def combine(self, streams: dict[str, Tensor]) -> Tensor:
        """Per-stream logits (B, K) -> log of the mean probability (B, K)."""
        return log_mean_probability(streams)

    def loss(self, output: FusionOutput, target: Tensor) -> Tensor:
        """Stream logits (B, K) each, target (B,) -> scalar loss."""
        log_p = torch.stack([
            F.log_softmax(logits, dim=-1).gather(1, target[:, None]).squeeze(1)
            for logits in output.streams.values()
        ])  # (M, B): log p_i^y
        miss = 1 - log_p.detach().exp()  # (M, B): 1 - p_i^y
        m = len(miss)
        others = torch.stack([torch.cat([miss[:i], miss[i + 1:]]).prod(dim=0) for i in range(m)])
        weights = others ** (self.beta / (m - 1))
        return -(weights * log_p).sum(dim=0).mean()
