"""Averaging late fusion: the mean of the streams' softmax probabilities."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

from cfnsr.models.fusion.late import LateFusion


def log_mean_probability(streams: dict[str, Tensor]) -> Tensor:
    """Per-stream logits (B, K) -> log of the mean of the streams' softmax probabilities (B, K).

    The prediction rule of ``Averaging`` and of ``MultiplicativeLoss`` (which differs from it in the loss only).
    """
    log_probs = torch.stack([F.log_softmax(logits, dim=-1) for logits in streams.values()])
    # logsumexp avoids the underflow of log(mean(exp(.))) on confident streams.
    return torch.logsumexp(log_probs, dim=0) - math.log(len(streams))


class Averaging(LateFusion):
    """Prediction log((softmax(l_v) + softmax(l_a)) / 2); training loss CE(l_v) + CE(l_a) (see LateFusion)."""

    def combine(self, streams: dict[str, Tensor]) -> Tensor:
        """Per-stream logits (B, K) -> log of the mean probability (B, K)."""
        return log_mean_probability(streams)
