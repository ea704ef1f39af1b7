"""Every shipped config composes, and what it names can be built."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from tests_helpers import CONF_DIR, SEARCHPATH_OVERRIDE, fusions

from cfnsr.builders.objects import build_datamodule, clip_shapes, fold_split
from cfnsr.models.build import build_model
from cfnsr.models.fusion.registry import STAGES
from cfnsr.tasks.complexity import count_params

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
FUSIONS = list(fusions())


def _compose(overrides: list[str]):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("train", overrides=["paths.output_dir=unused", *SEARCHPATH_OVERRIDE, *overrides])


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_builds(experiment: str):
    cfg = _compose([f"experiment={experiment}"])
    with torch.device("meta"):
        model = build_model(cfg.backbone, cfg.fusion, cfg.data.num_classes)
    assert count_params(model) > 0
    dm = build_datamodule(cfg)
    assert dm.split == fold_split(cfg) and len(dm.split.test_actors) == 4
    instantiate(cfg.optimizer)(torch.nn.Linear(2, 2).parameters())
    if experiment.startswith("paper"):
        assert (cfg.backbone.name, cfg.data.name, cfg.protocol.name) == ("paper", "ravdess", "paper")
        assert cfg.trainer.max_epochs == 70 and cfg.data.batch_size == 4
        assert clip_shapes(cfg) == ((3, 30, 224, 224), (13, 212))


def test_experiment_settings_yield_to_the_command_line():
    cfg = _compose(["experiment=paper_unimodal", "data=synthetic", "backbone=tiny", "trainer.max_epochs=3"])
    assert (cfg.data.name, cfg.backbone.name, cfg.trainer.max_epochs) == ("synthetic", "tiny", 3)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_fusion_config_names_itself(fusion: str):
    cfg = _compose([f"fusion={fusion}"])
    assert cfg.fusion.name == fusion and cfg.fusion.stage in STAGES


@pytest.mark.parametrize("folds", ["paper", "cfnsr5"])
def test_every_fold_of_each_scheme_splits(folds: str):
    cfg = _compose([f"folds={folds}"])
    for fold in range(1, len(cfg.folds.test_actors) + 1):
        cfg.fold = fold
        for protocol in ("paper", "clean"):
            cfg.protocol.name = protocol
            split = fold_split(cfg)
            assert not set(split.train_actors) & set(split.test_actors)


def test_preprocess_cli_exits_nonzero_on_a_folder_that_is_not_ravdess(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("hello")
    done = subprocess.run([sys.executable, "preprocess.py", "data=ravdess", f"data.root={tmp_path}",
                           f"data.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'run'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert str(tmp_path) in done.stderr
