"""RavdessDataModule on the tiny synthetic cache: splits, batches, and the errors a user sees."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from tests_helpers import compose_train

from cfnsr.builders.corpus import build_corpus
from cfnsr.builders.objects import build_datamodule, fold_split
from cfnsr.data.cache import CacheError, cached_clips
from cfnsr.data.datamodule import expected_clips


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
