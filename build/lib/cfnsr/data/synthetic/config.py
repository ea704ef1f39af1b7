"""The generator's config and its deterministic random streams; where a corpus's clips and files go."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cfnsr.data.ravdess import NUM_ACTORS, RavdessName, av_speech_names

# Bump when the rendered content changes, so that an old corpus is not silently resumed with new clips.
GENERATOR_VERSION = 1
CONFIG_FILE = "synthetic.json"
_PENDING_FILE = ".synthetic.pending.json"
MIN_DURATION = 2.95  # the paper reads audio from 0.5 s for 2.45 s


class SyntheticConfigMismatch(RuntimeError):
    """``<root>`` already holds a synthetic corpus generated with another config."""



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
