"""Helpers shared by the end-to-end tests (imported by name: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from cfnsr.models.fusion.registry import FusionFacts, fusion_registry, searchpath_override


def unavailable(reason: str) -> None:
    """Skip a test that lacks something; under ``CI=true`` (where .ci/run installs everything) fail instead."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"unavailable under CI=true: {reason}")
    pytest.skip(reason)


def require_module(name: str, extra: str) -> Any:
    """``pytest.importorskip`` that fails under ``CI=true``: a broken install must not pass as a skip."""
    try:
        return __import__(name, fromlist=["_"])
    except ImportError as exc:
        unavailable(f"{name} not importable ({exc}); pip install -e '.[{extra}]'")


CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

# Extra config folders for the whole suite: the fusions in their fusion/*.yaml are tested like the shipped ones (every
# test parametrised over fusions() runs over them). By default the README's example fusion, committed as a user would
# write it outside the package (tests/fixtures/user_fusion: code/gated_sum.py, conf/fusion/gated_sum.yaml), so plain
# `pytest` checks that adding a fusion needs no other edit; CFNSR_TEST_SEARCHPATH=file:///my/conf[,...] replaces it
# with a user's folders (their code on PYTHONPATH).
USER_FUSION_DIR = Path(__file__).resolve().parent / "fixtures" / "user_fusion"
if "CFNSR_TEST_SEARCHPATH" in os.environ:
    SEARCHPATH = [p for p in os.environ["CFNSR_TEST_SEARCHPATH"].split(",") if p]
else:
    SEARCHPATH = [f"file://{USER_FUSION_DIR / 'conf'}"]
    # its module is importable like a user's on PYTHONPATH (Hydra instantiates ``gated_sum.GatedSum``)
    if str(USER_FUSION_DIR / "code") not in sys.path:
        sys.path.append(str(USER_FUSION_DIR / "code"))
SEARCHPATH_OVERRIDE = searchpath_override(SEARCHPATH)


def fusions() -> dict[str, FusionFacts]:
    """Every fusion on the test search path (conf/ plus CFNSR_TEST_SEARCHPATH), name -> facts, in table order."""
    return fusion_registry(SEARCHPATH)


def load_conf(group: str, name: str, **overrides: object) -> DictConfig:
    """The config ``<group>=<name>`` (a fusion from any folder on the test search path, else conf/<group>/), with
    dotted-key overrides such as ``model.beta=0``; values are the YAML's, so tests build what users build."""
    if group == "fusion":
        if name not in fusions():
            raise KeyError(f"no fusion/{name}.yaml on the search path {[CONF_DIR, *SEARCHPATH]}")
        cfg = OmegaConf.create(OmegaConf.to_container(fusions()[name].config))  # a free, editable copy
    else:
        cfg = OmegaConf.load(Path(CONF_DIR) / group / f"{name}.yaml")
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value)
    return cfg


def make(group: str, name: str, node: str | None = None, **kwargs: Any) -> Any:
    """Instantiate ``<group>/<name>.yaml`` (or its ``node``, e.g. a backbone's ``video``) with the YAML's values;
    ``kwargs`` are the arguments code passes (``num_classes``) or a test's deliberate changes."""
    cfg = load_conf(group, name)
    # _partial_ then call: the class's own exception reaches the test, not Hydra's wrapper.
    return instantiate(cfg[node] if node else cfg, _partial_=True, _convert_="all")(**kwargs)

# A corpus small enough to make and preprocess in ~20 s: 6 actors, 3 folds of 2 actors, 8 frames of 32x32.
TINY_FOLDS = "folds.test_actors=[[1,2],[3,4],[5,6]]"
# The legacy preset with all 60 clips per actor: the corpus these tests were written for (the default corpus is the
# interactions preset; tests of it use INTERACTIONS_DATA).
TINY_DATA = [
    "data.generate.actors=6", "data.generate.width=160", "data.generate.height=90", "data.generate.fps=10",
    "data.generate.duration=3.1", "data.frames=8", "data.size=32", "data.generate.preset=legacy",
    "data.generate.clips_per_actor=null",
]
# The interactions corpus at the size of its diagnostics tests: 10 actors x 32 clips (4 per class), 5 folds of 2 test
# actors, so a run trains on 6 actors (192 clips) and tests 16 clips per interaction type.
INTERACTIONS_DATA = [
    "data.generate.preset=interactions", "data.generate.actors=10", "data.generate.clips_per_actor=32",
    "folds.test_actors=[[1,2],[3,4],[5,6],[7,8],[9,10]]",
]
# Only the synergy pair of the interactions corpus, both intensities: 12 actors x 16 clips; a run trains on 8 actors
# (128 clips) and tests 32 clips, all of them synergy.
SYNERGY_DATA = [
    "data.generate.preset=interactions", "data.generate.actors=12", "+data.generate.emotions=[6,7]",
    "data.generate.clips_per_actor=null", "folds.test_actors=[[1,2],[3,4],[5,6],[7,8],[9,10],[11,12]]",
]


def compose_train(overrides: list[str], data_dir: Path, output_dir: Path, config_name: str = "train") -> DictConfig:
    """The config ``python train.py <overrides>`` would get, on the tiny corpus, writing to ``output_dir``."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name, overrides=[
            TINY_FOLDS, *TINY_DATA, f"paths.data_dir={data_dir}", f"paths.output_dir={output_dir}",
            "trainer.enable_progress_bar=false", "preprocess.workers=0", *SEARCHPATH_OVERRIDE, *overrides,
        ])
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def compose_eval(overrides: list[str], output_dir: Path, data_dir: Path | None = None) -> DictConfig:
    """The config ``python evaluate.py <overrides>`` would get, writing to ``output_dir``; ``data_dir`` is the
    ``paths.data_dir`` holding the corpus (evaluate never takes data paths from the checkpoint)."""
    data = [f"paths.data_dir={data_dir}"] if data_dir is not None else []
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"paths.output_dir={output_dir}", "trainer.enable_progress_bar=false",
                                             *SEARCHPATH_OVERRIDE, *data, *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def interrupted_run(monkeypatch: pytest.MonkeyPatch, cfg: DictConfig) -> None:
    """Train ``cfg`` (2 epochs or more) and kill it at the start of its second epoch, as a crash would: the run
    folder is left with ``last.ckpt`` of epoch 0 and a record that is not finished."""
    from cfnsr.module import EmotionModule
    from cfnsr.tasks.train import train

    original = EmotionModule.on_train_epoch_start

    def crash(self: EmotionModule) -> None:
        if self.current_epoch == 1:
            raise RuntimeError("simulated kill")
        original(self)

    monkeypatch.setattr(EmotionModule, "on_train_epoch_start", crash)
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(cfg)
    monkeypatch.setattr(EmotionModule, "on_train_epoch_start", original)
