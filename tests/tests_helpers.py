"""Helpers shared by the end-to-end tests (imported by name: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from cfnsr.models.fusion.registry import FusionFacts, fusion_registry, searchpath_override

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

# Extra config folders for the whole suite, e.g. CFNSR_TEST_SEARCHPATH=file:///my/conf: the fusions in their
# fusion/*.yaml are then tested like the shipped ones (tests/test_add_fusion.py does this with a toy fusion).
SEARCHPATH = [p for p in os.environ.get("CFNSR_TEST_SEARCHPATH", "").split(",") if p]
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
TINY_DATA = [
    "data.generate.actors=6", "data.generate.width=160", "data.generate.height=90", "data.generate.fps=10",
    "data.generate.duration=3.1", "data.frames=8", "data.size=32",
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


def compose_eval(overrides: list[str], output_dir: Path) -> DictConfig:
    """The config ``python evaluate.py <overrides>`` would get, writing to ``output_dir``."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"paths.output_dir={output_dir}", "trainer.enable_progress_bar=false",
                                             *SEARCHPATH_OVERRIDE, *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg
