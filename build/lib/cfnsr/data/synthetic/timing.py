"""Timing shared by face and voice: the syllables of a statement and the speech envelope."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from cfnsr.data.synthetic.config import _S_STATEMENT, _rng

N_VOWELS = 5  # a, e, i, o, u: each syllable gets one; the voice has one formant set per vowel


@lru_cache(maxsize=8)
def _statement_pattern(seed: int, statement: int) -> tuple[np.ndarray, np.ndarray]:
    """Stress (0.55..1) and vowel index (0..4) of up to 40 syllables: the 'sentence', shared by all actors."""
    rng = _rng(seed, _S_STATEMENT, statement)
    return rng.uniform(0.55, 1.0, 40), rng.integers(0, N_VOWELS, 40)


def _syllables(rng: np.random.Generator, start: float, end: float, rate: float, n_max: int = 40) -> np.ndarray:
    """Syllable onsets and lengths in seconds, float64 (S, 2), filling [start, end); the last one ends at ``end``."""
    out = []
    t = start
    period = 1.0 / rate
    for _ in range(n_max):
        if t >= end - 0.05:
            break
        length = period * rng.uniform(0.75, 0.95)
        out.append((t, min(length, end - t)))
        t += period * rng.uniform(0.9, 1.1)
        if rng.uniform() < 0.15:  # word boundary: a short pause
            t += rng.uniform(0.04, 0.12)
    syl = np.asarray(out, dtype=np.float64).reshape(-1, 2)
    if len(syl):
        # Phrase-final lengthening: the last syllable lasts until ``end``, so the voice never stops early.
        syl[-1, 1] = end - syl[-1, 0]
    return syl


def _envelope(times: np.ndarray, syllables: np.ndarray, amps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Syllable envelope at ``times`` (float64 (N,)) -> (envelope (N,) float32 in 0..1, syllable index (N,), -1 in gaps)."""
    env = np.zeros(len(times), dtype=np.float32)
    which = np.full(len(times), -1, dtype=np.int64)
    for i, (onset, length) in enumerate(syllables):
        lo, hi = np.searchsorted(times, [onset, onset + length])
        if hi <= lo:
            continue
        x = (times[lo:hi] - onset) / length
        # Fast attack, slower decay, like a consonant-vowel syllable.
        env[lo:hi] = amps[i] * np.sin(np.pi * x ** 0.7) ** 0.8
        which[lo:hi] = i
    return env, which


def _speech_span(rng: np.random.Generator, duration: float) -> tuple[float, float]:
    """Start ~0.3-0.6 s (speech after a silence); end past 2.95 s and before the clip ends."""
    start = rng.uniform(0.3, 0.6)
    end = max(duration - rng.uniform(0.08, 0.25), min(duration, 3.0))
    return float(start), float(end)
