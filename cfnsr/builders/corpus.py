"""The corpus of a run config, its preparation, and the fold scheme over its speakers (``conf/data/``,
``conf/folds/``).

Preparation (:func:`prepare_data`) is a step of a run: make (or complete) the corpus and its preprocessed cache
before fit or test.

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

from omegaconf import DictConfig, OmegaConf

from cfnsr.data.corpus import DATA_CONF_DIR, Corpus, Speaker, instantiate_corpus
from cfnsr.data.folds import Split, make_split, resolve_test_speakers
from cfnsr.data.prepare import prepare_corpus
from cfnsr.data.settings import settings_from_config
from cfnsr.runs.folder import global_rank_from_env


def build_corpus(cfg: DictConfig) -> Corpus | None:
    """The corpus object of ``cfg.data.corpus``. A run config saved before the corpus seam has no such key: its
    corpus is the one of the shipped ``conf/data/<data.name>.yaml`` (with the run's ``data.generate``); None when
    there is no such file."""
    node = cfg.data.get("corpus")
    if node is None:
        node = _shipped_corpus_node(cfg)
        if node is None:
            return None
    return instantiate_corpus(node)


def _shipped_corpus_node(cfg: DictConfig) -> DictConfig | None:
    name = cfg.data.get("name")
    path = DATA_CONF_DIR / f"{name}.yaml"
    if not isinstance(name, str) or not path.is_file():
        return None
    shipped = OmegaConf.load(path)
    data = shipped.get("data", shipped)  # a global-package data config holds its keys under data:
    if data.get("corpus") is None:
        return None
    data.generate = cfg.data.get("generate")
    data.root = cfg.data.get("root")
    root = OmegaConf.create({"data": data})
    node = root.data.corpus
    OmegaConf.resolve(root)  # the node's ${data.*} refer to the shipped file's keys and the run's generate/root
    return root.data.corpus if node is not None else None


def corpus_speakers(cfg: DictConfig) -> list[Speaker] | None:
    """Every speaker of the run's corpus, or None for an old run config (the fold scheme then lists actors 1..24,
    as it always did)."""
    corpus = build_corpus(cfg)
    return None if corpus is None else corpus.speakers(cfg.data.get("root"))


def fold_test_speakers(cfg: DictConfig) -> list[list[Speaker]]:
    """Test speakers per fold of ``cfg.folds``: listed (paper schemes), a split file, or k-fold of the speakers."""
    if cfg.folds.get("test_actors") is not None:
        return [list(block) for block in cfg.folds.test_actors]
    speakers = corpus_speakers(cfg)
    if speakers is None:
        raise ValueError(f"folds={cfg.folds.get('name')!r} computes its folds from the corpus's speakers, but this "
                         f"config has no data.corpus")
    return resolve_test_speakers(cfg.folds, speakers)


def fold_split(cfg: DictConfig, protocol: str | None = None) -> Split:
    """The train/val/test speakers of ``cfg.fold`` (under ``protocol``, default ``cfg.protocol.name``)."""
    test = fold_test_speakers(cfg)
    return make_split(test, cfg.fold, protocol or cfg.protocol.name, val_actors=cfg.folds.get("val_actors"),
                      search_val_actors=cfg.folds.get("search_val_actors"), speakers=corpus_speakers(cfg))


def fold_scheme_record(cfg: DictConfig) -> dict[str, Any]:
    """What a record says about the fold scheme: its name, how it was made and every fold's test speakers."""
    return {"name": cfg.folds.get("name"), "k": cfg.folds.get("k"), "path": cfg.folds.get("path"),
            "test_speakers": fold_test_speakers(cfg)}


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
    return prepare_corpus(cfg.data.root, cfg.data.cache_dir, settings_from_config(cfg.preprocess), corpus, workers=p.workers,
                          force=p.force, verify=p.verify, retry_failed=p.retry_failed)
