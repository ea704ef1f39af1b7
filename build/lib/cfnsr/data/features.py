"""Audio features: the paper's MFCC on a fixed window of the clip's audio.

Paper (§2.2): ``librosa.load(wav, sr=44100, offset=0.5, duration=2.45)`` then ``librosa.feature.mfcc(y, sr=44100,
n_mfcc=13)`` with librosa's defaults n_fft=2048, hop_length=512, center=True -> (13, 1 + 108045 // 512) = (13, 212).
Every parameter is passed explicitly so that a librosa upgrade changing a default cannot change the cache silently.
"""

from __future__ import annotations

import numpy as np

# What the first MFCC call imports (about 2 s): a process pool preloads these once in its fork server.
HEAVY_MODULES = ("librosa.core.spectrum", "librosa.filters", "librosa.feature.spectral")


class AudioTooShortError(ValueError):
    """The audio track ends before ``offset + duration``."""


def window_length(sample_rate: int, duration: float) -> int:
    """Samples in the window: ``int(duration * sr)`` as librosa computes it (2.45 s at 44.1 kHz -> 108045)."""
    return int(duration * sample_rate)


def mfcc_frames(n_samples: int, hop_length: int) -> int:
    """MFCC frames librosa returns with center=True: ``1 + n_samples // hop_length``."""
    return 1 + n_samples // hop_length


def audio_window(audio: np.ndarray, sample_rate: int, offset: float, duration: float) -> np.ndarray:
    """Cut ``audio`` float32 (N,) to the window [offset, offset + duration) -> float32 (int(duration*sr),).

    Raises ``AudioTooShortError`` when the window does not fit: a shorter input would give fewer MFCC frames than
    the audio network's fixed-size head expects, so it is refused here rather than padded.
    """
    start = int(offset * sample_rate)
    length = window_length(sample_rate, duration)
    if start < 0 or length <= 0:
        raise ValueError(f"invalid audio window offset={offset} duration={duration}")
    if len(audio) < start + length:
        raise AudioTooShortError(
            f"audio is {len(audio) / sample_rate:.3f} s long but the window needs offset {offset} s + duration "
            f"{duration} s = {offset + duration:.3f} s")
    return np.ascontiguousarray(audio[start:start + length], dtype=np.float32)


def compute_mfcc(window: np.ndarray, sample_rate: int, n_mfcc: int, n_fft: int, hop_length: int) -> np.ndarray:
    """MFCC of a mono window float32 (N,) -> float32 (n_mfcc, 1 + N // hop_length), no normalisation (as the paper)."""
    import librosa  # imported lazily: it costs about a second and only the feature step needs it

    mfcc = librosa.feature.mfcc(y=window, sr=sample_rate, n_mfcc=n_mfcc, n_fft=n_fft, hop_length=hop_length)
    return mfcc.astype(np.float32, copy=False)


def clip_mfcc(audio: np.ndarray, sample_rate: int, offset: float, duration: float, n_mfcc: int, n_fft: int,
              hop_length: int) -> np.ndarray:
    """Window + MFCC in one call: audio float32 (N,) -> float32 (n_mfcc, 1 + int(duration*sr) // hop_length)."""
    window = audio_window(audio, sample_rate, offset, duration)
    return compute_mfcc(window, sample_rate, n_mfcc, n_fft, hop_length)


# The cache keeps the MFCC's audio window as int16: sample * AUDIO_INT16_SCALE, rounded and clipped (meta.json
# records the scale as ``audio_scale``). Quantisation noise is about 96 dB below full scale.
AUDIO_INT16_SCALE = 32767


def quantize_audio(window: np.ndarray, scale: int = AUDIO_INT16_SCALE) -> tuple[np.ndarray, int]:
    """float (N,) in [-1, 1] -> (int16 (N,) = round(window * scale) clipped to [-scale, scale], samples clipped).

    Raises ``ValueError`` for non-finite samples (they have no int16 value; their MFCC would be non-finite too).
    """
    x = np.asarray(window, dtype=np.float64)
    if not np.isfinite(x).all():
        raise ValueError(f"the audio window holds {int((~np.isfinite(x)).sum())} non-finite sample(s)")
    scaled = np.rint(x * scale)
    clipped = int(np.count_nonzero(np.abs(scaled) > scale))
    return np.clip(scaled, -scale, scale).astype(np.int16), clipped


def dequantize_audio(samples: np.ndarray, scale: float = AUDIO_INT16_SCALE) -> np.ndarray:
    """int16 (N,) -> float32 (N,) = samples / scale (the inverse of ``quantize_audio`` up to rounding)."""
    return np.asarray(samples, dtype=np.float32) / np.float32(scale)
