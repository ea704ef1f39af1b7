"""The preprocessing job: ``python preprocess.py data=ravdess data.root=<dir>`` builds (or completes) the cache.

A CPU job: it imports the data layer only (no Lightning, no models; checked by import-linter, see
docs/architecture.md). The training and evaluation tasks run the same ``prepare_corpus`` before a run
(``cfnsr.builders.corpus.prepare_data``).
"""

from __future__ import annotations

import sys
from typing import Any

from omegaconf import DictConfig

from cfnsr.data.corpus import instantiate_corpus
from cfnsr.data.prepare import prepare_corpus
from cfnsr.data.settings import settings_from_config


def preprocess(cfg: DictConfig) -> dict[str, Any]:
    """Let the corpus (``cfg.data.corpus``) prepare its root (the synthetic one generates itself), then preprocess
    ``cfg.data.root`` into ``cfg.data.cache_dir`` with the settings of ``cfg.preprocess``; returns the report."""
    corpus = instantiate_corpus(cfg.data.corpus)
    return prepare_corpus(cfg.data.root, cfg.data.cache_dir, settings_from_config(cfg.preprocess), corpus,
                          workers=cfg.preprocess.workers,
                          force=cfg.preprocess.force, verify=cfg.preprocess.verify,
                          retry_failed=cfg.preprocess.retry_failed)


def main(cfg: DictConfig) -> None:
    """The entry point's body: errors a user can fix (not RAVDESS, nothing usable, wrong cache) end with exit 2."""
    try:
        preprocess(cfg)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"preprocess.py: {exc}", file=sys.stderr)
        sys.exit(2)
