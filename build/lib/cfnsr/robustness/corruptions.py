"""The corruptions of the robustness suite, as pure functions of their inputs (and, for random ones, of a numpy
``Generator`` the caller seeds per (corruption, level, clip), see ``clip_rng``).

Where each one acts (docs/robustness.md):

* audio, on the **waveform** before the MFCC (the cached window, ``cfnsr.data.cache.load_audio``): white Gaussian
  noise at a signal-to-noise ratio (``add_white_noise``), a delay with zero fill (``shift_audio``);
* video, on the uint8 face crops (T, H, W, 3) before normalisation: Gaussian pixel noise (``pixel_noise``), Gaussian
  blur (``gaussian_blur``), dropped frames (``drop_frames``);
* video, on the **normalised** clip (B, 3, T, H, W): occlusion of the lower or upper half of the crop (``occlude``):
  its rows are set to the dataset mean colour, i.e. exactly 0 after normalisation;
* removal of a modality is not here: it is ``cfnsr.data.missing`` (zeros after normalisation, for every fusion).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from torch import Tensor

AUDIO, VIDEO, BOTH = "audio", "video", "both"
OCCLUSION_PARTS = ("lower", "upper")


# ---------------------------------------------------------------------------------------------------- the catalogue

def _any_finite(level: float) -> str | None:
    return None if math.isfinite(level) else "must be a finite number"


def _non_negative(level: float) -> str | None:
    return None if math.isfinite(level) and level >= 0 else "must be >= 0"


def _positive(level: float) -> str | None:
    return None if math.isfinite(level) and level > 0 else "must be > 0"


def _fraction(level: float) -> str | None:
    return None if 0 <= level <= 1 else "must be in [0, 1]"


@dataclass(frozen=True)
class Corruption:
    """One kind of corruption: which modality it touches, what its level means (``unit``; None: it has no levels)."""

    name: str
    modality: str
    unit: str | None
    description: str
    check_level: Callable[[float], str | None] | None = None

    @property
    def has_levels(self) -> bool:
        return self.unit is not None


CORRUPTIONS: dict[str, Corruption] = {c.name: c for c in (
    Corruption("audio_noise", AUDIO, "SNR (dB)",
               "white Gaussian noise added to the waveform at this signal-to-noise ratio, before the MFCC",
               _any_finite),
    Corruption("audio_shift", AUDIO, "delay (s)",
               "the waveform delayed by this many seconds inside its window, the start filled with zeros",
               _non_negative),
    Corruption("audio_removed", AUDIO, None, "the audio removed: an all-zero MFCC (cfnsr.data.missing)"),
    Corruption("video_noise", VIDEO, "pixel noise sigma (uint8)",
               "Gaussian noise of this standard deviation added to every pixel (0..255 scale), rounded and clipped",
               _non_negative),
    Corruption("video_blur", VIDEO, "blur sigma (px)",
               "every frame blurred by a Gaussian kernel of this standard deviation in pixels of the face crop",
               _positive),
    Corruption("video_drop_frames", VIDEO, "fraction of frames dropped",
               "this fraction of the frames dropped (never the first); a dropped frame holds the last kept frame",
               _fraction),
    Corruption("video_occlude_lower", VIDEO, None,
               "the lower half of the face crop (rows H//2..H-1) set to the dataset mean colour (0 after "
               "normalisation)"),
    Corruption("video_occlude_upper", VIDEO, None,
               "the upper half of the face crop (rows 0..H//2-1) set to the dataset mean colour (0 after "
               "normalisation)"),
    Corruption("video_removed", VIDEO, None, "the video removed: all zeros after normalisation (cfnsr.data.missing)"),
    Corruption("one_removed", BOTH, None,
               "per clip, the video or the audio removed (50/50, drawn per clip from the suite's seed)"),
)}


# ---------------------------------------------------------------------------------------------------- random draws

def level_key(level: float | int | None) -> str:
    """A level as text that does not depend on how it was written (20, 20.0 -> "20.0"; None -> "none")."""
    return "none" if level is None else repr(float(level))


def clip_rng(seed: int, corruption: str, level: float | int | None, stem: str) -> np.random.Generator:
    """The generator of every random draw for one clip under one (corruption, level), from the suite's seed only.

    It does not depend on the batch, the order of clips, the loader workers or the model, so every method evaluated
    with the same seed sees the same corrupted clips.
    """
    text = f"cfnsr-robustness|{int(seed)}|{corruption}|{level_key(level)}|{stem}"
    digest = hashlib.sha256(text.encode()).digest()
    return np.random.default_rng(np.frombuffer(digest, dtype=np.uint32))


# ---------------------------------------------------------------------------------------------------- audio

def signal_power(x: np.ndarray) -> float:
    """Mean square of a waveform (float64)."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.mean(x * x)) if x.size else 0.0


def measured_snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    """10 log10(P(clean) / P(noisy - clean)), the noise being what was added."""
    noise = np.asarray(noisy, dtype=np.float64) - np.asarray(clean, dtype=np.float64)
    return 10.0 * math.log10(signal_power(clean) / signal_power(noise))


def add_white_noise(window: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """window float (N,) + white Gaussian noise scaled so that P(window) / P(noise) is exactly ``snr_db`` -> float32.

    The power is the mean square over the whole window (silences included); the drawn noise is rescaled to its exact
    target power, so the SNR is the requested one up to float32 rounding. A silent window (power 0) stays silent:
    its SNR is undefined. Nothing is clipped (the MFCC is computed from the float samples).
    """
    x = np.asarray(window, dtype=np.float64)
    power = signal_power(x)
    if power == 0.0:
        return x.astype(np.float32)
    noise = rng.standard_normal(x.shape[0])
    noise *= math.sqrt(power / 10.0 ** (snr_db / 10.0) / signal_power(noise))
    return (x + noise).astype(np.float32)


def shift_audio(window: np.ndarray, seconds: float, sample_rate: int) -> np.ndarray:
    """Delay the waveform by ``round(seconds * sample_rate)`` samples inside its window: out[s:] = window[:N-s],
    out[:s] = 0 (the cache keeps only the window, so the start is zero-filled). Same length, float32."""
    x = np.asarray(window, dtype=np.float32)
    shift = int(round(seconds * sample_rate))
    out = np.zeros_like(x)
    if shift < x.shape[0]:
        out[shift:] = x[:x.shape[0] - shift]
    return out


# ---------------------------------------------------------------------------------------------------- video (uint8)

def pixel_noise(frames: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """uint8 (T, H, W, 3) + N(0, sigma^2) per pixel and channel (0..255 scale), rounded, clipped to 0..255."""
    noise = rng.standard_normal(frames.shape, dtype=np.float32) * np.float32(sigma)
    return np.clip(np.rint(frames.astype(np.float32) + noise), 0, 255).astype(np.uint8)


def blur_kernel_size(sigma: float) -> int:
    """Odd kernel side covering +-3 sigma: 2 * ceil(3 sigma) + 1."""
    return 2 * math.ceil(3 * sigma) + 1


def gaussian_blur(frames: np.ndarray, sigma: float) -> np.ndarray:
    """Each frame of uint8 (T, H, W, 3) blurred with a Gaussian kernel of ``sigma`` pixels (side
    ``blur_kernel_size``, borders reflected), uint8 out. Deterministic."""
    import cv2

    k = blur_kernel_size(sigma)
    out = np.empty_like(frames)
    for t in range(frames.shape[0]):
        out[t] = cv2.GaussianBlur(np.ascontiguousarray(frames[t]), (k, k), sigmaX=sigma, sigmaY=sigma,
                                  borderType=cv2.BORDER_REFLECT_101)
    return out


def dropped_frame_indices(n_frames: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of the frames to drop: ``min(T - 1, round(fraction * T))`` of frames 1..T-1, chosen without
    replacement (the first frame is always kept, so every dropped frame has a kept frame before it)."""
    k = min(n_frames - 1, int(round(fraction * n_frames)))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.sort(rng.choice(np.arange(1, n_frames), size=k, replace=False))


def held_frame_sources(n_frames: int, dropped: np.ndarray) -> np.ndarray:
    """For every frame, the index of the frame shown: itself when kept, else the last kept frame before it."""
    kept = np.ones(n_frames, dtype=bool)
    kept[np.asarray(dropped, dtype=np.int64)] = False
    if not kept[0]:
        raise ValueError("the first frame cannot be dropped: no earlier frame to hold")
    return np.maximum.accumulate(np.where(kept, np.arange(n_frames), 0))


def drop_frames(frames: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """uint8 (T, H, W, 3) with a ``fraction`` of the frames dropped, each replaced by the last kept frame."""
    dropped = dropped_frame_indices(frames.shape[0], fraction, rng)
    return np.ascontiguousarray(frames[held_frame_sources(frames.shape[0], dropped)])


# ---------------------------------------------------------------------------------------------------- video (normalised)

def occluded_rows(height: int, part: str) -> slice:
    """The rows an occlusion covers: ``lower`` = H//2 .. H-1, ``upper`` = 0 .. H//2-1 (odd H: the middle row is in
    the lower half)."""
    if part == "lower":
        return slice(height // 2, height)
    if part == "upper":
        return slice(0, height // 2)
    raise ValueError(f"unknown occlusion {part!r}: expected one of {OCCLUSION_PARTS}")


def occlude(video: Tensor, part: str) -> Tensor:
    """Normalised video float (B, 3, T, H, W) -> a copy whose ``part`` half of every frame is 0, which is the dataset
    mean colour after normalisation (an occluder painted in the mean colour, the same value the missing-modality
    policy uses for a removed video)."""
    out = video.clone()
    out[..., occluded_rows(video.shape[-2], part), :] = 0.0
    return out
