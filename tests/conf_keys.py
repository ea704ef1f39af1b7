"""The keys of the composed configs, read from the YAML files: each option of each group contributes its keys where
Hydra puts them (its ``# @package`` line, else its group's path), so every key any option can add is found without
composing every combination (composing each option costs ~0.3 s; reading it ~1 ms)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from cfnsr.runs.recipe import flatten

CONF = Path(__file__).resolve().parents[1] / "conf"


def option_keys(path: Path) -> dict[str, Any]:
    """One option YAML's flat keys as they land in the composed config; its ``defaults`` list is dropped."""
    text = path.read_text()
    package = re.search(r"^# @package (\S+)", text, re.M)
    group = path.parent.relative_to(CONF).as_posix().replace("/", ".")
    prefix = (package.group(1) if package else group).replace("_global_", "").strip(".")
    node = OmegaConf.to_container(OmegaConf.load(path), resolve=False) or {}
    node.pop("defaults", None)
    return flatten({prefix: node} if prefix else node)


def composed(config: str, overrides: list[str] | None = None) -> dict[str, Any]:
    """``python <entry>.py <overrides>``'s config as a plain dict, unresolved."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config, overrides=overrides or [])
    return OmegaConf.to_container(cfg, resolve=False)


def train_groups() -> list[str]:
    """The groups of the training config: those in conf/train.yaml's defaults list, and the groups their options
    choose from (``/search/pruner``)."""
    defaults = OmegaConf.load(CONF / "train.yaml").defaults
    groups = [next(iter(d)) for d in defaults if not isinstance(d, str) and next(iter(d)) != "hydra"]
    nested = {m for p in CONF.rglob("*.yaml") for m in re.findall(r"^\s+- /([\w/]+):", p.read_text(), re.M)}
    return groups + sorted(g for g in nested if (CONF / g).is_dir() and g not in groups)


def train_keys() -> dict[str, Any]:
    """Every flat key of the training config under any option of any of its groups, with one of its values."""
    flat = flatten(composed("train"))
    for group in train_groups():
        for path in sorted((CONF / group).glob("*.yaml")):
            flat.update(option_keys(path))
    return {k: v for k, v in flat.items() if not k.startswith("hydra.")}
