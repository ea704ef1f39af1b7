"""A synthetic corpus in the RAVDESS layout: drawn talking faces plus a synthetic voice, with OpenFace-style CSVs.

Layout written (see docs/contracts.md)::

    <root>/Actor_XX/01-01-EE-II-SS-RR-AA.mp4   H.264 (yuv420p) video + AAC mono audio
    <root>/landmarks/01-01-EE-II-SS-RR-AA.csv  one row per video frame, x_0..x_67 / y_0..y_67 in pixels
    <root>/synthetic.json                      the generating config, written when the corpus is complete

Why it is useful: the emotion signal is split across the modalities on purpose.

* The FACE (brows, eyes, mouth) cannot tell apart (neutral, calm), (angry, disgust), (fearful, surprised): they share
  the same expression parameters, so a video-only model tops out at 960/1440 = 66.7 %.
* The VOICE (pitch, contour, rate, energy, timbre) cannot tell apart (calm, sad), (happy, surprised),
  (disgust, fearful), so an audio-only model tops out at 864/1440 = 60 %.
* Each pair is separated by the other modality, so a fused model can reach 100 %.

Everything else (actor appearance and voice, head motion, blinks, lip articulation, per-clip jitter, noise) is drawn
independently of the emotion, so no other channel leaks the label. Output is a pure function of the config: every
random draw comes from a ``SeedSequence`` keyed by (seed, stream, clip fields).

CLI: ``python -m cfnsr.data.synthetic <root> [--actors N] [--workers W] ...``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from cfnsr.data.ravdess import NUM_ACTORS, RavdessName, av_speech_names
from cfnsr.data.worker_pool import process_pool

# Bump when the rendered content changes, so that an old corpus is not silently resumed with new clips.
GENERATOR_VERSION = 1
CONFIG_FILE = "synthetic.json"
_PENDING_FILE = ".synthetic.pending.json"
_TMP_TAG = ".tmp-"
MIN_DURATION = 2.95  # the paper reads audio from 0.5 s for 2.45 s


class SyntheticConfigMismatch(RuntimeError):
    """``<root>`` already holds a synthetic corpus generated with another config."""


# --------------------------------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------------------------------

@dataclass
class SyntheticConfig:
    """What shapes the corpus. All fields are plain values so Hydra can pass them as keyword arguments.

    noise: pixel noise std as a fraction of 255; the audio noise floor is ``noise / 10`` of full scale (std).
    emotions: emotion codes 1..8 to generate (None = all eight).
    clips_per_actor: keep only the first N of each actor's clips in a class-interleaved order (None = all 60); the
        order cycles through the emotions first, so small N still covers every class.
    crf / audio_bitrate: encoder quality; defaults keep files small and encoding fast.
    """

    actors: int = NUM_ACTORS
    seed: int = 0
    width: int = 320
    height: int = 180
    fps: int = 15
    duration: float = 3.3
    sample_rate: int = 48000
    noise: float = 0.015
    expression_jitter: float = 1.0  # scale of the per-clip random variation of the expression parameters
    voice_jitter: float = 1.0  # scale of the per-clip random variation of the voice parameters
    emotions: tuple[int, ...] | None = None
    clips_per_actor: int | None = None
    crf: int = 28
    audio_bitrate: int = 48000

    def __post_init__(self) -> None:
        # Hydra hands lists over as ListConfig; a tuple keeps the dataclass hashable-ish and JSON round-trips to list.
        if self.emotions is not None:
            self.emotions = tuple(sorted({int(e) for e in self.emotions}))
        problems = []
        if not 1 <= self.actors <= NUM_ACTORS:
            problems.append(f"actors={self.actors} must be in 1..{NUM_ACTORS}")
        if self.width < 64 or self.height < 36 or self.width % 2 or self.height % 2:
            problems.append(f"width x height = {self.width}x{self.height} must be even and at least 64x36 (yuv420p)")
        if self.fps < 1:
            problems.append(f"fps={self.fps} must be >= 1")
        if self.duration < MIN_DURATION:
            problems.append(f"duration={self.duration} s must be >= {MIN_DURATION} s (audio window 0.5 s + 2.45 s)")
        if self.sample_rate < 16000:
            problems.append(f"sample_rate={self.sample_rate} must be >= 16000")
        if self.noise < 0:
            problems.append(f"noise={self.noise} must be >= 0")
        if self.emotions is not None and (not self.emotions or not set(self.emotions) <= set(range(1, 9))):
            problems.append(f"emotions={self.emotions} must be a non-empty subset of 1..8")
        if self.clips_per_actor is not None and self.clips_per_actor < 1:
            problems.append(f"clips_per_actor={self.clips_per_actor} must be >= 1")
        if problems:
            raise ValueError("invalid SyntheticConfig: " + "; ".join(problems))

    @property
    def num_frames(self) -> int:
        """Video frames per clip: enough to cover ``duration`` (the video may end up to 1/fps after the audio)."""
        return int(math.ceil(self.duration * self.fps - 1e-9))

    @property
    def num_samples(self) -> int:
        return int(round(self.duration * self.sample_rate))

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists), plus the generator version."""
        data = dataclasses.asdict(self)
        if data["emotions"] is not None:
            data["emotions"] = list(data["emotions"])
        data["generator_version"] = GENERATOR_VERSION
        return data


def make_config(cfg: SyntheticConfig | None = None, **overrides: Any) -> SyntheticConfig:
    """A config from defaults, an existing config, and keyword overrides (unknown keys raise ``TypeError``)."""
    base = dataclasses.asdict(cfg) if cfg is not None else {}
    base.update(overrides)
    return SyntheticConfig(**base)


def selected_names(cfg: SyntheticConfig) -> list[RavdessName]:
    """The clips ``cfg`` generates: ``av_speech_names`` of every actor, filtered by ``emotions``/``clips_per_actor``."""
    names: list[RavdessName] = []
    for actor in range(1, cfg.actors + 1):
        own = [n for n in av_speech_names(actor) if cfg.emotions is None or n.emotion in cfg.emotions]
        if cfg.clips_per_actor is not None:
            # Interleave the emotions so that a small N still covers every class.
            own.sort(key=lambda n: (n.intensity, n.repetition, n.statement, n.emotion))
            own = sorted(own[: cfg.clips_per_actor])
        names.extend(own)
    return names


def _rng(cfg_seed: int, stream: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([cfg_seed, stream, *keys]))


# Stream ids keep the random draws of unrelated things independent (e.g. the face jitter never consumes the voice's).
_S_ACTOR_LOOK, _S_ACTOR_VOICE, _S_STATEMENT, _S_CLIP_FACE, _S_CLIP_VOICE, _S_CLIP_PIXELS, _S_NOISE_BANK = range(1, 8)


# --------------------------------------------------------------------------------------------------------------------
# Emotion -> parameters (the class signal)
# --------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FaceExpression:
    """Expression parameters in face units (neutral = the defaults).

    brow_raise: + lifts both brows; brow_tilt: + lifts the inner ends (sad/fear), - lowers them (anger 'V');
    eye_open: eyelid opening factor; mouth_curve: + corners up (smile), - down; mouth_open: lip gap at rest;
    mouth_width: width factor.
    """

    brow_raise: float = 0.0
    brow_tilt: float = 0.0
    eye_open: float = 1.0
    mouth_curve: float = 0.0
    mouth_open: float = 0.0
    mouth_width: float = 1.0

    def scaled(self, factor: float) -> FaceExpression:
        """Deviation from neutral multiplied by ``factor`` (intensity, actor expressiveness)."""
        n = NEUTRAL_FACE
        return FaceExpression(*(getattr(n, f.name) + factor * (getattr(self, f.name) - getattr(n, f.name))
                                for f in dataclasses.fields(self)))


NEUTRAL_FACE = FaceExpression()

# One expression per face group; the confusable pairs share one entry on purpose.
_FACE_NEUTRAL = NEUTRAL_FACE
_FACE_HAPPY = FaceExpression(brow_raise=0.25, eye_open=0.72, mouth_curve=1.0, mouth_open=0.25, mouth_width=1.25)
_FACE_SAD = FaceExpression(brow_raise=0.1, brow_tilt=0.9, eye_open=0.7, mouth_curve=-0.8, mouth_width=0.92)
_FACE_ANGRY = FaceExpression(brow_raise=-0.8, brow_tilt=-1.0, eye_open=0.62, mouth_curve=-0.3, mouth_open=0.05,
                             mouth_width=0.82)
_FACE_FEAR = FaceExpression(brow_raise=1.0, brow_tilt=0.35, eye_open=1.6, mouth_open=0.85, mouth_width=0.86)
FACE_BY_EMOTION: dict[int, FaceExpression] = {
    1: _FACE_NEUTRAL, 2: _FACE_NEUTRAL,  # neutral = calm
    3: _FACE_HAPPY, 4: _FACE_SAD,
    5: _FACE_ANGRY, 7: _FACE_ANGRY,  # angry = disgust
    6: _FACE_FEAR, 8: _FACE_FEAR,  # fearful = surprised
}
FACE_CONFUSABLE: tuple[tuple[int, int], ...] = ((1, 2), (5, 7), (6, 8))


@dataclass(frozen=True)
class VoiceParams:
    """Voice parameters of one emotion (before the actor's voice and the per-clip jitter are applied).

    f0_scale: factor on the actor's base pitch; pitch_range: accent excursion (semitones); pitch_slope: rise over the
    utterance (semitones, - = falling); tremor: pitch (semitones) and amplitude tremor depth at ~7 Hz; rate: syllables
    per second; energy: loudness (linear); tilt: spectral tilt (dB/octave, closer to 0 = brighter); breath: aspiration
    noise relative to the voice; formant_scale: vowel formant frequency factor.
    """

    f0_scale: float
    pitch_range: float
    pitch_slope: float
    tremor: float
    rate: float
    energy: float
    tilt: float
    breath: float
    formant_scale: float

    def scaled(self, strong: bool) -> VoiceParams:
        """Strong intensity: louder, brighter, wider pitch movement (the same rule for every emotion)."""
        if not strong:
            return self
        return dataclasses.replace(self, f0_scale=self.f0_scale * 1.06, pitch_range=self.pitch_range * 1.3,
                                   tremor=self.tremor * 1.3, energy=self.energy * 1.3, tilt=self.tilt + 1.5)


_VOICE_NEUTRAL = VoiceParams(1.0, 1.5, -1.0, 0.0, 3.8, 0.45, -9.0, 0.05, 1.0)
_VOICE_LOW = VoiceParams(0.86, 1.0, -3.5, 0.0, 2.7, 0.26, -14.0, 0.22, 0.94)  # calm = sad
_VOICE_BRIGHT = VoiceParams(1.38, 5.0, 2.5, 0.0, 4.5, 0.62, -7.0, 0.05, 1.08)  # happy = surprised
_VOICE_ANGRY = VoiceParams(1.15, 3.0, -1.5, 0.0, 5.2, 0.95, -3.5, 0.08, 1.03)
_VOICE_TREMBLE = VoiceParams(1.1, 2.0, 0.0, 0.9, 3.3, 0.42, -10.5, 0.3, 0.98)  # disgust = fearful
VOICE_BY_EMOTION: dict[int, VoiceParams] = {
    1: _VOICE_NEUTRAL,
    2: _VOICE_LOW, 4: _VOICE_LOW,
    3: _VOICE_BRIGHT, 8: _VOICE_BRIGHT,
    5: _VOICE_ANGRY,
    6: _VOICE_TREMBLE, 7: _VOICE_TREMBLE,
}
VOICE_CONFUSABLE: tuple[tuple[int, int], ...] = ((2, 4), (3, 8), (6, 7))

_STRONG_FACE = 1.5  # expression deviation factor of intensity 02


def face_expression(emotion: int, intensity: int) -> FaceExpression:
    """Emotion-level expression (before actor expressiveness and per-clip jitter). emotion 1..8, intensity 1|2."""
    return FACE_BY_EMOTION[emotion].scaled(_STRONG_FACE if intensity == 2 else 1.0)


def voice_params(emotion: int, intensity: int) -> VoiceParams:
    """Emotion-level voice parameters (before the actor's voice and per-clip jitter). emotion 1..8, intensity 1|2."""
    return VOICE_BY_EMOTION[emotion].scaled(intensity == 2)


# --------------------------------------------------------------------------------------------------------------------
# Actors (emotion-independent identity)
# --------------------------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------------------------
# Timing shared by face and voice: syllables
# --------------------------------------------------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _statement_pattern(seed: int, statement: int) -> tuple[np.ndarray, np.ndarray]:
    """Stress (0.55..1) and vowel index (0..4) of up to 40 syllables: the 'sentence', shared by all actors."""
    rng = _rng(seed, _S_STATEMENT, statement)
    return rng.uniform(0.55, 1.0, 40), rng.integers(0, len(_VOWELS), 40)


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


# --------------------------------------------------------------------------------------------------------------------
# Face geometry (iBUG-68 layout) and drawing
# --------------------------------------------------------------------------------------------------------------------

# Face-local units: head half-width = 1, origin at the centre of the head ellipse, y pointing down (image convention).
HEAD_RY = 1.3
_EYE_X, _EYE_Y, _EYE_HW, _EYE_HH = 0.36, -0.02, 0.16, 0.10
_BROW_Y = -0.33
_MOUTH_Y = 0.70
_FRINGE_Y = -0.74  # hair covers the head above this line, always above the highest brow
_JAW_THETA = np.linspace(np.pi, 0.0, 17)


def _static_landmarks(e: FaceExpression) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks that do not move within a clip, float64 (68, 2), and the per-point lip-gap coefficients (20,) of
    points 48..67 (y = static y + coefficient * gap)."""
    p = np.zeros((68, 2))
    p[0:17, 0] = np.cos(_JAW_THETA)
    p[0:17, 1] = HEAD_RY * np.sin(_JAW_THETA)

    eye_top = _EYE_Y - _EYE_HH * max(e.eye_open, 0.15)  # brows stay above the open lid, even during a blink
    t = np.linspace(0.0, 1.0, 5)  # 0 outer end, 1 inner end
    brow_y = _BROW_Y - 0.12 * e.brow_raise - 0.05 * np.sin(np.pi * (0.3 + 0.6 * t)) - 0.07 * e.brow_tilt * t
    brow_y = np.clip(brow_y, _FRINGE_Y + 0.06, eye_top - 0.05)
    brow_x = -0.62 + 0.48 * t
    p[17:22, 0], p[17:22, 1] = brow_x, brow_y
    p[22:27, 0], p[22:27, 1] = -brow_x[::-1], brow_y[::-1]

    p[27:31, 1] = [-0.05, 0.07, 0.19, 0.31]
    p[31:36, 0] = [-0.13, -0.065, 0.0, 0.065, 0.13]
    p[31:36, 1] = [0.36, 0.39, 0.40, 0.39, 0.36]

    # Eyes clockwise from the image-left corner (outer corner of the image-left eye, inner corner of the other);
    # their y is set per frame (blinks).
    xs = np.array([-1.0, -0.4, 0.4, 1.0, 0.4, -0.4]) * _EYE_HW
    p[36:42, 0] = -_EYE_X + xs
    p[42:48, 0] = _EYE_X + xs
    p[36:48, 1] = _EYE_Y

    mw = 0.30 * e.mouth_width
    p[48:68, 0] = mw * _LIP_U
    # Corners move with the curve, the middle stays; lips are thicker in the middle.
    bend = -0.12 * e.mouth_curve * _LIP_U ** 2
    p[48:68, 1] = _MOUTH_Y + bend + _LIP_THICK
    return p, _LIP_GAP_SIGN * 0.5 * np.clip(1 - _LIP_U ** 2, 0, None) ** 0.7


# Lip points 48..67 along the mouth (u = -1 left corner .. 1 right corner), whether they sit on the upper (-1) or
# lower (+1) side of the lip gap, and their lip thickness offset.
_LIP_U = np.array([-1.0, -0.6, -0.25, 0.0, 0.25, 0.6, 1.0,  # 48..54 outer upper
                   0.6, 0.25, 0.0, -0.25, -0.6,  # 55..59 outer lower
                   -0.82, -0.4, 0.0, 0.4, 0.82,  # 60..64 inner upper
                   0.4, 0.0, -0.4])  # 65..67 inner lower
_LIP_GAP_SIGN = np.array([-1.0] * 7 + [1.0] * 5 + [-1.0] * 5 + [1.0] * 3)
_LIP_THICK = np.concatenate([-0.055 * (1 - _LIP_U[:7] ** 2), 0.075 * (1 - 0.6 * _LIP_U[7:12] ** 2), np.zeros(8)])
_EYE_SHAPE = np.array([0.0, -0.92, -0.92, 0.0, 0.92, 0.92])


def face_landmarks_local(e: FaceExpression, open_extra: float | np.ndarray = 0.0,
                         blink: float | np.ndarray = 1.0) -> np.ndarray:
    """The 68 iBUG landmarks in face-local units, float64 (*B, 68, 2) [x, y], B = broadcast shape of the inputs.

    open_extra: lip opening added by articulation; blink: eyelid factor (1 open, ~0 closed).
    Points 0-16 jaw (image-left ear level -> chin -> image-right), 17-21 / 22-26 brows (outer->inner / inner->outer),
    27-30 nose bridge, 31-35 nostril base, 36-41 / 42-47 eyes (clockwise from the image-left corner),
    48-59 outer lips (left corner, upper lip, right corner, lower lip), 60-67 inner lips.
    """
    open_extra, blink = np.broadcast_arrays(np.asarray(open_extra, np.float64), np.asarray(blink, np.float64))
    static, gap_coef = _static_landmarks(e)
    p = np.broadcast_to(static, (*open_extra.shape, 68, 2)).copy()
    hh = _EYE_HH * max(e.eye_open, 0.15) * blink[..., None]
    p[..., 36:42, 1] += _EYE_SHAPE * hh
    p[..., 42:48, 1] += _EYE_SHAPE * hh
    gap = 0.22 * np.maximum(e.mouth_open + open_extra, 0.0)[..., None]
    p[..., 48:68, 1] += gap_coef * gap
    return p


_SHIFT = 4  # cv2 sub-pixel bits: smooth motion of small features
_ONE = 1 << _SHIFT


def _fx(points: np.ndarray) -> np.ndarray:
    return np.round(points * _ONE).astype(np.int32)


def _transform(local: np.ndarray, poses: np.ndarray) -> np.ndarray:
    """Face-local points (T, P, 2) -> pixels (T, P, 2), poses float (T, 4) [cx, cy, scale, roll_deg].

    + roll turns clockwise on screen (y points down), the same convention as cv2.ellipse's angle.
    """
    a = np.deg2rad(poses[:, 3])[:, None]
    c, s = np.cos(a), np.sin(a)
    x, y = local[..., 0], local[..., 1]
    scale = poses[:, 2:3]
    return np.stack([poses[:, 0:1] + scale * (c * x - s * y), poses[:, 1:2] + scale * (s * x + c * y)], axis=-1)


def _fringe_polygon() -> np.ndarray:
    """The part of the (slightly enlarged) head ellipse above _FRINGE_Y, with a straight lower edge, (P, 2)."""
    th = np.linspace(np.pi, 2 * np.pi, 24)
    top = np.stack([np.cos(th) * 1.01, np.sin(th) * HEAD_RY * 1.01], axis=1)
    top = top[top[:, 1] < _FRINGE_Y]
    edge_x = np.sqrt(max(0.0, 1 - (_FRINGE_Y / HEAD_RY) ** 2)) * 1.01
    return np.concatenate([[[-edge_x, _FRINGE_Y]], top, [[edge_x, _FRINGE_Y]]])


# Extra drawing anchors (face-local), appended after the 68 landmarks before transforming.
_ANCHORS = np.concatenate([
    [[0.0, 0.0], [0.0, 3.0], [0.0, -0.1], [-_EYE_X, _EYE_Y], [_EYE_X, _EYE_Y]],  # head, body, hair, eye centres
    [[-0.42, 0.7], [0.42, 0.7], [0.45, 2.0], [-0.45, 2.0]],  # neck
    _fringe_polygon(),
])
_A_HEAD, _A_BODY, _A_HAIR, _A_EYES, _A_NECK, _A_FRINGE = 68, 69, 70, 71, 73, 77


def _colour(rgb: Sequence[float], light: float) -> tuple[float, float, float]:
    return tuple(float(min(255.0, c * light)) for c in rgb)  # type: ignore[return-value]


@dataclass(frozen=True)
class _Palette:
    skin: tuple[float, float, float]
    shade: tuple[float, float, float]
    hair: tuple[float, float, float]
    lips: tuple[float, float, float]
    clothes: tuple[float, float, float]
    iris: tuple[float, float, float]
    sclera: tuple[float, float, float]
    lid: tuple[float, float, float]
    mouth: tuple[float, float, float]

    @classmethod
    def of(cls, look: ActorLook, light: float) -> _Palette:
        return cls(skin=_colour(look.skin, light), shade=_colour(look.skin, light * 0.72),
                   hair=_colour(look.hair, light), lips=_colour(look.lips, light),
                   clothes=_colour(look.clothes, light), iris=_colour(look.iris, light),
                   sclera=_colour((240, 240, 235), light), lid=_colour((40, 30, 30), light),
                   mouth=_colour((60, 20, 25), light))


def _draw_face(img: np.ndarray, pts: np.ndarray, scale: float, roll: float, eye_hh: float, lip_gap_px: float,
               pal: _Palette) -> None:
    """Draw body, head and features onto ``img`` (uint8 (H, W, 3) RGB, in place).

    pts: int32 (68 + anchors, 2) fixed-point pixels (landmarks then _ANCHORS); scale: pixels per face unit;
    eye_hh: eyelid half-opening (face units); lip_gap_px: inner lip gap in pixels.
    """
    aa = cv2.LINE_AA
    thick = max(1, int(round(scale / 14)))
    k = scale * _ONE

    def ell(anchor: int, ax: float, ay: float, colour: Sequence[float], start: int = 0, end: int = 360,
            width: int = -1) -> None:
        cv2.ellipse(img, (int(pts[anchor, 0]), int(pts[anchor, 1])), (int(ax * k + 0.5), int(ay * k + 0.5)), roll,
                    start, end, colour, width, aa, _SHIFT)

    ell(_A_BODY, 2.4, 1.3, pal.clothes)
    cv2.fillConvexPoly(img, pts[_A_NECK:_A_NECK + 4], pal.shade, aa, _SHIFT)
    ell(_A_HAIR, 1.08, HEAD_RY * 1.05, pal.hair, 180, 360)  # hair volume behind the top of the head
    ell(_A_HEAD, 1.0, HEAD_RY, pal.skin)
    cv2.fillPoly(img, [pts[_A_FRINGE:]], pal.hair, aa, _SHIFT)
    hh = max(eye_hh, 0.004)
    r = min(0.062, eye_hh)
    for eye in (_A_EYES, _A_EYES + 1):
        ell(eye, _EYE_HW, hh, pal.sclera)
        if r > 0.012:
            ell(eye, r, r, pal.iris)
            ell(eye, r * 0.45, r * 0.45, (15.0, 15.0, 15.0))
        ell(eye, _EYE_HW, hh, pal.lid, width=max(1, int(round(scale / 22))))
    cv2.polylines(img, [pts[17:22], pts[22:27]], False, pal.hair, max(1, int(round(scale / 9))), aa, _SHIFT)
    cv2.polylines(img, [pts[27:31], pts[31:36]], False, pal.shade, thick, aa, _SHIFT)
    cv2.fillPoly(img, [pts[48:60]], pal.lips, aa, _SHIFT)
    if lip_gap_px > 0.8:
        cv2.fillPoly(img, [pts[60:68]], pal.mouth, aa, _SHIFT)
    else:
        cv2.polylines(img, [pts[60:65]], False, pal.mouth, thick, aa, _SHIFT)


@lru_cache(maxsize=4)
def _noise_bank(seed: int, width: int, height: int, sigma: float, count: int = 4, pad: int = 32,
                tile: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian pixel noise with std ``sigma`` grey levels, split into its positive and negative parts, each uint8
    (count, H + pad, W + pad, 3). Frames add / subtract shifted windows of it with saturating uint8 arithmetic,
    which is far cheaper than drawing fresh noise for every frame. The bank repeats a ``tile`` x ``tile`` patch so
    that it costs the same at 1280x720 as at 320x180 (a repeat every 128 px is invisible under this much noise)."""
    rng = _rng(seed, _S_NOISE_BANK, width, height)
    patch = np.round(rng.standard_normal((count, tile, tile, 3), dtype=np.float32) * sigma)
    reps = (1, -(-(height + pad) // tile), -(-(width + pad) // tile), 1)
    bank = np.tile(patch, reps)[:, :height + pad, :width + pad]
    return np.clip(bank, 0, 255).astype(np.uint8), np.clip(-bank, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------------------------
# Rendering one clip
# --------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClipParams:
    """The parameters actually used for one clip (emotion-level values after actor and per-clip variation)."""

    face: FaceExpression
    voice: VoiceParams
    f0: float  # Hz, mean pitch of this clip
    speech_start: float
    speech_end: float


@dataclass(frozen=True)
class RenderedClip:
    """One clip before encoding.

    frames:    uint8 (T, H, W, 3) RGB, T = cfg.num_frames
    audio:     float32 (N,) mono in [-1, 1] at cfg.sample_rate, N = cfg.num_samples
    landmarks: float32 (T, 68, 2) [x, y] in pixels of the frame
    poses:     float32 (T, 4) [cx, cy, scale, roll_deg] of the head
    mouth:     float32 (T,) lip opening added by articulation while speaking (same units as mouth_open)
    """

    name: RavdessName
    frames: np.ndarray
    audio: np.ndarray
    landmarks: np.ndarray
    poses: np.ndarray
    mouth: np.ndarray
    params: ClipParams


def _jitter_face(e: FaceExpression, rng: np.random.Generator, amount: float) -> FaceExpression:
    # Always draw the same number of values, so the stream is emotion-independent.
    d = [float(v) for v in rng.normal(0.0, 1.0, 6) * amount]
    return FaceExpression(brow_raise=e.brow_raise + 0.15 * d[0], brow_tilt=e.brow_tilt + 0.15 * d[1],
                          eye_open=max(0.2, e.eye_open * (1 + 0.08 * d[2])), mouth_curve=e.mouth_curve + 0.12 * d[3],
                          mouth_open=max(0.0, e.mouth_open + 0.06 * d[4]),
                          mouth_width=e.mouth_width * (1 + 0.05 * d[5]))


def _head_poses(look: ActorLook, rng: np.random.Generator, cfg: SyntheticConfig, times: np.ndarray) -> np.ndarray:
    """Head pose per frame, float64 (T, 4) [cx, cy, scale, roll_deg]: actor position + drift + sway, clip jitter."""
    W, H = cfg.width, cfg.height
    scale = look.head_rx * H * rng.uniform(0.94, 1.06)
    c0 = np.array([look.center_x * W + rng.normal(0, 0.02 * W), look.center_y * H + rng.normal(0, 0.015 * H)])
    phase = rng.uniform(0, 2 * np.pi, 3)
    roll0 = look.roll_deg + rng.normal(0, 1.5)
    w = 2 * np.pi * look.sway_hz * times
    sway = look.sway * H * np.stack([np.sin(w + phase[0]), 0.6 * np.sin(1.3 * w + phase[1])], axis=1)
    centre = c0 + np.outer(times, look.drift) * H + sway
    # Keep the whole head (hair included) inside the frame.
    lo = np.array([1.15 * scale + 2, 1.5 * scale + 2])
    hi = np.maximum(lo, np.array([W - 1.15 * scale - 2, H - HEAD_RY * scale - 2]))
    centre = np.clip(centre, lo, hi)
    scales = scale * (1 + 0.015 * np.sin(0.9 * times + phase[2]))
    roll = roll0 + 2.0 * np.sin(0.7 * w + phase[1])
    return np.column_stack([centre, scales, roll])


def render_video(name: RavdessName, cfg: SyntheticConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                                     FaceExpression]:
    """Frames uint8 (T, H, W, 3) RGB, landmarks float32 (T, 68, 2), poses float32 (T, 4), articulation float32 (T,),
    and the expression used."""
    look = actor_look(cfg.seed, name.actor)
    rng = _rng(cfg.seed, _S_CLIP_FACE, *name.fields)
    W, H, T = cfg.width, cfg.height, cfg.num_frames
    times = np.arange(T) / cfg.fps

    expr = _jitter_face(face_expression(name.emotion, name.intensity).scaled(look.expressiveness), rng,
                        cfg.expression_jitter)
    # Lip articulation with its own, emotion-independent timing: sharing the voice's speaking rate would leak
    # the audio classes into the video.
    start, end = _speech_span(rng, cfg.duration)
    vis_syl = _syllables(rng, start, end, rng.uniform(3.0, 4.6))
    mouth = look.articulation * _envelope(times, vis_syl, rng.uniform(0.6, 1.0, len(vis_syl)))[0].astype(np.float64)
    blink = np.ones(T)
    for t_blink in np.cumsum(rng.exponential(2.5, 4)):
        blink -= 0.92 * np.exp(-0.5 * ((times - t_blink) / 0.05) ** 2)
    blink = np.clip(blink, 0.08, 1.0)
    light = float(rng.uniform(0.95, 1.05))
    poses = _head_poses(look, rng, cfg, times)

    local = face_landmarks_local(expr, mouth, blink)  # (T, 68, 2)
    anchors = np.broadcast_to(_ANCHORS, (T, *_ANCHORS.shape))
    px = _transform(np.concatenate([local, anchors], axis=1), poses)
    fixed = _fx(px)
    eye_hh = _EYE_HH * max(expr.eye_open, 0.15) * blink
    lip_gap = (local[:, 66, 1] - local[:, 62, 1]) * poses[:, 2]

    bg = np.empty((H, W, 3), dtype=np.uint8)
    grad = np.linspace(1.06, 0.9, H, dtype=np.float32)[:, None, None]
    bg[:] = np.clip(np.asarray(_colour(look.background, light), np.float32) * grad, 0, 255).astype(np.uint8)
    pal = _Palette.of(look, light)

    sigma = cfg.noise * 255.0
    plus, minus = _noise_bank(cfg.seed, W, H, round(sigma, 3)) if sigma > 0 else (None, None)
    prng = _rng(cfg.seed, _S_CLIP_PIXELS, *name.fields)
    frames = np.empty((T, H, W, 3), dtype=np.uint8)
    for i in range(T):
        img = frames[i]
        img[:] = bg
        _draw_face(img, fixed[i], float(poses[i, 2]), float(poses[i, 3]), float(eye_hh[i]), float(lip_gap[i]), pal)
        if plus is not None:
            k, dy, dx = prng.integers(len(plus)), prng.integers(plus.shape[1] - H), prng.integers(plus.shape[2] - W)
            cv2.add(img, plus[k, dy:dy + H, dx:dx + W], dst=img)
            cv2.subtract(img, minus[k, dy:dy + H, dx:dx + W], dst=img)
    return frames, px[:, :68].astype(np.float32), poses.astype(np.float32), mouth.astype(np.float32), expr


# Vowel formants (Hz, adult male): a, e, i, o, u.
_VOWELS = np.array([[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010], [570, 840, 2410], [300, 870, 2240]],
                   dtype=np.float64)
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


def render_clip(name: RavdessName, cfg: SyntheticConfig) -> RenderedClip:
    """Render frames, voice and landmarks of one clip (no encoding)."""
    frames, lms, poses, mouth, expr = render_video(name, cfg)
    audio, params = render_audio(name, cfg)
    return RenderedClip(name=name, frames=frames, audio=audio, landmarks=lms, poses=poses, mouth=mouth,
                        params=dataclasses.replace(params, face=expr))


# --------------------------------------------------------------------------------------------------------------------
# Writing: mp4 (PyAV) and OpenFace-style CSV
# --------------------------------------------------------------------------------------------------------------------

def write_mp4(path: Path, frames: np.ndarray, audio: np.ndarray, cfg: SyntheticConfig) -> None:
    """Encode frames uint8 (T, H, W, 3) RGB + audio float32 (N,) into ``path`` (H.264 yuv420p + AAC mono).

    Single-threaded x264 with fixed options so the output is reproducible; the caller makes the write atomic.
    """
    with av.open(str(path), "w", format="mp4", options={"fflags": "+bitexact"}) as container:
        video = container.add_stream("libx264", rate=cfg.fps)
        video.width, video.height, video.pix_fmt = cfg.width, cfg.height, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": str(cfg.crf)}
        video.codec_context.thread_count = 1
        sound = container.add_stream("aac", rate=cfg.sample_rate)
        sound.layout = "mono"
        sound.bit_rate = cfg.audio_bitrate
        sound.options = {"aac_coder": "fast"}  # ~2x faster than the default 'twoloop', quality is ample here

        for i, rgb in enumerate(frames):
            # cv2's I420 conversion is faster than letting libswscale do it inside the encoder.
            frame = av.VideoFrame.from_ndarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode(None))

        chunk = 1024  # AAC frame size
        for s in range(0, len(audio), chunk):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[None, s:s + chunk]), format="fltp",
                                               layout="mono")
            frame.sample_rate = cfg.sample_rate
            frame.pts = s
            container.mux(sound.encode(frame))
        container.mux(sound.encode(None))


_FILLER_BEFORE = ("gaze_0_x", "gaze_0_y", "gaze_0_z", "gaze_1_x", "gaze_1_y", "gaze_1_z", "gaze_angle_x",
                  "gaze_angle_y", "pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz")
_AUS_R = ("01", "02", "04", "05", "06", "07", "09", "10", "12", "14", "15", "17", "20", "23", "25", "26", "45")
_AUS_C = ("01", "02", "04", "05", "06", "07", "09", "10", "12", "14", "15", "17", "20", "23", "25", "26", "28", "45")


def csv_header() -> list[str]:
    """Column names, OpenFace 2.x order: meta, gaze, pose, 2-D landmarks x/y, 3-D landmarks X/Y/Z (upper case: a
    reader must match names case-sensitively), rigid shape params, AU intensities and presences."""
    cols = ["frame", "face_id", "timestamp", "confidence", "success", *_FILLER_BEFORE]
    cols += [f"x_{i}" for i in range(68)] + [f"y_{i}" for i in range(68)]
    cols += [f"{axis}_{i}" for axis in "XYZ" for i in range(68)]
    cols += ["p_scale", "p_rx", "p_ry", "p_rz", "p_tx", "p_ty"]
    cols += [f"AU{a}_r" for a in _AUS_R] + [f"AU{a}_c" for a in _AUS_C]
    return cols


def _action_units(e: FaceExpression, mouth_env: np.ndarray) -> np.ndarray:
    """Plausible AU intensities (T, 17) derived from the expression (so they carry only face information)."""
    T = len(mouth_env)
    r = np.zeros((T, len(_AUS_R)))
    col = {a: i for i, a in enumerate(_AUS_R)}
    r[:, col["01"]] = max(0.0, e.brow_tilt) * 2 + max(0.0, e.brow_raise)
    r[:, col["02"]] = max(0.0, e.brow_raise) * 2
    r[:, col["04"]] = max(0.0, -e.brow_tilt) * 2 + max(0.0, -e.brow_raise)
    r[:, col["05"]] = max(0.0, e.eye_open - 1) * 3
    r[:, col["07"]] = max(0.0, 1 - e.eye_open) * 3
    r[:, col["12"]] = max(0.0, e.mouth_curve) * 2.5
    r[:, col["15"]] = max(0.0, -e.mouth_curve) * 2.5
    r[:, col["25"]] = np.clip(e.mouth_open + mouth_env, 0, None) * 2
    r[:, col["26"]] = np.clip(e.mouth_open + mouth_env - 0.3, 0, None) * 2
    return np.clip(r, 0, 5)


def landmark_csv_text(clip: RenderedClip, cfg: SyntheticConfig) -> str:
    """The OpenFace-style CSV of a rendered clip: header + one row per frame, ', ' separated like OpenFace."""
    T = len(clip.landmarks)
    xs, ys = clip.landmarks[..., 0].astype(np.float64), clip.landmarks[..., 1].astype(np.float64)
    cx, cy, scale, roll = (clip.poses[:, i].astype(np.float64) for i in range(4))
    # A pinhole camera with focal length ~ frame width: fake but self-consistent 3-D values (mm).
    focal = float(cfg.width)
    depth = 600.0 * (cfg.height * 0.15) / scale
    X3 = (xs - cfg.width / 2) * depth[:, None] / focal
    Y3 = (ys - cfg.height / 2) * depth[:, None] / focal
    Z3 = depth[:, None] + 20 * np.cos(np.linspace(-1.5, 1.5, 68))[None, :]
    gaze = np.tile([0.05, 0.1, -0.99, -0.05, 0.1, -0.99, 0.0, 0.1], (T, 1))
    pose = np.stack([(cx - cfg.width / 2) * depth / focal, (cy - cfg.height / 2) * depth / focal, depth,
                     np.full(T, 0.1), np.zeros(T), np.deg2rad(roll)], axis=1)
    p = np.stack([scale / 100, np.full(T, 0.1), np.zeros(T), np.deg2rad(roll), cx, cy], axis=1)
    au_r = _action_units(clip.params.face, clip.mouth.astype(np.float64))
    au_c = (np.concatenate([au_r[:, :16], np.zeros((T, 1)), au_r[:, 16:]], axis=1) > 1.0).astype(np.float64)

    lines = [", ".join(csv_header())]
    fmt = ("%d, 0, %.3f, 0.98, 1, " + ", ".join(["%.3f"] * len(_FILLER_BEFORE)) + ", "
           + ", ".join(["%.1f"] * (68 * 5)) + ", " + ", ".join(["%.3f"] * 6) + ", "
           + ", ".join(["%.2f"] * len(_AUS_R)) + ", " + ", ".join(["%.0f"] * len(_AUS_C)))
    body = np.concatenate([gaze[:, :6], gaze[:, 6:], pose, xs, ys, X3, Y3, Z3, p, au_r, au_c], axis=1)
    for i in range(T):
        lines.append(fmt % (i + 1, i / cfg.fps, *body[i]))
    return "\n".join(lines) + "\n"


def _tmp_path(final: Path) -> Path:
    # Hidden, same folder (so os.replace is atomic), and not matching *.mp4 / *.csv globs of readers.
    return final.with_name(f".{final.name}{_TMP_TAG}{os.getpid()}")


def clip_paths(root: Path, name: RavdessName) -> tuple[Path, Path]:
    """(mp4, csv) paths of a clip under ``root``."""
    return root / f"Actor_{name.actor:02d}" / f"{name.stem}.mp4", root / "landmarks" / f"{name.stem}.csv"


def write_clip(root: str | Path, name: RavdessName, cfg: SyntheticConfig) -> bool:
    """Render and write the missing files of one clip (mp4 and/or CSV), each atomically. True if anything was written."""
    root = Path(root)
    mp4, csv = clip_paths(root, name)
    need_mp4, need_csv = not mp4.exists(), not csv.exists()
    if not (need_mp4 or need_csv):
        return False
    clip = render_clip(name, cfg)
    if need_mp4:
        mp4.parent.mkdir(parents=True, exist_ok=True)
        tmp = _tmp_path(mp4)
        try:
            write_mp4(tmp, clip.frames, clip.audio, cfg)
            os.replace(tmp, mp4)
        finally:
            tmp.unlink(missing_ok=True)
    if need_csv:
        csv.parent.mkdir(parents=True, exist_ok=True)
        tmp = _tmp_path(csv)
        try:
            tmp.write_text(landmark_csv_text(clip, cfg), encoding="utf-8")
            os.replace(tmp, csv)
        finally:
            tmp.unlink(missing_ok=True)
    return True


# --------------------------------------------------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------------------------------------------------

def _worker_init() -> None:
    cv2.setNumThreads(1)  # one process per core already; cv2's own pool would only contend


def _write_batch(root: str, fields: list[tuple[int, ...]], cfg: SyntheticConfig) -> int:
    written = 0
    for f in fields:
        name = RavdessName(*f)
        try:
            written += write_clip(root, name, cfg)
        except Exception as exc:  # name the clip: a bare traceback from a worker does not say which one failed
            raise RuntimeError(f"synthetic clip {name.stem}: {type(exc).__name__}: {exc}") from exc
    return written


def _check_config(root: Path, cfg: SyntheticConfig) -> None:
    wanted = cfg.to_json()
    for fname in (CONFIG_FILE, _PENDING_FILE):
        path = root / fname
        if not path.exists():
            continue
        try:
            found = json.loads(path.read_text(encoding="utf-8")).get("config")
        except (OSError, ValueError) as exc:
            raise SyntheticConfigMismatch(f"{path} is unreadable ({exc}); delete {root} or choose another root") \
                from exc
        if found != wanted:
            found = found if isinstance(found, dict) else {}
            diff = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
            detail = "; ".join(f"{k}: found {found.get(k)!r}, wanted {wanted.get(k)!r}" for k in diff)
            raise SyntheticConfigMismatch(
                f"{root} already holds a synthetic corpus generated with a different config ({path.name}: {detail}). "
                f"Delete the folder or choose another root.")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = _tmp_path(path)
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _remove_stale_tmp(root: Path) -> None:
    """Temp files of an interrupted run (their writer is gone; a clip is only ever final after os.replace)."""
    for folder in [root, root / "landmarks", *root.glob("Actor_*")]:
        if folder.is_dir():
            for tmp in folder.glob(f".*{_TMP_TAG}*"):
                tmp.unlink(missing_ok=True)


def _pool(workers: int) -> Executor:
    """Worker processes for clip rendering (forkserver, dying with this process: see ``cfnsr.data.worker_pool``)."""
    return process_pool(workers, initializer=_worker_init, preload=[__name__])


def generate_corpus(root: str | Path, workers: int = 2, progress: bool = True, cfg: SyntheticConfig | None = None,
                    **config: Any) -> Path:
    """Generate (or complete) the synthetic corpus under ``root``; returns ``root`` as a Path.

    config: ``SyntheticConfig`` fields as keywords (override ``cfg`` when both are given).
    Clips whose files exist are skipped (resume). Raises ``SyntheticConfigMismatch`` when ``root`` was generated with
    another config. ``<root>/synthetic.json`` ({"config": ..., "clips": N}) is written last, when every clip exists.
    """
    cfg = make_config(cfg, **config)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _check_config(root, cfg)
    _remove_stale_tmp(root)
    # Recorded before any clip, so that an interrupted run cannot be resumed with a different config either.
    if not (root / CONFIG_FILE).exists():
        _write_json(root / _PENDING_FILE, {"config": cfg.to_json()})

    names = selected_names(cfg)
    todo = [n for n in names if not all(p.exists() for p in clip_paths(root, n))]
    bar = None
    if progress and todo:
        from tqdm import tqdm
        bar = tqdm(total=len(todo), desc=f"synthetic corpus -> {root}", unit="clip", file=sys.stderr)
    try:
        if not todo:
            pass  # complete: nothing to render, no pool
        elif workers <= 1 or len(todo) <= 1:
            _worker_init()
            for n in todo:
                _write_batch(str(root), [n.fields], cfg)
                if bar:
                    bar.update(1)
        else:
            # Small batches: cheap task dispatch, yet both workers stay busy until the end.
            size = max(1, min(8, len(todo) // (workers * 4)))
            batches = [[n.fields for n in todo[i:i + size]] for i in range(0, len(todo), size)]
            with _pool(workers) as pool:
                futures = {pool.submit(_write_batch, str(root), b, cfg): len(b) for b in batches}
                for fut in as_completed(futures):
                    fut.result()
                    if bar:
                        bar.update(futures[fut])
    finally:
        if bar:
            bar.close()

    record = {"config": cfg.to_json(), "clips": len(names)}
    try:
        unchanged = json.loads((root / CONFIG_FILE).read_text(encoding="utf-8")) == record
    except (OSError, ValueError):
        unchanged = False
    if not unchanged:  # a complete corpus is left untouched: callers run this before every training run
        _write_json(root / CONFIG_FILE, record)
    (root / _PENDING_FILE).unlink(missing_ok=True)
    return root


# --------------------------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m cfnsr.data.synthetic",
                                 description="Generate a synthetic RAVDESS-format corpus (mp4 + landmark CSVs).")
    ap.add_argument("root", type=Path)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-progress", action="store_true")
    for f in dataclasses.fields(SyntheticConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "emotions":
            ap.add_argument(flag, type=int, nargs="+", default=None, help="emotion codes 1..8 (default: all)")
        elif f.name == "clips_per_actor":
            ap.add_argument(flag, type=int, default=None)
        else:
            ap.add_argument(flag, type=type(f.default), default=f.default, help=f"(default: {f.default})")
    return ap


def main(argv: Iterable[str] | None = None) -> int:
    args = _parser().parse_args(None if argv is None else list(argv))
    config = {f.name: getattr(args, f.name) for f in dataclasses.fields(SyntheticConfig)}
    import time
    t0 = time.perf_counter()
    try:
        root = generate_corpus(args.root, workers=args.workers, progress=not args.no_progress, **config)
    except (SyntheticConfigMismatch, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n = json.loads((root / CONFIG_FILE).read_text())["clips"]
    print(f"{n} clips in {root} ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
