"""Actors: each one's look and voice, drawn from the seed alone (independent of the emotion)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from cfnsr.data.synthetic.config import _S_ACTOR_LOOK, _S_ACTOR_VOICE, _rng


@dataclass(frozen=True)
class ActorLook:
    """Appearance of one actor. Colours are RGB 0..255; positions/sizes are fractions of the frame height/width."""

    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    iris: tuple[float, float, float]
    lips: tuple[float, float, float]
    clothes: tuple[float, float, float]
    background: tuple[float, float, float]
    head_rx: float  # head half-width / frame height
    center_x: float  # / frame width
    center_y: float  # / frame height
    drift: tuple[float, float]  # head drift over the clip, fraction of the frame height per second (x, y)
    sway: float  # head sway amplitude / frame height
    sway_hz: float
    roll_deg: float  # habitual head roll
    expressiveness: float  # factor on every expression deviation
    articulation: float  # lip opening while speaking


@dataclass(frozen=True)
class ActorVoice:
    f0: float  # Hz, base pitch (male actors = odd ids, lower)
    formant_scale: float  # vocal-tract length factor (female higher)
    loudness: float
    tilt: float  # dB/octave offset
    breath: float  # factor on aspiration noise
    phases: tuple[float, ...]  # harmonic phases (fixed per actor: a stable 'timbre' of the glottal wave)


def _mix(a: Sequence[float], b: Sequence[float], t: float) -> tuple[float, float, float]:
    return tuple(float(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _colour_distance(a: Sequence[float], b: Sequence[float]) -> float:
    return float(np.linalg.norm(np.subtract(a, b)))


@lru_cache(maxsize=64)
def actor_look(seed: int, actor: int) -> ActorLook:
    """Deterministic appearance of ``actor`` (1-based) for ``seed``."""
    rng = _rng(seed, _S_ACTOR_LOOK, actor)
    skin = _mix((245, 208, 180), (120, 78, 52), rng.uniform(0, 1))
    skin = tuple(float(np.clip(c + rng.normal(0, 6), 0, 255)) for c in skin)
    hair_palette = [(35, 25, 20), (80, 50, 30), (140, 95, 50), (200, 170, 110), (120, 120, 125), (25, 25, 30)]
    hair = tuple(float(c) for c in hair_palette[rng.integers(len(hair_palette))])
    iris_palette = [(70, 45, 25), (60, 90, 130), (80, 110, 70), (40, 30, 25)]
    iris = tuple(float(c) for c in iris_palette[rng.integers(len(iris_palette))])
    lips = _mix(skin, (170, 60, 70), rng.uniform(0.35, 0.6))
    clothes = tuple(float(c) for c in rng.uniform(20, 200, 3))
    # Backgrounds are walls in muted colours; resample until the face stands out from them.
    for _ in range(100):
        value, sat = rng.uniform(0.35, 0.95), rng.uniform(0.05, 0.45)
        hue = rng.uniform(0, 1)
        rgb = np.array([np.clip(abs(hue * 6 - 3) - 1, 0, 1), np.clip(2 - abs(hue * 6 - 2), 0, 1),
                        np.clip(2 - abs(hue * 6 - 4), 0, 1)])
        background = tuple(float(c) for c in 255 * value * (1 - sat + sat * rgb))
        if _colour_distance(background, skin) > 90:
            break
    angle = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(0.0, 0.012)
    return ActorLook(
        skin=skin, hair=hair, iris=iris, lips=lips, clothes=clothes, background=background,
        head_rx=float(rng.uniform(0.13, 0.17)), center_x=float(rng.uniform(0.36, 0.64)),
        center_y=float(rng.uniform(0.40, 0.46)), drift=(float(speed * np.cos(angle)), float(speed * np.sin(angle))),
        sway=float(rng.uniform(0.002, 0.012)), sway_hz=float(rng.uniform(0.2, 0.8)),
        roll_deg=float(rng.normal(0, 3)), expressiveness=float(rng.uniform(0.8, 1.2)),
        articulation=float(rng.uniform(0.25, 0.45)),
    )


@lru_cache(maxsize=64)
def actor_voice(seed: int, actor: int) -> ActorVoice:
    """Deterministic voice of ``actor``: odd ids are male (lower pitch, longer vocal tract)."""
    rng = _rng(seed, _S_ACTOR_VOICE, actor)
    male = actor % 2 == 1
    f0 = rng.uniform(95, 135) if male else rng.uniform(175, 235)
    formant = rng.uniform(0.96, 1.04) * (1.0 if male else 1.15)
    return ActorVoice(f0=float(f0), formant_scale=float(formant), loudness=float(rng.uniform(0.85, 1.15)),
                      tilt=float(rng.normal(0, 1.0)), breath=float(rng.uniform(0.7, 1.3)),
                      phases=tuple(float(p) for p in rng.uniform(0, 2 * np.pi, 256)))
