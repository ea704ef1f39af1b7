"""cfnsr.runs.recipe: what counts as the training recipe, its hash and the difference listing."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest

from cfnsr.runs.recipe import (
    EXECUTION_PREFIXES,
    INIT_PATH_KEYS,
    WHERE_PREFIXES,
    clean_recipe,
    recipe_differences,
    recipe_hash,
    training_recipe,
)


def base_cfg() -> dict[str, Any]:
    """A resolved config shaped like conf/train.yaml's (``OmegaConf.to_container(cfg, resolve=True)``)."""
    return {
        "task_name": "train",
        "experiment_name": "demo",
        "fold": 1,
        "seed": 1234,
        "ckpt_path": None,
        "test_after_fit": True,
        "complexity": True,
        "paths": {"data_dir": "/data", "log_dir": "outputs", "output_dir": "/out/run1"},
        "data": {
            "name": "synthetic", "root": "/data/synthetic_ravdess", "cache_dir": "/data/synthetic_ravdess_cache",
            "num_classes": 8, "frames": 16, "size": 64, "batch_size": 16, "eval_batch_size": 32, "num_workers": 0,
            "pin_memory": False, "storage": "memory", "generate": {"actors": 24, "seed": 0},
        },
        "preprocess": {
            "frames": 16, "size": 64, "crop_margin": 0.2, "squash_before_crop": False, "channel_order": "rgb",
            "sample_rate": 44100, "audio_offset": 0.5, "n_mfcc": 13, "workers": 2, "force": False,
        },
        "folds": {"name": "paper", "test_actors": [[1, 2, 3, 4], [5, 6, 7, 8]], "val_actors": None},
        "protocol": {"name": "clean", "selection": "best validation epoch (clean protocol)"},
        "backbone": {"name": "tiny", "video": {"layers": [1, 1, 1, 1], "cardinality": 4}},
        "fusion": {
            "name": "cfnsr", "stage": "Model", "paper": {"accuracy": 75.76, "params": "26.30M"},
            "model": {"_target_": "cfnsr.models.fusion.cfnsr.CFNSR", "num_layers": 5, "residual": True},
        },
        "model": {
            "init": {"video": None, "audio": None, "from_runs": None, "kinetics": None},
            "compile": False,
            "channels_last": False,
        },
        "augment": {"scale": [0.8, 1.0], "ratio": [0.75, 1.3333333], "flip": 0.5},
        "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1.0e-3, "weight_decay": 0.0},
        "trainer": {
            "_target_": "pytorch_lightning.Trainer", "accelerator": "cpu", "devices": 1, "max_epochs": 12,
            "deterministic": True, "log_every_n_steps": 10, "num_sanity_val_steps": 0,
            "enable_model_summary": False, "enable_progress_bar": True, "num_nodes": 1,
        },
        "logger": {"csv": {"_target_": "pytorch_lightning.loggers.CSVLogger", "save_dir": "/out/run1"}},
    }  # fmt: skip


def with_setting(key: str, value: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(base_cfg())
    node = cfg
    *parents, leaf = key.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
    return cfg


BASE_HASH = recipe_hash(training_recipe(base_cfg()))


def test_recipe_is_flat_sorted_and_json() -> None:
    recipe = training_recipe(base_cfg())
    assert list(recipe) == sorted(recipe)
    assert recipe["trainer.max_epochs"] == 12 and recipe["optimizer.lr"] == 1.0e-3
    assert recipe["folds.test_actors"] == [[1, 2, 3, 4], [5, 6, 7, 8]]  # lists are values, not flattened
    assert recipe["fusion.model.num_layers"] == 5 and recipe["data.batch_size"] == 16
    assert json.loads(json.dumps(recipe)) == recipe
    assert "fusion.paper.accuracy" not in recipe  # quoted numbers, not a setting


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("fold", 3),
        ("seed", 7),
        ("paths.output_dir", "/elsewhere"),
        ("paths.data_dir", "/mnt/data"),
        ("experiment_name", "other"),
        ("task_name", "other"),
        ("ckpt_path", "/out/run1/checkpoints/last.ckpt"),
        ("run_id", "3f0c"),
        ("hydra.run.dir", "/x"),
        ("logger.wandb.name", "cfnsr-fold3"),
        ("data.root", "/other/root"),
        ("data.cache_dir", "/other/cache"),
        ("trainer.devices", 4),
        ("trainer.num_nodes", 2),
        ("trainer.accelerator", "gpu"),
        ("trainer.strategy", "ddp"),
        ("trainer.enable_progress_bar", False),
        ("trainer.log_every_n_steps", 50),
        ("trainer.enable_model_summary", True),
        ("data.num_workers", 8),
        ("data.pin_memory", True),
        ("data.storage", "mmap"),
        ("data.eval_batch_size", 64),
        ("preprocess.workers", 16),
        ("preprocess.force", True),
        ("preprocess.verify", True),
        ("preprocess.retry_failed", True),
        ("test_after_fit", False),
        ("complexity", False),
        ("model.compile", True),
        ("resume.enabled", True),
    ],
)
def test_where_and_execution_settings_do_not_change_the_hash(key: str, value: Any) -> None:
    recipe = training_recipe(with_setting(key, value))
    assert recipe_hash(recipe) == BASE_HASH
    assert recipe_differences(training_recipe(base_cfg()), recipe) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("trainer.max_epochs", 1),
        ("optimizer.lr", 1.0e-4),
        ("optimizer.weight_decay", 1.0e-5),
        ("optimizer._target_", "torch.optim.SGD"),
        ("data.batch_size", 4),
        ("augment.flip", 0.0),
        ("augment.scale", [1.0, 1.0]),
        ("preprocess.crop_margin", 0.0),
        ("preprocess.squash_before_crop", True),
        ("preprocess.channel_order", "bgr"),
        ("preprocess.sample_rate", 22050),
        ("fusion.model.num_layers", 2),
        ("fusion.model.residual", False),
        ("fusion.name", "msaf"),
        ("backbone.video.cardinality", 32),
        ("protocol.name", "paper"),
        ("folds.name", "cfnsr5"),
        ("data.name", "ravdess"),
        ("data.frames", 30),
        ("trainer.precision", "bf16-mixed"),
        ("trainer.deterministic", False),
        ("model.init.video", "/ckpt/video.ckpt"),
        ("model.init.weights", "/ckpt/all.ckpt"),
    ],
)
def test_training_settings_change_the_hash_and_are_named(key: str, value: Any) -> None:
    changed = training_recipe(with_setting(key, value))
    assert recipe_hash(changed) != BASE_HASH
    diffs = recipe_differences(training_recipe(base_cfg()), changed)
    assert len(diffs) == 1 and diffs[0].startswith(f"{key}: ")


def test_prefixes_match_whole_segments() -> None:
    assert "fold" in WHERE_PREFIXES and "seed" in WHERE_PREFIXES
    recipe = training_recipe(base_cfg())
    assert "folds.name" in recipe  # "fold" does not swallow "folds.*"
    assert "data.generate.seed" in recipe  # only the top-level seed is excluded
    assert not any(k.startswith(("paths.", "logger.")) or k in ("fold", "seed") for k in recipe)
    assert "trainer.devices" in EXECUTION_PREFIXES and "trainer.devices" not in recipe


def test_init_paths_reduce_to_booleans() -> None:
    plain = training_recipe(base_cfg())
    assert {k: plain[k] for k in INIT_PATH_KEYS} == dict.fromkeys(INIT_PATH_KEYS, False)
    fold1 = with_setting("model.init.video", "/runs/uni/fold=1/checkpoints/best.ckpt")
    fold1["model"]["init"]["from_runs"] = "outputs/paper_unimodal"
    fold2 = with_setting("model.init.video", "/runs/uni/fold=2/checkpoints/best.ckpt")
    fold2["model"]["init"]["from_runs"] = "/elsewhere/paper_unimodal"
    r1, r2 = training_recipe(fold1), training_recipe(fold2)
    assert r1["model.init.video"] is True and r1["model.init.from_runs"] is True
    assert r1["model.init.audio"] is False and r1["model.init.kinetics"] is False
    assert recipe_hash(r1) == recipe_hash(r2)  # per-fold checkpoint paths: the same recipe
    assert recipe_hash(r1) != BASE_HASH
    assert not any(isinstance(v, str) and "ckpt" in v for v in r1.values())


def test_clean_recipe_is_idempotent_and_reapplies_the_rules() -> None:
    recipe = training_recipe(base_cfg())
    assert clean_recipe(recipe) == recipe
    old_style = {**recipe, "trainer.devices": 8, "model.init.video": "/a/b.ckpt"}
    cleaned = clean_recipe(old_style)
    assert "trainer.devices" not in cleaned and cleaned["model.init.video"] is True


def test_hash_is_short_stable_and_order_independent() -> None:
    recipe = training_recipe(base_cfg())
    h = recipe_hash(recipe)
    assert len(h) == 12 and all(c in "0123456789abcdef" for c in h)
    assert recipe_hash(dict(reversed(list(recipe.items())))) == h
    # Pinned to the documented algorithm: sha256 over key-sorted, whitespace-free JSON, first 12 hex digits.
    assert recipe_hash({"b": [1, 2], "a": 1}) == hashlib.sha256(b'{"a":1,"b":[1,2]}').hexdigest()[:12]


def test_differences_lines() -> None:
    a = {"optimizer.lr": 0.001, "trainer.max_epochs": 12, "only.a": "x", "same": [1, 2]}
    b = {"optimizer.lr": 0.0001, "trainer.max_epochs": 1, "only.b": True, "same": [1, 2]}
    assert recipe_differences(a, b) == [
        "only.a: x vs (absent)",
        "only.b: (absent) vs true",
        "optimizer.lr: 0.001 vs 0.0001",
        "trainer.max_epochs: 12 vs 1",
    ]
    assert recipe_differences(a, dict(a)) == []


def test_options_added_later_at_their_neutral_value_leave_the_recipe_unchanged():
    old = {"trainer": {"max_epochs": 3}, "augment": {"flip": 0.5}, "data": {"batch_size": 4},
           "protocol": {"name": "clean"}}
    new = {"trainer": {"max_epochs": 3}, "augment": {"flip": 0.5, "modality_dropout": 0.0},
           "data": {"batch_size": 4, "allow_missing_clips": False}, "protocol": {"name": "clean", "objective": "val/war"}}
    assert recipe_hash(training_recipe(old)) == recipe_hash(training_recipe(new))
    on = {**new, "augment": {"flip": 0.5, "modality_dropout": 0.3}}
    assert training_recipe(on)["augment.modality_dropout"] == 0.3


def test_the_data_module_node_leaves_the_recipe_unchanged():
    """``conf/datamodule/`` repeats data.* keys (and data.root, the seed): a run with it has the recipe of a run
    recorded before it existed, whatever paths it holds; the batch size still counts, under data.batch_size."""
    node = {"_target_": "cfnsr.data.datamodule.EmotionDataModule", "root": "/data/synthetic_ravdess",
            "cache_dir": "/data/synthetic_ravdess_cache", "batch_size": 16, "eval_batch_size": 32, "num_workers": 0,
            "pin_memory": False, "storage": "memory", "seed": 1234, "allow_missing_clips": False}
    assert recipe_hash(training_recipe(with_setting("datamodule", node))) == BASE_HASH
    moved = with_setting("datamodule", {**node, "root": "/elsewhere", "seed": 1})
    assert recipe_hash(training_recipe(moved)) == BASE_HASH
    assert recipe_hash(training_recipe(with_setting("data.batch_size", 4))) != BASE_HASH
