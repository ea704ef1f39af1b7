"""cfnsr.robustness.corruptions: each corruption does exactly what docs/robustness.md says, on hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cfnsr.robustness import corruptions as C

SR = 44100


def _speech_like(n: int = 108045, seed: int = 0) -> np.ndarray:
    """A voiced-looking window: harmonics under a syllable envelope, with a silent gap (power varies over time)."""
    t = np.arange(n) / SR
    rng = np.random.default_rng(seed)
    x = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) / k for k, f in enumerate((140, 280, 420, 1100), 1))
    envelope = np.clip(np.sin(2 * np.pi * 1.7 * t), 0, None)
    envelope[n // 3:n // 3 + 4000] = 0
    return (0.3 * envelope * x).astype(np.float32)


# ---------------------------------------------------------------------------------------------------- audio

@pytest.mark.parametrize("snr", [20, 10, 5, 0, -5])
def test_white_noise_is_added_at_the_requested_snr(snr):
    clean = _speech_like()
    noisy = C.add_white_noise(clean, snr, np.random.default_rng(1))
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    noise = noisy.astype(np.float64) - clean
    measured = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise ** 2))
    assert abs(measured - snr) < 0.1
    assert C.measured_snr_db(clean, noisy) == pytest.approx(measured)
    # white and zero-mean: flat spectrum (low and high halves carry about the same power), no offset
    spectrum = np.abs(np.fft.rfft(noise)) ** 2
    half = len(spectrum) // 2
    assert spectrum[:half].mean() == pytest.approx(spectrum[half:].mean(), rel=0.1)
    assert abs(noise.mean()) < 0.05 * noise.std()


def test_noise_on_a_silent_window_leaves_it_silent():
    silent = np.zeros(1000, dtype=np.float32)
    np.testing.assert_array_equal(C.add_white_noise(silent, 10, np.random.default_rng(0)), silent)


def test_shift_delays_the_waveform_and_fills_the_start_with_zeros():
    x = _speech_like()
    out = C.shift_audio(x, 0.25, SR)
    s = round(0.25 * SR)
    assert out.shape == x.shape and out.dtype == np.float32
    assert not out[:s].any()
    np.testing.assert_array_equal(out[s:], x[:len(x) - s])
    assert not C.shift_audio(x, 10.0, SR).any()  # longer than the window: all zeros
    np.testing.assert_array_equal(C.shift_audio(x, 0.0, SR), x)


# ---------------------------------------------------------------------------------------------------- video

def _frames(t: int = 8, h: int = 32, w: int = 32) -> np.ndarray:
    """uint8 (T, H, W, 3) whose frame k is filled with value 10 * (k + 1) (so a frame is identified by its value)."""
    return np.broadcast_to((10 * np.arange(1, t + 1, dtype=np.uint8)).reshape(t, 1, 1, 1), (t, h, w, 3)).copy()


def test_pixel_noise_has_the_requested_sigma_on_the_uint8_scale():
    frames = np.full((8, 64, 64, 3), 128, dtype=np.uint8)  # mid-grey: no clipping
    for sigma in (5, 20):
        out = C.pixel_noise(frames, sigma, np.random.default_rng(2))
        assert out.dtype == np.uint8 and out.shape == frames.shape
        diff = out.astype(np.float64) - 128
        assert diff.std() == pytest.approx(sigma, rel=0.03) and abs(diff.mean()) < 0.2
    np.testing.assert_array_equal(C.pixel_noise(frames, 0, np.random.default_rng(2)), frames)
    white = np.full((2, 16, 16, 3), 250, dtype=np.uint8)
    assert C.pixel_noise(white, 40, np.random.default_rng(3)).max() == 255  # clipped, not wrapped around


def test_blur_sigma_is_in_pixels_of_the_crop():
    frames = np.zeros((2, 65, 65, 3), dtype=np.uint8)
    frames[:, 32, 32] = 255  # an impulse: the output is the kernel
    for sigma in (1.0, 2.0, 4.0):
        blurred = C.gaussian_blur(frames, sigma)
        assert blurred.dtype == np.uint8 and blurred.shape == frames.shape
        out = blurred.astype(np.float64)
        assert np.array_equal(out[0], out[1])
        profile = out[0, 32, :, 0]
        x = np.arange(65) - 32
        measured = np.sqrt((profile * x ** 2).sum() / profile.sum())
        assert measured == pytest.approx(sigma, rel=0.15)
    flat = np.full((3, 20, 20, 3), 77, dtype=np.uint8)
    np.testing.assert_array_equal(C.gaussian_blur(flat, 2.0), flat)


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.75, 1.0])
def test_dropped_frames_hold_the_previous_kept_frame(fraction):
    frames = _frames(t=8)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    dropped = C.dropped_frame_indices(8, fraction, rng_a)
    out = C.drop_frames(frames, fraction, rng_b)
    assert len(dropped) == min(7, round(fraction * 8)) and 0 not in dropped
    kept = [t for t in range(8) if t not in set(dropped.tolist())]
    for t in range(8):
        source = max(k for k in kept if k <= t)
        np.testing.assert_array_equal(out[t], frames[source])
    assert sum(not np.array_equal(out[t], frames[t]) for t in range(8)) == len(dropped)


@pytest.mark.parametrize(("part", "height"), [("lower", 32), ("upper", 32), ("lower", 7), ("upper", 7)])
def test_occlusion_covers_exactly_the_stated_rows(part, height):
    video = torch.randn(2, 3, 4, height, 5) + 3  # normalised values, none of them 0
    out = C.occlude(video, part)
    rows = range(height // 2, height) if part == "lower" else range(height // 2)
    for r in range(height):
        if r in rows:
            assert torch.all(out[..., r, :] == 0)
        else:
            assert torch.equal(out[..., r, :], video[..., r, :])
    assert not torch.all(video == out)  # the input is not modified
    assert len(rows) == (height - height // 2 if part == "lower" else height // 2)


# ---------------------------------------------------------------------------------------------------- seeding

def test_clip_rng_depends_on_seed_corruption_level_and_stem_only():
    def draw(*args):
        return C.clip_rng(*args).standard_normal(4)

    base = draw(0, "audio_noise", 10, "01-01-03-01-01-01-01")
    np.testing.assert_array_equal(base, draw(0, "audio_noise", 10.0, "01-01-03-01-01-01-01"))  # 10 == 10.0
    for other in [(1, "audio_noise", 10, "01-01-03-01-01-01-01"), (0, "video_noise", 10, "01-01-03-01-01-01-01"),
                  (0, "audio_noise", 5, "01-01-03-01-01-01-01"), (0, "audio_noise", 10, "01-01-03-01-01-02-01")]:
        assert not np.array_equal(base, draw(*other)), other


def test_every_corruption_has_a_description_and_a_level_rule():
    for name, spec in C.CORRUPTIONS.items():
        assert spec.name == name and spec.modality in (C.AUDIO, C.VIDEO, C.BOTH) and spec.description
        assert (spec.check_level is not None) == spec.has_levels
