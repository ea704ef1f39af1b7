"""The descriptive fields of a run record, from the run's resolved config (shared by training and evaluation)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from cfnsr.builders.corpus import build_corpus, fold_scheme_record, fold_split
from cfnsr.runs.provenance import code_version, effective_batch
from cfnsr.runs.recipe import recipe_hash, training_recipe


def provenance(cfg: DictConfig) -> dict[str, Any]:
    """How the run's settings were chosen: ``search`` for a trial of a hyperparameter search (its study and trial
    number: the report lists such runs apart from the comparison), ``hparams`` for a run whose settings a search
    chose (``python -m cfnsr.search export``)."""
    out: dict[str, Any] = {}
    search = cfg.get("search")
    if search is not None and search.get("trial") is not None:
        out["search"] = {"study": search.get("study"), "trial": int(search.trial), "outer_fold": cfg.fold,
                         "objective": cfg.protocol.get("objective")}
    if cfg.get("hparams"):
        out["hparams"] = OmegaConf.to_container(cfg.hparams, resolve=True)
    return out


def _class_names(cfg: DictConfig) -> list[str] | None:
    """``data.class_names``; for a run config saved before that key, the shipped corpus's (None if unknown)."""
    if cfg.data.get("class_names") is not None:
        return [str(n) for n in cfg.data.class_names]
    corpus = build_corpus(cfg)
    return None if corpus is None else list(corpus.class_names)


def run_metadata(cfg: DictConfig, params: int, gflops: float | None) -> dict[str, Any]:
    """The descriptive fields of a run record (everything but the results)."""
    split = fold_split(cfg)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    recipe = training_recipe(resolved)
    return {
        "experiment": cfg.experiment_name,
        "dataset": cfg.data.name,
        "class_names": _class_names(cfg),  # the confusion matrix's rows, in label order
        "backbone": cfg.backbone.name,
        "fusion": cfg.fusion.name,
        "fusion_stage": cfg.fusion.stage,
        "fusion_display": cfg.fusion.get("display"),  # the YAML's facts travel with the run, for the report
        "fusion_order": cfg.fusion.get("order"),
        "protocol": cfg.protocol.name,
        "selection": cfg.protocol.selection,
        "folds": cfg.folds.name,
        "fold_scheme": fold_scheme_record(cfg),  # every fold's test speakers: the split is evidence, not a name
        "fold": cfg.fold,
        "test_actors": list(split.test_actors),
        "val_actors": list(split.val_actors),
        "train_actors": list(split.train_actors),
        "seed": cfg.seed,
        "params": params,
        "gflops": gflops,
        # The paper's figures are RAVDESS numbers: quoted beside runs on a corpus that says it is comparable only.
        "paper": (OmegaConf.to_container(cfg.fusion.paper)
                  if cfg.fusion.get("paper") and cfg.data.get("paper_table") else None),
        "recipe": recipe,
        "recipe_hash": recipe_hash(recipe),
        # Per-optimiser-step clips from the config (the training job replaces it with the trainer's world size);
        # the report's rows and resume compare it (cfnsr.runs.provenance).
        "effective_batch": effective_batch(resolved),
        "code_version": code_version(),
        **provenance(cfg),
    }


def part_of_data_flags(trainer_cfg: Any, limits: tuple[str, ...]) -> list[str]:
    """The trainer settings that make a job see only part of its data: ``fast_dev_run``, ``overfit_batches`` and
    each ``limits`` key (``limit_test_batches``, ...) not covering its whole split. A limit that is an int counts
    batches (``1`` is one batch), a float is a fraction (``1.0`` is the whole split)."""
    t = trainer_cfg or {}
    flags = [f"trainer.{k}={t[k]}" for k in ("fast_dev_run", "overfit_batches") if t.get(k)]
    for key in limits:
        limit = t.get(key)
        if limit is not None and (isinstance(limit, int) or limit != 1.0):
            flags.append(f"trainer.{key}={limit}")
    return flags
