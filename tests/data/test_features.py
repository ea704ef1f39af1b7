"""cfnsr.data.features: the paper's MFCC window and shape, and the too-short error."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from cfnsr.data.features import AudioTooShortError, audio_window, clip_mfcc, mfcc_frames, window_length

SR = 44100


def test_paper_window_and_mfcc_shape():
    assert window_length(SR, 2.45) == 108045
    assert mfcc_frames(108045, 512) == 212
    audio = np.random.default_rng(0).standard_normal(3 * SR).astype(np.float32) * 0.1
    mfcc = clip_mfcc(audio, SR, 0.5, 2.45, n_mfcc=13, n_fft=2048, hop_length=512)
    assert mfcc.shape == (13, 212) and mfcc.dtype == np.float32


def test_window_starts_at_the_offset():
    ramp = np.arange(4 * SR, dtype=np.float32)
    window = audio_window(ramp, SR, 0.5, 2.45)
    assert len(window) == 108045 and window[0] == 22050 and window[-1] == 22050 + 108044


def test_mfcc_is_librosa_with_the_given_parameters():
    audio = np.sin(2 * np.pi * 300 * np.arange(3 * SR) / SR).astype(np.float32)
    ours = clip_mfcc(audio, SR, 0.5, 2.45, n_mfcc=20, n_fft=1024, hop_length=256)
    ref = librosa.feature.mfcc(y=audio[22050:22050 + 108045], sr=SR, n_mfcc=20, n_fft=1024, hop_length=256)
    assert ours.shape == (20, 1 + 108045 // 256)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-3)


def test_too_short_audio_is_a_clear_error():
    with pytest.raises(AudioTooShortError, match=r"audio is 2\.900 s long but the window needs .* = 2\.950 s"):
        audio_window(np.zeros(int(2.9 * SR), np.float32), SR, 0.5, 2.45)
    audio_window(np.zeros(int(2.95 * SR) + 1, np.float32), SR, 0.5, 2.45)  # just fits
