"""cfnsr.builders.corpus.prepare_data: the run's prepare step makes the corpus and the cache, on global rank 0 of
the job only."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf, open_dict
from tests_helpers import compose_train

from cfnsr.builders.corpus import prepare_data
from cfnsr.builders.objects import build_datamodule
from cfnsr.data.cache import cached_clips

# Three actors of two clips each (fold 1: test actor 1, validation 2, training 3): the synthetic corpus and its cache are made in a few seconds.
SMALL = ["data.generate.preset=interactions", "data.generate.actors=3", "data.generate.clips_per_actor=2",
         "folds.test_actors=[[1],[2]]"]
LAUNCHER_VARS = ("LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE",
                 "TORCHELASTIC_RUN_ID", "SLURM_NTASKS", "SLURM_NTASKS_PER_NODE", "SLURM_PROCID", "SLURM_JOB_NAME", "SLURM_JOB_ID",
                 "LSB_JOBID", "OMPI_COMM_WORLD_RANK", "PMI_RANK")


def _cfg(tmp_path: Path):
    return compose_train([*SMALL, f"data.root={tmp_path / 'corpus'}", f"data.cache_dir={tmp_path / 'cache'}"],
                         tmp_path, tmp_path / "out")


@pytest.fixture
def launcher(monkeypatch: pytest.MonkeyPatch):
    """Set the variables a launcher gives a process (none: a lone process, global rank 0)."""
    for name in LAUNCHER_VARS:
        monkeypatch.delenv(name, raising=False)

    def set_env(**env: str) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)

    return set_env


@pytest.mark.parametrize("env", [
    {"LOCAL_RANK": "1", "NODE_RANK": "0"},  # Lightning's ddp child on the first node
    {"LOCAL_RANK": "0", "NODE_RANK": "1"},  # local rank 0 of another node: global rank 0 alone writes, per job
    {"TORCHELASTIC_RUN_ID": "x", "RANK": "3", "GROUP_RANK": "1", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
     "WORLD_SIZE": "4"},  # torchrun
    {"SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "2", "SLURM_PROCID": "1", "SLURM_JOB_NAME": "train",
     "SLURM_JOB_ID": "7", "SLURM_LOCALID": "1", "SLURM_NODEID": "0"},  # srun with two tasks
], ids=["ddp-child", "node-1", "torchrun", "slurm"])
def test_a_non_zero_rank_writes_nothing(tmp_path: Path, launcher, env: dict[str, str]):
    launcher(**env)
    assert prepare_data(_cfg(tmp_path)) is None
    assert not (tmp_path / "corpus").exists() and not (tmp_path / "cache").exists()


def test_global_rank_zero_makes_the_corpus_and_the_cache_which_the_data_module_then_serves(tmp_path: Path, launcher):
    launcher(LOCAL_RANK="0", NODE_RANK="0")
    cfg = _cfg(tmp_path)
    report = prepare_data(cfg)
    assert sorted(report["processed"]) == cached_clips(tmp_path / "cache") and len(report["processed"]) == 6
    assert len(list((tmp_path / "corpus").glob("Actor_*/*.mp4"))) == 6
    again = prepare_data(cfg)  # complete: nothing to do
    assert again["processed"] == [] and sorted(again["reused"]) == sorted(report["processed"])
    dm = build_datamodule(cfg)
    dm.setup("fit")
    assert sorted(s for d in dm.datasets.values() for s in set(d.stems)) == sorted(report["processed"])
    assert dm.corpus_identity["clips"] == 6


def test_the_preprocess_run_options_come_from_the_config(tmp_path: Path, launcher):
    cfg = _cfg(tmp_path)
    first = prepare_data(cfg)
    with open_dict(cfg):
        cfg.preprocess.force = True
    forced = prepare_data(cfg)  # preprocess.force: every entry rebuilt
    assert sorted(forced["processed"]) == sorted(first["processed"]) and forced["reused"] == []


def test_a_config_without_a_corpus_is_refused_naming_the_key(tmp_path: Path, launcher):
    cfg = OmegaConf.to_container(_cfg(tmp_path), resolve=True)
    del cfg["data"]["corpus"]
    cfg["data"]["name"] = "mine"  # no shipped data/mine.yaml either
    with pytest.raises(ValueError, match=r"data\.corpus.*data.name='mine'"):
        prepare_data(OmegaConf.create(cfg))
    assert not (tmp_path / "cache").exists()
