"""The corpus of a run config and the fold scheme over its speakers (``conf/data/``, ``conf/folds/``)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from cfnsr.data.corpus import DATA_CONF_DIR, Corpus, Speaker, instantiate_corpus
from cfnsr.data.folds import Split, make_split, resolve_test_speakers


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
