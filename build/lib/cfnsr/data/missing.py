"""What a model receives for a missing modality: the same for every fusion strategy, in evaluation and predict.

A removed modality is a tensor of zeros **after normalisation**: for video, every pixel at the dataset mean
(normalised value 0); for audio, an all-zero MFCC matrix. No fusion strategy gets a special path, so robustness
numbers compare methods on identical inputs. (Training-time modality dropout, ``augment.modality_dropout``, uses the
same zeros.)
"""

from __future__ import annotations

from torch import Tensor

MODALITIES = ("video", "audio")


def remove_modality(video: Tensor, audio: Tensor, which: str) -> tuple[Tensor, Tensor]:
    """video: normalised float (B, 3, T, H, W); audio: float (B, n_mfcc, L). Returns both with ``which`` zeroed
    (new tensors; the inputs are not modified)."""
    if which not in MODALITIES:
        raise ValueError(f"unknown modality {which!r}: expected one of {MODALITIES}")
    if which == "video":
        return video.new_zeros(video.shape), audio
    return video, audio.new_zeros(audio.shape)


def remove_per_clip(video: Tensor, audio: Tensor, drop_video: Tensor, drop_audio: Tensor) -> tuple[Tensor, Tensor]:
    """Per-clip removal: ``drop_video``/``drop_audio`` bool (B,) mark the clips whose video/audio is zeroed."""
    keep_v = (~drop_video).to(video.dtype).view(-1, *([1] * (video.dim() - 1)))
    keep_a = (~drop_audio).to(audio.dtype).view(-1, *([1] * (audio.dim() - 1)))
    return video * keep_v, audio * keep_a
