"""cfnsr.data.media: one-pass decoding of sampled frames + mono resampled audio, and its error cases."""

from __future__ import annotations

import os

import av
import numpy as np
import pytest
from media_factory import write_clip

from cfnsr.data.media import MediaError, decode_clip, needed_frame_slots, sample_times


def _all_frames(path) -> tuple[np.ndarray, np.ndarray]:
    """Every frame (N, H, W, 3) RGB and its time (N,), by a plain PyAV decode."""
    with av.open(str(path)) as c:
        frames = [(f.time, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    return np.stack([f for _, f in frames]), np.array([t for t, _ in frames])


def test_sample_times_are_k_d_over_t():
    np.testing.assert_allclose(sample_times(3.0, 30), np.arange(30) * 0.1)


def test_frames_are_the_nearest_decoded_frames(tmp_path):
    path = tmp_path / "clip.mp4"
    write_clip(path, width=160, height=90, fps=12, duration=3.2)
    clip = decode_clip(path, 30, 44100)
    every, times = _all_frames(path)
    assert clip.frames.shape == (30, 90, 160, 3) and clip.frames.dtype == np.uint8
    assert (clip.width, clip.height, clip.fps, clip.n_decoded) == (160, 90, 12.0, len(every))
    targets = sample_times(clip.duration, 30)
    for k, target in enumerate(targets):
        nearest = int(np.argmin(np.abs(times - target)))  # argmin takes the earlier frame on a tie, as decode_clip
        assert clip.frame_times[k] == pytest.approx(times[nearest])
        np.testing.assert_array_equal(clip.frames[k], every[nearest])


@pytest.mark.parametrize("num_frames", [8, 30, 80])
def test_skipping_unneeded_frames_returns_the_same_frames(tmp_path, num_frames):
    path = tmp_path / "bframes.mp4"
    write_clip(path, width=320, height=180, fps=25, duration=3.2, preset="veryfast")  # x264 veryfast: B-frames
    full = decode_clip(path, num_frames, 44100, skip_unneeded=False)
    for threads in (1, 0):
        fast = decode_clip(path, num_frames, 44100, threads=threads)
        np.testing.assert_array_equal(fast.frames, full.frames)
        np.testing.assert_array_equal(fast.frame_times, full.frame_times)
        if num_frames < 40:
            assert fast.n_decoded < full.n_decoded == 80  # non-reference B-frames were dropped
    np.testing.assert_array_equal(fast.audio, full.audio)


def test_needed_frame_slots_keep_both_neighbours_on_a_tie():
    assert needed_frame_slots(np.array([0.0, 0.04, 0.1, 0.26]), fps=10) == {0, 1, 3}
    assert needed_frame_slots(np.array([0.05]), fps=10) == {0, 1}


def test_more_samples_than_frames_repeats_frames(tmp_path):
    path = tmp_path / "slow.mp4"
    write_clip(path, fps=5, duration=3.2)
    clip = decode_clip(path, 30, 16000)
    assert clip.frames.shape[0] == 30 and clip.n_decoded == 16
    assert len(np.unique(clip.frame_times)) == 16  # every frame used, some twice


def test_audio_is_mono_float32_resampled_and_averaged(tmp_path):
    path = tmp_path / "clip.mp4"
    write_clip(path, duration=3.2, sample_rate=48000, channels=2)
    clip = decode_clip(path, 4, 44100)
    audio = clip.audio
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 3.2 * 44100) < 1024  # within one AAC frame
    spectrum = np.abs(np.fft.rfft(audio[4410:4410 + 44100]))
    assert np.argmax(spectrum) == pytest.approx(440, abs=2)  # 1 s window -> 1 Hz bins
    # both channels carry the same 0.3 sine: their mean is 0.3 (libswresample's downmix would give ~0.42)
    assert np.abs(audio[4410:-4410]).max() == pytest.approx(0.3, abs=0.03)


def test_without_audio_request_a_silent_clip_is_fine(tmp_path):
    path = tmp_path / "silent.mp4"
    write_clip(path, audio=False)
    assert decode_clip(path, 5, 44100, with_audio=False).audio is None
    with pytest.raises(MediaError, match="silent.mp4: no audio stream"):
        decode_clip(path, 5, 44100)


def test_decoder_threads_give_the_same_frames(tmp_path):
    path = tmp_path / "clip.mp4"
    write_clip(path)
    a, b = decode_clip(path, 10, 44100, threads=1), decode_clip(path, 10, 44100, threads=0)
    np.testing.assert_array_equal(a.frames, b.frames)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(MediaError, match=r"empty.mp4: empty file \(0 bytes\)"):
        decode_clip(path, 5, 44100)


@pytest.mark.parametrize("faststart", [False, True], ids=["index-at-end", "index-first"])
def test_truncated_file(tmp_path, faststart):
    path = tmp_path / "cut.mp4"
    write_clip(path, faststart=faststart)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(MediaError, match="cut.mp4"):
        decode_clip(path, 30, 44100)


def test_garbage_and_missing_streams(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(MediaError, match="junk.mp4: cannot decode"):
        decode_clip(junk, 5, 44100)
    audio_only = tmp_path / "audio_only.mp4"
    write_clip(audio_only, video=False)
    with pytest.raises(MediaError, match="audio_only.mp4: no video stream"):
        decode_clip(audio_only, 5, 44100)
    with pytest.raises(MediaError, match="missing.mp4: cannot read"):
        decode_clip(tmp_path / "missing.mp4", 5, 44100)
