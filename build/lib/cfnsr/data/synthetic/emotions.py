"""Emotion -> face expression and voice parameters: the class signal, with the confusable pairs of each modality."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


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
