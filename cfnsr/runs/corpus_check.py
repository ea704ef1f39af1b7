"""The corpus and cache a run trained on, as evidence for resuming it: saved in every checkpoint, compared on resume.

The training job computes them on global rank 0 once the corpus and cache are prepared (``cfnsr.tasks.train``); the
Lightning module writes them into every checkpoint under :data:`CORPUS_KEY` (``cfnsr.runs.checkpoint_files.RunIdentity``), and the
training job into ``metrics.json`` (``corpus_fingerprint``, ``cache_dir``). Standard library only: the report reads records with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# checkpoint key: {"corpus_fingerprint", "cache_dir", "cache_settings_hash"} ("clips" too in older checkpoints)
CORPUS_KEY = "cfnsr_corpus"
# What a resume compares (the settings hash is part of the recipe already; the clip count follows the corpus).
COMPARED_KEYS = ("corpus_fingerprint", "cache_dir")


def record_fields(identity: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run record's fields for a corpus identity (empty when the data was never set up)."""
    if not isinstance(identity, Mapping):
        return {}
    return {"corpus_fingerprint": identity.get("corpus_fingerprint"), "cache_dir": identity.get("cache_dir")}


def corpus_differences(saved: Mapping[str, Any] | None, now: Mapping[str, Any]) -> list[str]:
    """``"key: saved vs now"`` for each compared key that differs; none when the checkpoint records no corpus
    (written before corpus fingerprints existed)."""
    if not isinstance(saved, Mapping):
        return []
    return [f"{key}: {saved.get(key)} vs {now.get(key)}" for key in COMPARED_KEYS if saved.get(key) != now.get(key)]
