"""The descriptive fields of a run record, from the run's resolved config (shared by training and evaluation)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from cfnsr.builders.objects import fold_split
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


def run_metadata(cfg: DictConfig, params: int, gflops: float | None) -> dict[str, Any]:
    """The descriptive fields of a run record (everything but the results)."""
    split = fold_split(cfg)
    recipe = training_recipe(OmegaConf.to_container(cfg, resolve=True))
    return {
        "experiment": cfg.experiment_name,
        "dataset": cfg.data.name,
        "backbone": cfg.backbone.name,
        "fusion": cfg.fusion.name,
        "fusion_stage": cfg.fusion.stage,
        "fusion_display": cfg.fusion.get("display"),  # the YAML's facts travel with the run, for the report
        "fusion_order": cfg.fusion.get("order"),
        "protocol": cfg.protocol.name,
        "selection": cfg.protocol.selection,
        "folds": cfg.folds.name,
        "fold": cfg.fold,
        "test_actors": list(split.test_actors),
        "val_actors": list(split.val_actors),
        "seed": cfg.seed,
        "params": params,
        "gflops": gflops,
        "paper": OmegaConf.to_container(cfg.fusion.paper) if cfg.fusion.get("paper") else None,
        "recipe": recipe,
        "recipe_hash": recipe_hash(recipe),
        **provenance(cfg),
    }
