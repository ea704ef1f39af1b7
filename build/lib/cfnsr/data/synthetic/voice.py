"""The synthetic voice of one clip: glottal wavetables through vowel formants, following the syllable envelope."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from cfnsr.data.ravdess import RavdessName
from cfnsr.data.synthetic.actors import actor_voice
from cfnsr.data.synthetic.config import _S_CLIP_VOICE, SyntheticConfig, _rng
from cfnsr.data.synthetic.emotions import NEUTRAL_FACE, VoiceParams, voice_params
from cfnsr.data.synthetic.timing import _envelope, _speech_span, _statement_pattern, _syllables
from cfnsr.data.synthetic.video import ClipParams

# Vowel formants (Hz, adult male): a, e, i, o, u.
_VOWELS = np.array([[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010], [570, 840, 2410], [300, 870, 2240]],
                   dtype=np.float64)  # N_VOWELS rows
_FORMANT_GAIN = np.array([12.0, 7.0, 3.0])
_FORMANT_BW = np.array([90.0, 120.0, 180.0])
_TABLE = 8192  # wavetable length (one glottal period); long enough for nearest-sample lookup (no interpolation)
_CTRL_HZ = 400  # control rate of the pitch / amplitude contours


def _wavetables(f0: float, tilt: float, formant_scale: float, phases: Sequence[float], sr: int) -> np.ndarray:
    """One period per vowel, float32 (V * _TABLE,) (vowel v at [v*_TABLE, (v+1)*_TABLE)), each at unit RMS.

    Harmonic amplitudes follow a spectral tilt (dB/octave) times a formant envelope evaluated at ``f0``; harmonics
    stay below ~0.21 sr, so the wavetable does not alias even when the pitch rises by an octave.
    """
    n_harm = int(max(1, min(len(phases), min(9000.0, 0.42 * sr / 2.0) // f0)))
    k = np.arange(1, n_harm + 1, dtype=np.float64)
    freqs = k * f0
    base = 10 ** (tilt * np.log2(k) / 20)
    tables = np.empty((len(_VOWELS), _TABLE), dtype=np.float32)
    for v, formants in enumerate(_VOWELS * formant_scale):
        env = 1 + (_FORMANT_GAIN / (1 + ((freqs[:, None] - formants) / _FORMANT_BW) ** 2)).sum(1)
        spec = np.zeros(_TABLE // 2 + 1, dtype=np.complex128)
        spec[1:n_harm + 1] = base * env * np.exp(1j * np.asarray(phases[:n_harm]))
        wave = np.fft.irfft(spec, _TABLE)
        tables[v] = wave / (np.sqrt(np.mean(wave ** 2)) + 1e-12)
    return tables.ravel()


def _breath_noise(white: np.ndarray, sr: int) -> np.ndarray:
    """Aspiration-like noise float32 (N,) at unit RMS from white noise (N,): a first difference (+6 dB/octave), then
    a moving average applied twice (a triangular lowpass, first null near 11 kHz) -> a broad hump around 2-8 kHz.
    O(N) and no scipy import (which costs ~1 s per worker process)."""
    k = max(2, int(round(sr / 11000)))
    out = np.empty_like(white)
    out[0] = 0.0
    np.subtract(white[1:], white[:-1], out=out[1:])
    for _ in range(2):
        c = np.concatenate([np.zeros(k, np.float32), np.cumsum(out, dtype=np.float32)])
        out = c[k:] - c[:-k]
    return out * (1.0 / (np.sqrt(np.mean(out ** 2)) + 1e-12))


def _jitter_voice(v: VoiceParams, rng: np.random.Generator, amount: float) -> VoiceParams:
    d = [float(v) for v in rng.normal(0.0, 1.0, 7) * amount]  # same number of draws for every emotion
    return dataclasses.replace(
        v, f0_scale=v.f0_scale * 2 ** (0.5 * d[0] / 12), pitch_range=max(0.0, v.pitch_range * (1 + 0.1 * d[1])),
        pitch_slope=v.pitch_slope + 0.4 * d[2], rate=v.rate * (1 + 0.05 * d[3]), energy=v.energy * (1 + 0.07 * d[4]),
        tilt=v.tilt + 0.6 * d[5], breath=max(0.0, v.breath * (1 + 0.15 * d[6])))


def render_audio(name: RavdessName, cfg: SyntheticConfig) -> tuple[np.ndarray, ClipParams]:
    """Voice track float32 (N,) in [-1, 1] at ``cfg.sample_rate`` and the clip parameters used (``face`` is left
    neutral here; ``render_clip`` fills it in)."""
    voice = actor_voice(cfg.seed, name.actor)
    rng = _rng(cfg.seed, _S_CLIP_VOICE, *name.fields)
    sr, n = cfg.sample_rate, cfg.num_samples
    vp = _jitter_voice(voice_params(name.emotion, name.intensity), rng, cfg.voice_jitter)
    f0 = voice.f0 * vp.f0_scale
    start, end = _speech_span(rng, cfg.duration)
    syl = _syllables(rng, start, end, vp.rate)
    stress, vowels = _statement_pattern(cfg.seed, name.statement)
    amps = stress[: len(syl)] * rng.uniform(0.85, 1.0, len(syl))

    # Pitch and amplitude contours at a low control rate, then brought to audio rate.
    ctrl_t = np.arange(0, cfg.duration + 2 / _CTRL_HZ, 1 / _CTRL_HZ)
    env_c, which_c = _envelope(ctrl_t, syl, amps)
    progress = np.clip((ctrl_t - start) / max(end - start, 1e-3), 0, 1)
    semis = vp.pitch_slope * (progress - 0.5) + vp.pitch_range * (env_c - 0.5 * stress.mean())
    trem = np.sin(2 * np.pi * rng.uniform(6.0, 8.0) * ctrl_t + rng.uniform(0, 2 * np.pi))
    semis = semis + vp.tremor * trem + 0.3 * np.sin(2 * np.pi * rng.uniform(0.3, 0.8) * ctrl_t + rng.uniform(0, 6))
    amp_c = env_c * (1 + 0.28 * min(vp.tremor, 1.5) * trem)
    vowel_c = vowels[np.clip(which_c, 0, len(vowels) - 1)] * _TABLE  # constant within a syllable

    t = np.arange(n) / sr
    f0_t = f0 * np.interp(t, ctrl_t, 2 ** (semis / 12))
    amp = np.interp(t, ctrl_t, amp_c).astype(np.float32)
    tables = _wavetables(f0, vp.tilt + voice.tilt, vp.formant_scale * voice.formant_scale, voice.phases, sr)
    # Phase in cycles; float64 keeps it exact over the whole clip. _TABLE is a power of two, so & wraps it.
    idx = (np.cumsum(f0_t * (_TABLE / sr)).astype(np.int64) & (_TABLE - 1)) + vowel_c[(t * _CTRL_HZ).astype(np.int64)]
    voiced = tables[idx]

    white = rng.standard_normal(n, dtype=np.float32)
    breath = _breath_noise(white, sr)
    gain = 0.45 * vp.energy * voice.loudness
    voiced += (1.2 * vp.breath * voice.breath) * breath
    y = (gain * amp) * voiced
    # Noise floor: the same white noise, shifted by half a clip (uncorrelated with the breath at any instant).
    y += (cfg.noise / 10) * np.roll(white, n // 2)
    # Short fades so the clip edges do not click.
    fade = min(n // 4, int(0.01 * sr))
    y[:fade] *= np.linspace(0, 1, fade, dtype=np.float32)
    y[n - fade:] *= np.linspace(1, 0, fade, dtype=np.float32)
    y = np.clip(y, -0.99, 0.99).astype(np.float32)
    return y, ClipParams(face=NEUTRAL_FACE, voice=vp, f0=float(f0), speech_start=start, speech_end=end)
