"""The 1D CNN on MFCCs used by MSAF and CFN-SR (docs/paper-facts.md#audio-backbone): 34,024 parameters with an 8-class head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from cfnsr.models.backbones.base import Backbone


class MFCCCNN(Backbone):
    """Three Conv1d blocks over time on (B, n_mfcc, L) MFCCs, stages ``conv1, conv2, conv3``.

    Shapes for the paper input (B, 13, 212):
        conv1: Conv1d(13->32, k7, p2) -> ReLU -> bn1                          (B, 32, 210)
        conv2: Conv1d(32->32, k7, p2) -> ReLU                                 (B, 32, 208)
        conv3: pool -> bn2 -> dropout1 -> Conv1d(32->64, k5, p2) -> ReLU -> bn3  (B, 64, 26)
        pool:  flatten -> dropout2                                            (B, 1664)
        fc1:   Linear(1664 -> num_classes)

    ReLU comes before BN, as in the reference ``forward``. The reference's MaxPool1d(8) becomes
    AdaptiveMaxPool1d(pool_length): the windows are identical at length 208 -> 26, and other MFCC
    lengths no longer break the head's input size.

    Args:
        num_classes: classes of the unimodal head ``fc1``.
        n_mfcc: input coefficients.
        channels: output channels of conv1, conv2, conv3.
        kernel_sizes: kernel sizes of conv1, conv2, conv3 (all padded by ``padding``).
        pool_length: time steps after the max-pool.
        dropout1, dropout2: dropout before conv3 and on the flattened features.
    """

    stage_names: ClassVar[tuple[str, ...]] = ("conv1", "conv2", "conv3")
    head_name: ClassVar[str] = "fc1"

    def __init__(
        self,
        num_classes: int,
        *,
        n_mfcc: int,
        channels: Sequence[int],
        kernel_sizes: Sequence[int],
        padding: int,
        pool_length: int,
        dropout1: float,
        dropout2: float,
    ) -> None:
        super().__init__()
        c1, c2, c3 = channels
        k1, k2, k3 = kernel_sizes
        self.conv1 = nn.Conv1d(n_mfcc, c1, k1, padding=padding)
        self.bn1 = nn.BatchNorm1d(c1)
        self.conv2 = nn.Conv1d(c1, c2, k2, padding=padding)
        self.pool_time = nn.AdaptiveMaxPool1d(pool_length)
        self.bn2 = nn.BatchNorm1d(c2)
        self.dropout1 = nn.Dropout(dropout1)
        self.conv3 = nn.Conv1d(c2, c3, k3, padding=padding)
        self.bn3 = nn.BatchNorm1d(c3)
        self.dropout2 = nn.Dropout(dropout2)
        self.stage_channels = [c1, c2, c3]
        self.feature_dim = c3 * pool_length
        self.fc1 = nn.Linear(self.feature_dim, num_classes)

    def forward_stage(self, name: str, x: Tensor) -> Tensor:
        """Run the stage ``name``; see the class docstring for the shapes."""
        match name:
            case "conv1":
                return self.bn1(F.relu(self.conv1(x)))
            case "conv2":
                return F.relu(self.conv2(x))
            case "conv3":
                x = self.dropout1(self.bn2(self.pool_time(x)))
                return self.bn3(F.relu(self.conv3(x)))
            case _:
                raise KeyError(f"unknown stage {name!r}; expected one of {self.stage_names}")

    def pool(self, x: Tensor) -> Tensor:
        """(B, C, pool_length) -> (B, C * pool_length): the time steps are kept, not averaged."""
        return self.dropout2(torch.flatten(x, 1))
