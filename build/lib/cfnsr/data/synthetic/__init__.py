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

One concern per module, in reading order: ``config`` (settings, random streams), ``emotions`` (the class signal),
``actors``, ``timing`` (syllables), ``face`` (landmarks and drawing), ``video`` and ``voice`` (one clip's
frames and sound), ``writers`` (mp4 + CSV), ``corpus`` (all clips, resumable), ``cli``.

CLI: ``python -m cfnsr.data.synthetic <root> [--actors N] [--workers W] ...``
"""

from cfnsr.data.synthetic.actors import ActorLook, ActorVoice, actor_look, actor_voice
from cfnsr.data.synthetic.cli import main
from cfnsr.data.synthetic.config import (
    CONFIG_FILE,
    GENERATOR_VERSION,
    MIN_DURATION,
    SyntheticConfig,
    SyntheticConfigMismatch,
    make_config,
    selected_names,
)
from cfnsr.data.synthetic.corpus import generate_corpus
from cfnsr.data.synthetic.emotions import (
    FACE_BY_EMOTION,
    FACE_CONFUSABLE,
    NEUTRAL_FACE,
    VOICE_BY_EMOTION,
    VOICE_CONFUSABLE,
    FaceExpression,
    VoiceParams,
    face_expression,
    voice_params,
)
from cfnsr.data.synthetic.face import face_landmarks_local
from cfnsr.data.synthetic.video import ClipParams, RenderedClip, render_video
from cfnsr.data.synthetic.voice import render_audio
from cfnsr.data.synthetic.writers import clip_paths, csv_header, landmark_csv_text, render_clip, write_clip, write_mp4

__all__ = [
    "ActorLook", "ActorVoice", "actor_look", "actor_voice", "main", "CONFIG_FILE", "GENERATOR_VERSION",
    "MIN_DURATION", "SyntheticConfig", "SyntheticConfigMismatch", "make_config", "selected_names", "generate_corpus",
    "FACE_BY_EMOTION", "FACE_CONFUSABLE", "NEUTRAL_FACE", "VOICE_BY_EMOTION", "VOICE_CONFUSABLE", "FaceExpression",
    "VoiceParams", "face_expression", "voice_params", "face_landmarks_local", "ClipParams", "RenderedClip",
    "render_video", "render_audio", "clip_paths", "csv_header", "landmark_csv_text", "render_clip", "write_clip",
    "write_mp4",
]
