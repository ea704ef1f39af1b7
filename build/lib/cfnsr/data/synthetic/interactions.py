"""The ``interactions`` preset: every class pair of the corpus has one declared, known interaction type.

Four pairs of RAVDESS emotion codes, each with the cue that separates its two classes:

* **redundant** (1 neutral, 3 happy): each class has its own face AND its own voice; either modality alone suffices.
* **video_unique** (4 sad, 5 angry): two faces, ONE shared voice (heard in no other class): only the face separates
  the pair. An audio-only model knows the pair, not the class: 50 % on these classes.
* **audio_unique** (2 calm, 8 surprised): two voices, ONE shared face (seen in no other class): only the voice
  separates the pair; a video-only model gets 50 % on them.
* **synergy** (6 fearful, 7 disgust): a face bit and a voice bit, each drawn from two looks / two voices seen in no
  other class. Class 6 has equal bits, class 7 different bits (label = face bit XOR voice bit). Within the pair each
  bit is half 0, half 1 in both classes, so either modality alone is at chance (50 %) and so is any fusion whose class
  scores are a sum of a video term and an audio term: for the pair's score difference ``d(f, v) = g(f) + h(v)``,
  ``d(0,0) + d(1,1) = d(0,1) + d(1,0)``, so the four cells cannot have the signs (+, -, -, +) that XOR needs; at
  most 3 of the 4 equally frequent cells are right, 75 %. A fusion that mixes the features before its classifier
  can reach 100 %.

The bits come from the clip's repetition number (1|2), which nothing in the rendering shows: face bit =
repetition - 1, voice bit = face bit XOR (emotion == 7). Every actor has each (statement, intensity) cell with both
repetitions, so both bits are balanced per actor, per statement and per intensity.

Everything else (actor, head motion, articulation, jitter, noise) is rendered as in the ``legacy`` preset.
``manifest()`` is written as ``<root>/interactions.json``; the training job reads it to report test accuracy per
interaction type (``cfnsr.runs.diagnostics``).
"""

from __future__ import annotations

from typing import Any

from cfnsr.data.ravdess import EMOTIONS, RavdessName
from cfnsr.data.synthetic.emotions import (
    _FACE_FEAR,
    _FACE_HAPPY,
    _FACE_SAD,
    _STRONG_FACE,
    _VOICE_ANGRY,
    _VOICE_BRIGHT,
    _VOICE_LOW,
    _VOICE_NEUTRAL,
    _VOICE_TREMBLE,
    NEUTRAL_FACE,
    FaceExpression,
    VoiceParams,
)

MANIFEST_FILE = "interactions.json"
INTERACTION_TYPES: tuple[str, ...] = ("redundant", "video_unique", "audio_unique", "synergy")
MANIFEST_VERSION = 1

# Class pairs (RAVDESS emotion codes) per interaction type.
PAIRS: dict[str, tuple[int, int]] = {
    "redundant": (1, 3),
    "video_unique": (4, 5),
    "audio_unique": (2, 8),
    "synergy": (6, 7),
}
_SYNERGY_ODD = 7  # the synergy class whose face and voice bits differ

# The synergy pair's two looks and two voices: far from each other and from every other class's. Both voices are
# breathy (a whisper-like aspiration no other class has), so the pair itself is easy to hear; the bits are extremes
# of pitch and speaking rate (the rate shows in the MFCC energy envelope), and of eyes, brows and mouth.
_FACE_SYN = (
    FaceExpression(brow_raise=1.0, brow_tilt=0.0, eye_open=0.25, mouth_curve=0.0, mouth_open=0.0, mouth_width=0.6),
    FaceExpression(brow_raise=-0.8, brow_tilt=-1.0, eye_open=1.7, mouth_curve=0.8, mouth_open=1.0, mouth_width=1.4),
)
_VOICE_SYN = (
    VoiceParams(0.62, 0.3, 0.0, 0.0, 1.8, 0.5, -11.0, 0.9, 0.9),  # very low, flat, slow
    VoiceParams(1.9, 8.0, -5.0, 0.0, 6.5, 0.5, -6.0, 0.9, 1.12),  # very high, wide falling, fast
)

# The video-unique pair must differ clearly at 32x32: legacy's angry face (narrowed eyes, a slight frown) was
# mistaken for the sad one in 9 of 32 test clips; this one glares (wide eyes under low brows) with a firm frown.
_FACE_GLARE = FaceExpression(brow_raise=-0.8, brow_tilt=-1.0, eye_open=1.45, mouth_curve=-0.6, mouth_open=0.05,
                             mouth_width=0.8)
_FACE: dict[int, FaceExpression] = {1: NEUTRAL_FACE, 3: _FACE_HAPPY, 4: _FACE_SAD, 5: _FACE_GLARE,
                                    2: _FACE_FEAR, 8: _FACE_FEAR}
_VOICE: dict[int, VoiceParams] = {1: _VOICE_NEUTRAL, 3: _VOICE_BRIGHT, 4: _VOICE_TREMBLE, 5: _VOICE_TREMBLE,
                                  2: _VOICE_LOW, 8: _VOICE_ANGRY}


def interaction_of(emotion: int) -> str:
    """The interaction type of an emotion code 1..8."""
    for kind, pair in PAIRS.items():
        if emotion in pair:
            return kind
    raise ValueError(f"emotion code {emotion} is not in 1..8")


def cue_bits(name: RavdessName) -> tuple[int, int] | None:
    """(face bit, voice bit) of a synergy clip, None for the other classes."""
    if name.emotion not in PAIRS["synergy"]:
        return None
    face = name.repetition - 1
    return face, face ^ int(name.emotion == _SYNERGY_ODD)


def face_expression_of(name: RavdessName) -> FaceExpression:
    """The clip's expression (before actor expressiveness and per-clip jitter), intensity applied as in legacy."""
    bits = cue_bits(name)
    expr = _FACE_SYN[bits[0]] if bits is not None else _FACE[name.emotion]
    return expr.scaled(_STRONG_FACE if name.intensity == 2 else 1.0)


def voice_params_of(name: RavdessName) -> VoiceParams:
    """The clip's voice parameters (before the actor's voice and per-clip jitter)."""
    bits = cue_bits(name)
    voice = _VOICE_SYN[bits[1]] if bits is not None else _VOICE[name.emotion]
    return voice.scaled(name.intensity == 2)


def manifest() -> dict[str, Any]:
    """The JSON written beside the corpus: class -> interaction type, and what carries each class.

    ``classes`` is keyed by the 0-based label index as a string (the labels the models predict: emotion code - 1).
    """
    classes = {}
    for emotion in range(1, 9):
        kind = interaction_of(emotion)
        if kind == "synergy":
            cue = {"face": "bit = repetition - 1 (two looks)",
                   "voice": "bit = face bit" + (" XOR 1" if emotion == _SYNERGY_ODD else "") + " (two voices)"}
        else:
            cue = {"face": "own look" if kind in ("redundant", "video_unique") else "look shared with its pair",
                   "voice": "own voice" if kind in ("redundant", "audio_unique") else "voice shared with its pair"}
        classes[str(emotion - 1)] = {"emotion": emotion, "name": EMOTIONS[emotion - 1], "interaction": kind, "cue": cue}
    return {
        "version": MANIFEST_VERSION,
        "preset": "interactions",
        "types": list(INTERACTION_TYPES),
        "pairs": {k: [e - 1 for e in v] for k, v in PAIRS.items()},
        "chance_within_pair": 0.5,
        "late_fusion_bound": {"synergy": 0.75},
        "classes": classes,
    }
