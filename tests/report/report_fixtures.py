"""Synthetic ``metrics.json`` records with known numbers for the report tests (a unique module name, so it never
clashes with another directory's ``conftest``)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cfnsr.models.fusion.registry import fusion_facts
from cfnsr.runs.recipe import recipe_hash, training_recipe

N_TEST = 240  # clips per test fold, as in RAVDESS
SELECTION = {"paper": "best test epoch (paper protocol)", "clean": "best validation epoch (clean protocol)"}


def stage_of(fusion: str) -> str:
    """A shipped fusion's stage from its YAML; "Early" for the made-up ones."""
    facts = fusion_facts(fusion)
    return facts.stage if facts else "Early"


def paper_of(fusion: str) -> dict[str, Any] | None:
    facts = fusion_facts(fusion)
    return facts.paper if facts else None
FINISHED_AT = "2024-05-01T12:00:00+00:00"  # default finish time of fixture runs


def make_config(
    fusion: str,
    fold: int,
    seed: int,
    *,
    protocol: str = "paper",
    dataset: str = "synthetic",
    backbone: str = "tiny",
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A resolved train config shaped like conf/train.yaml's (trimmed); ``settings`` sets dotted keys."""
    cfg: dict[str, Any] = {
        "task_name": "train",
        "experiment_name": "test",
        "fold": fold,
        "seed": seed,
        "ckpt_path": None,
        "test_after_fit": True,
        "complexity": True,
        "paths": {"data_dir": "/data", "log_dir": "outputs", "output_dir": f"/out/{fusion}/{fold}/{seed}"},
        "data": {
            "name": dataset,
            "root": f"/data/{dataset}",
            "cache_dir": f"/data/{dataset}_cache",
            "num_classes": 8,
            "frames": 16,
            "size": 64,
            "batch_size": 16,
            "eval_batch_size": 32,
            "num_workers": 0,
            "pin_memory": False,
            "storage": "memory",
        },
        "preprocess": {
            "frames": 16,
            "size": 64,
            "crop_margin": 0.2,
            "squash_before_crop": False,
            "channel_order": "rgb",
            "sample_rate": 44100,
            "n_mfcc": 13,
            "workers": 2,
            "force": False,
        },
        "folds": {
            "name": "paper",
            "test_actors": [[4 * k - 3 + i for i in range(4)] for k in range(1, 7)],
            "val_actors": None,
        },
        "protocol": {"name": protocol, "selection": SELECTION[protocol]},
        "backbone": {"name": backbone, "video": {"layers": [1, 1, 1, 1] if backbone == "tiny" else [3, 4, 6, 3]}},
        "fusion": {
            "name": fusion,
            "stage": stage_of(fusion),
            "paper": paper_of(fusion),
            "model": {"_target_": f"cfnsr.models.fusion.{fusion}.Model"},
        },
        "model": {
            "init": {"video": None, "audio": None, "from_runs": None, "kinetics": None},
            "compile": False,
            "channels_last": False,
        },
        "augment": {"scale": [0.8, 1.0], "ratio": [0.75, 1.3333333], "flip": 0.5},
        "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1.0e-3, "weight_decay": 0.0},
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "max_epochs": 12,
            "deterministic": True,
            "log_every_n_steps": 10,
            "enable_progress_bar": False,
            "num_nodes": 1,
        },
        "logger": {"csv": {"save_dir": f"/out/{fusion}/{fold}/{seed}"}},
    }
    for key, value in (settings or {}).items():
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = copy.deepcopy(value)
    return cfg


def confusion_for(correct: int, n: int = N_TEST, k: int = 8) -> list[list[int]]:
    """A k x k confusion with ``correct`` clips on the diagonal and the rest one class off it."""
    cm = [[0] * k for _ in range(k)]
    per_class = [n // k + (1 if i < n % k else 0) for i in range(k)]
    left = correct
    for i in range(k):
        hit = min(per_class[i], left)
        left -= hit
        cm[i][i] = hit
        cm[i][(i + 1) % k] = per_class[i] - hit
    return cm


def make_record(
    fusion: str,
    fold: int,
    seed: int,
    correct: int,
    *,
    protocol: str = "paper",
    dataset: str = "synthetic",
    backbone: str = "tiny",
    status: str = "finished",
    last_correct: int | None = None,
    params: int = 26_301_417,
    run_dir: str = "",
    settings: Mapping[str, Any] | None = None,
    recipe: bool = True,
    finished_at: str | None = FINISHED_AT,
    run_id: str | None = None,
) -> dict[str, Any]:
    """A schema-1 record whose test WAR is ``correct / 240``; UAR is 1 point lower, F1 2 points lower.

    By default it carries what the training job records: ``recipe`` (of :func:`make_config` with ``settings``
    applied), ``recipe_hash``, ``run_id`` (a fresh uuid unless given) and ``finished_at``. ``recipe=False`` makes a
    record as written before recipes were stored (no recipe, recipe_hash, run_id or finished_at)."""
    war = correct / N_TEST
    last = (last_correct if last_correct is not None else correct - 12) / N_TEST
    selection = SELECTION[protocol]
    record = {
        "status": status,
        "error": None,
        "run_dir": run_dir,
        "experiment": "test",
        "dataset": dataset,
        "backbone": backbone,
        "fusion": fusion,
        "fusion_stage": stage_of(fusion),
        "protocol": protocol,
        "selection": selection,
        "folds": "paper",
        "fold": fold,
        "test_actors": [4 * fold - 3 + i for i in range(4)],
        "val_actors": [4 * fold - 3 + i for i in range(4)],
        "seed": seed,
        "params": params,
        "gflops": 1.5,
        "paper": paper_of(fusion),
        "epochs": 3,
        "best_epoch": 1,
        "test": {"war": war, "uar": war - 0.01, "f1": war - 0.02, "n": N_TEST, "confusion": confusion_for(correct)},
        "test_last": {"war": last, "uar": last, "f1": last, "n": N_TEST, "confusion": confusion_for(round(last * 240))},
    }
    if recipe:
        cfg = make_config(fusion, fold, seed, protocol=protocol, dataset=dataset, backbone=backbone, settings=settings)
        rec = training_recipe(cfg)
        record.update(recipe=rec, recipe_hash=recipe_hash(rec), run_id=run_id or str(uuid.uuid4()))
        if finished_at is not None:
            record["finished_at"] = finished_at
    else:
        record["schema"] = 1  # as written before recipes, run ids and finish times were recorded
    return record


# Correct clips out of 240 per (fusion, fold, seed): the "known numbers" the tests check against.
CORRECT = {
    ("cfnsr", 1, 1): 180, ("cfnsr", 1, 2): 184,
    ("cfnsr", 2, 1): 170, ("cfnsr", 2, 2): 172,
    ("cfnsr", 3, 1): 190, ("cfnsr", 3, 2): 186,
    ("msaf", 1, 1): 176, ("msaf", 2, 1): 168, ("msaf", 3, 1): 185,
    ("averaging", 1, 1): 160, ("averaging", 2, 1): 158, ("averaging", 3, 1): 170,
}  # fmt: skip

RunWriter = Callable[..., Path]
