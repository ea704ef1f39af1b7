"""The interface every backbone offers to the fusion models.

A backbone is a chain of named stages followed by a pooling step and a linear head:

    x -> stage_names[0] -> ... -> stage_names[-1] -> pool -> (B, feature_dim) -> head -> (B, num_classes)

Fusion models walk the stages themselves (``forward_stages``) so that they can act between them,
then call ``pool`` and, if they keep it, ``head``. Stages are methods rather than a ModuleDict so the
state_dict keys stay exactly those of the unimodal network (and of the public checkpoints).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import ClassVar

from torch import Tensor, nn


class Backbone(nn.Module, ABC):
    """A unimodal network cut into named stages.

    Subclasses set ``stage_names`` and ``head_name`` (class level), fill ``stage_channels`` and
    ``feature_dim`` in ``__init__``, and implement ``forward_stage`` and ``pool``.
    """

    stage_names: ClassVar[tuple[str, ...]]
    head_name: ClassVar[str]  # attribute holding the unimodal classifier (its checkpoint key prefix)
    stage_channels: list[int]  # channels of each stage's output, aligned with stage_names
    feature_dim: int  # width of pool()'s output

    @property
    def head(self) -> nn.Linear | None:
        """The unimodal classifier ``Linear(feature_dim, num_classes)``, or None once removed."""
        return getattr(self, self.head_name)

    def remove_head(self) -> None:
        """Drop the unimodal classifier, for fusion models that never use it (it then holds no parameters)."""
        setattr(self, self.head_name, None)

    def channels_of(self, stage: str) -> int:
        """Output channels of the named stage."""
        return self.stage_channels[self.stage_names.index(stage)]

    @abstractmethod
    def forward_stage(self, name: str, x: Tensor) -> Tensor:
        """Run one stage on the output of the previous one."""

    @abstractmethod
    def pool(self, x: Tensor) -> Tensor:
        """Turn the last stage's output into a feature vector (B, feature_dim)."""

    def forward_stages(self, x: Tensor, names: Iterable[str]) -> Tensor:
        """Run consecutive stages in order."""
        for name in names:
            x = self.forward_stage(name, x)
        return x

    def features(self, x: Tensor) -> Tensor:
        """All stages then pooling: the backbone's input -> (B, feature_dim)."""
        return self.pool(self.forward_stages(x, self.stage_names))

    def forward(self, x: Tensor) -> Tensor:
        """Unimodal class scores (B, num_classes)."""
        if self.head is None:
            raise RuntimeError(f"{type(self).__name__} has no head; use features() instead")
        return self.head(self.features(x))
