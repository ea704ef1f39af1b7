"""EmotionDataModule on the tiny synthetic cache: built from config, splits, batches, and the errors a user sees."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from tests_helpers import compose_train

from cfnsr.builders.checkpoint_config import CheckpointConfigError, evaluation_config
from cfnsr.builders.corpus import build_corpus
from cfnsr.builders.objects import build_datamodule, fold_split
from cfnsr.data.cache import CacheError, cached_clips
from cfnsr.data.datamodule import EmotionDataModule, expected_clips


def _datamodule(data_dir: Path, tmp_path: Path, *overrides: str):
    cfg = compose_train(["fold=1", "protocol=clean", *overrides], data_dir, tmp_path / "out")
    return cfg, build_datamodule(cfg)


def test_splits_are_actor_disjoint_and_complete(tiny_data_dir: Path, tmp_path: Path):
    cfg, dm = _datamodule(tiny_data_dir, tmp_path, "data.storage=mmap")
    dm.setup("fit")
    split = fold_split(cfg)
    corpus = build_corpus(cfg)
    for part, actors in (("train", split.train_actors), ("val", split.val_actors), ("test", split.test_actors)):
        ds = dm.datasets[part]
        expected = expected_clips(corpus, actors)  # the tiny corpus has 6 of the fold scheme's actors
        assert len(ds) == sum(map(len, expected.values())) > 0
        assert set(ds.actors.tolist()) == {a for a, stems in expected.items() if stems}
    assert sum(len(d) for d in dm.datasets.values()) == len(cached_clips(cfg.data.cache_dir))


def test_batches_have_the_model_shapes_and_dtypes(tiny_data_dir: Path, tmp_path: Path):
    cfg, dm = _datamodule(tiny_data_dir, tmp_path, "data.batch_size=3", "data.eval_batch_size=5")
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    T, S = cfg.data.frames, cfg.data.size
    assert batch["video"].dtype == torch.uint8 and batch["video"].shape == (3, T, S, S, 3)
    assert batch["audio"].dtype == torch.float32 and batch["audio"].shape[:2] == (3, cfg.preprocess.n_mfcc)
    assert batch["label"].dtype == torch.long and ((0 <= batch["label"]) & (batch["label"] < 8)).all()
    out = dm.on_after_batch_transfer(batch, 0)  # no trainer: evaluation transform (normalise only)
    assert out["video"].dtype == torch.float32 and out["video"].shape == (3, 3, T, S, S)
    assert torch.isfinite(out["video"]).all()
    test = next(iter(dm.test_dataloader()))
    assert test["video"].shape[0] == min(5, len(dm.datasets["test"]))


def test_evaluation_loaders_visit_every_clip_once(tiny_data_dir: Path, tmp_path: Path):
    _, dm = _datamodule(tiny_data_dir, tmp_path, "data.eval_batch_size=4")
    dm.setup("test")
    seen = torch.cat([b["index"] for b in dm.test_dataloader()]).tolist()
    assert sorted(seen) == list(range(len(dm.datasets["test"])))


def test_missing_clip_is_named(tiny_data_dir: Path, tmp_path: Path):
    cfg, _ = _datamodule(tiny_data_dir, tmp_path)
    cache = tmp_path / "cache"
    shutil.copytree(cfg.data.cache_dir, cache)
    stem = next(s for s in cached_clips(cache) if s.endswith("-01"))  # an actor-1 clip: fold 1's test split
    shutil.rmtree(cache / "clips" / stem)
    _, dm = _datamodule(tiny_data_dir, tmp_path, f"data.cache_dir={cache}")
    with pytest.raises(CacheError, match=rf"test split .*{stem}"):
        dm.setup("test")
    _, lenient = _datamodule(tiny_data_dir, tmp_path, f"data.cache_dir={cache}", "data.allow_missing_clips=true")
    lenient.setup("test")
    assert stem not in lenient.datasets["test"].stems


def test_cache_of_other_settings_is_refused(tiny_data_dir: Path, tmp_path: Path):
    _, dm = _datamodule(tiny_data_dir, tmp_path, "preprocess.n_mfcc=20")
    with pytest.raises(CacheError, match="built with other preprocessing settings"):
        dm.setup("fit")


WIRED = {"batch_size": 3, "eval_batch_size": 5, "num_workers": 1, "pin_memory": True, "storage": "memory",
         "seed": 7, "allow_missing_clips": True}


def _values(dm: EmotionDataModule) -> dict:
    return {k: getattr(dm, k) for k in ("root", "cache_dir", *WIRED)}


def test_the_data_module_takes_its_values_from_the_users_data_keys(tiny_data_dir: Path, tmp_path: Path):
    overrides = [f"data.{k}={v}" for k, v in WIRED.items() if k != "seed"] + ["seed=7"]
    cfg, dm = _datamodule(tiny_data_dir, tmp_path, *overrides)
    assert type(dm) is EmotionDataModule and cfg.datamodule._target_.endswith(".EmotionDataModule")
    assert _values(dm) == {"root": Path(cfg.data.root), "cache_dir": Path(cfg.data.cache_dir), **WIRED}
    assert dm.split == fold_split(cfg) and dm.settings.hash and dm.corpus is not None


def test_a_saved_config_without_the_node_builds_the_same_data_module(tiny_data_dir: Path, tmp_path: Path):
    """A checkpoint saved before conf/datamodule/ existed: the shipped node is wired to the saved data keys."""
    cfg, dm = _datamodule(tiny_data_dir, tmp_path, "data.batch_size=3", "data.storage=memory")
    saved = OmegaConf.to_container(cfg, resolve=True)
    del saved["datamodule"]
    old = build_datamodule(OmegaConf.create(saved))
    assert _values(old) == _values(dm) and old.batch_size == 3 and old.storage == "memory"


def test_evaluate_never_takes_the_data_paths_from_a_saved_node(tiny_data_dir: Path, tmp_path: Path):
    """The saved ``datamodule`` node holds the training job's data.root: the rebuild wires the command's paths."""
    cfg, _ = _datamodule(tiny_data_dir, tmp_path)
    saved = OmegaConf.to_container(cfg, resolve=True)
    saved["datamodule"].update(root="/elsewhere/corpus", cache_dir="/elsewhere/cache")
    command = {"data": {"root": cfg.data.root, "cache_dir": cfg.data.cache_dir}, "paths": {"data_dir": None}}
    run = OmegaConf.create(evaluation_config(saved, command, "test.ckpt"))
    assert "datamodule" not in run
    dm = build_datamodule(run)
    assert (dm.root, dm.cache_dir) == (Path(cfg.data.root), Path(cfg.data.cache_dir))
    dm.setup("test")
    assert len(dm.datasets["test"]) > 0
    # the saved node's target is checked like any other before anything is built
    saved["datamodule"]["_target_"] = "builtins.print"
    with pytest.raises(CheckpointConfigError, match=r"datamodule\._target_: 'builtins.print'"):
        evaluation_config(saved, command, "test.ckpt")


def test_the_old_class_name_is_a_deprecated_alias():
    import cfnsr.data.datamodule as module

    with pytest.warns(DeprecationWarning, match="EmotionDataModule"):
        assert module.RavdessDataModule is EmotionDataModule
    with pytest.raises(AttributeError, match="NoSuchModule"):
        module.NoSuchModule  # noqa: B018 - the module's __getattr__ must not hide a wrong name
