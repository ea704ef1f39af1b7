"""The interface shared by every fusion strategy (and the two unimodal baselines).

A fusion model owns the backbones it needs as ``self.video`` / ``self.audio``, so a backbone's
state_dict keys inside a fusion model are its unimodal keys under ``video.`` / ``audio.``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn
from torch.nn import functional as F

from cfnsr.models.backbones.base import Backbone


@dataclass
class FusionOutput:
    """What every fusion model returns.

    logits: (B, K) class scores; their argmax is the prediction.
    streams: per-stream (B, K) logits, e.g. {"video": ..., "audio": ...}, for models that keep
        unimodal heads; None otherwise.
    """

    logits: Tensor
    streams: dict[str, Tensor] | None = None


class FusionModel(nn.Module):
    """Base class: holds the backbones, defines ``forward(video, audio)`` and ``loss``.

    Subclasses set ``modalities`` (the backbones they need) and implement ``forward``. What tables say about a
    fusion (stage, display name, order, the paper's numbers) lives in its YAML only (``cfnsr.models.fusion.registry``).

    Args:
        video: the video backbone, or None if ``"video"`` is not in ``modalities``.
        audio: the audio backbone, or None if ``"audio"`` is not in ``modalities``.
        num_classes: K.
    """

    modalities: ClassVar[tuple[str, ...]] = ("video", "audio")

    def __init__(self, video: Backbone | None, audio: Backbone | None, num_classes: int) -> None:
        super().__init__()
        given = {"video": video, "audio": audio}
        missing = [m for m in self.modalities if given[m] is None]
        if missing:
            raise ValueError(f"{type(self).__name__} needs the {missing} backbone(s)")
        for modality in self.modalities:
            setattr(self, modality, given[modality])
        self.num_classes = num_classes

    def forward(self, video: Tensor | None, audio: Tensor | None) -> FusionOutput:
        """video: (B, 3, T, H, W); audio: (B, n_mfcc, L). Either may be None if its modality is unused."""
        raise NotImplementedError

    def loss(self, output: FusionOutput, target: Tensor) -> Tensor:
        """Scalar training loss; default cross-entropy on ``output.logits`` (B, K) against target (B,)."""
        return F.cross_entropy(output.logits, target)


def stage_segments(stage_names: Sequence[str], fuse_after: Sequence[str]) -> list[tuple[str, ...]]:
    """Cut a backbone's stages into runs that end at each fusion point, plus the (maybe empty) rest.

    >>> stage_segments(["conv1", "conv2", "conv3"], ["conv2", "conv3"])
    [('conv1', 'conv2'), ('conv3',), ()]
    """
    stops = [stage_names.index(name) + 1 for name in fuse_after]
    if stops != sorted(set(stops)):
        raise ValueError(f"fusion points {list(fuse_after)} must be distinct and in stage order")
    starts = [0, *stops]
    ends = [*stops, len(stage_names)]
    return [tuple(stage_names[a:b]) for a, b in zip(starts, ends, strict=True)]
