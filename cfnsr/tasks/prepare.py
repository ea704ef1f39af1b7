"""The prepare step of a run: make (or complete) the corpus and its preprocessed cache before fit or test.

``train.py`` calls :func:`prepare_data` right before ``fit`` (a failure or a signal then leaves the run's full
record), ``evaluate.py`` before it builds the data module; the data module only reads the cache
(``cfnsr.data.datamodule``). One process in the whole job writes: global rank 0, as the launcher's
environment says (``cfnsr.runs.folder.global_rank_from_env``); on every other rank the step returns at once. This is
what Lightning's ``prepare_data`` hook with ``prepare_data_per_node=False`` gave, because the other ranks cannot read
the cache before rank 0 is done: under ``ddp_spawn`` (and ``ddp``, whose children the trainer launches in ``fit``)
the main process prepares before any other rank exists; under torchrun or SLURM every rank starts at once and the
others wait in process-group initialisation (Lightning's DDP strategy, in ``fit``/``test``) until rank 0 has prepared
and joins. Limit: unlike Lightning's hook, which ran inside a barrier without timeout, that wait lasts at most the
strategy's process-group timeout (Lightning's default: 30 minutes); preprocess a corpus that takes longer with
``python preprocess.py`` before the job (docs/trust.md#many-nodes-one-writer).
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from cfnsr.builders.corpus import build_corpus
from cfnsr.builders.objects import preprocess_settings
from cfnsr.data.prepare import prepare_corpus
from cfnsr.runs.folder import global_rank_from_env


def prepare_data(cfg: DictConfig) -> dict[str, Any] | None:
    """On global rank 0: let the corpus of ``cfg.data.corpus`` prepare ``cfg.data.root`` (the synthetic corpus
    generates itself), then preprocess it into ``cfg.data.cache_dir`` with ``cfg.preprocess`` (settings and run
    options); returns the preprocessing report. Both resume, so a complete corpus and cache cost a listing and a read
    of each entry's ``meta.json``. On any other rank: nothing, None.

    ``ValueError`` (naming ``data.corpus``) when the config has no corpus to prepare.
    """
    if global_rank_from_env() != 0:
        return None
    corpus = build_corpus(cfg)
    if corpus is None:
        raise ValueError(f"data.corpus: this config names no corpus class (and data.name={cfg.data.get('name')!r} "
                         f"has no shipped data/<name>.yaml), so there is nothing to prepare {cfg.data.root} with")
    p = cfg.preprocess
    return prepare_corpus(cfg.data.root, cfg.data.cache_dir, preprocess_settings(cfg), corpus, workers=p.workers,
                          force=p.force, verify=p.verify, retry_failed=p.retry_failed)
