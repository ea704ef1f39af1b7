"""Probability-product late fusion (fusion=prob_product, the table's "Multiplication"; formerly fusion=multiplication):
the product of the streams' softmax probabilities."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from cfnsr.models.fusion.late import LateFusion


class ProbProduct(LateFusion):
    """Prediction log(softmax(l_v) * softmax(l_a)); training loss CE(l_v) + CE(l_a) (see LateFusion).

    The product is left unnormalised: the argmax, which is all the prediction needs, is the same.
    """

    def combine(self, streams: dict[str, Tensor]) -> Tensor:
        """Per-stream logits (B, K) -> summed log-probabilities (B, K)."""
        return torch.stack([F.log_softmax(logits, dim=-1) for logits in streams.values()]).sum(dim=0)
