"""YAML and code never restate each other's values: every setting a user may override is in conf/, and the class
it configures has no default for it (docs/configs.md)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from tests_helpers import CONF_DIR, SEARCHPATH, fusions

# Arguments the code passes when it instantiates a config (cfnsr.models.build.build_model): never in the YAML.
PASSED_BY_CODE = {"video", "audio", "num_classes"}
# Objects built from their own config nodes and passed per class (cfnsr.builders.objects.build_datamodule).
PASSED_BY_CODE_TO = {
    "cfnsr.data.datamodule.EmotionDataModule": {"settings", "corpus", "split", "augment"},  # builders.objects
    "cfnsr.callbacks.run_checkpoints.RunCheckpoints": {"dirpath", "run_id"},  # the run's own, tasks.train
}


def _targets(node: object, where: str) -> Iterator[tuple[str, DictConfig]]:
    """Every node holding a ``_target_`` under ``node``, with its location ``file:dotted.key``."""
    if not isinstance(node, DictConfig):
        return
    if "_target_" in node:
        yield where, node
    for key in node:
        yield from _targets(node._get_node(key), f"{where}.{key}" if not where.endswith(":") else f"{where}{key}")


def _all_targets() -> list[tuple[str, DictConfig]]:
    found = []
    for path in sorted(Path(CONF_DIR).rglob("*.yaml")):
        found += list(_targets(OmegaConf.load(path), f"{path.relative_to(CONF_DIR)}:"))
    for name, facts in fusions().items():  # fusions from extra folders (CFNSR_TEST_SEARCHPATH) as well
        if SEARCHPATH and not (Path(CONF_DIR) / "fusion" / f"{name}.yaml").is_file():
            found += list(_targets(facts.config, f"fusion/{name}.yaml:"))
    return found


TARGETS = _all_targets()
# Library classes: their defaults are not ours to remove, and the YAML pins the values the recipe depends on.
LIBRARIES = ("torch.", "pytorch_lightning.", "lightning.", "optuna.", "hydra.", "hydra_plugins.")
OWN = [(where, node) for where, node in TARGETS if not node._target_.startswith(LIBRARIES)]


def test_the_walk_finds_the_configs():
    classes = {node._target_.rsplit(".", 1)[1] for _, node in OWN}
    assert {"ResNeXt3D", "MFCCCNN", "ClipAugment", "CFNSR", "MSAF", "EmotionDataModule"} <= classes and len(OWN) >= 15


def problems(where: str, node: DictConfig, cls: type) -> list[str]:
    """What breaks the rule for one ``_target_`` node configuring ``cls`` (empty: fine)."""
    params = inspect.signature(cls).parameters
    keys = {str(k) for k in node if not str(k).startswith("_")}
    out = []
    defaulted = sorted(k for k in keys if k in params and params[k].default is not inspect.Parameter.empty)
    if defaulted:
        out.append(f"{where}: {defaulted} have a default in {node._target_} and a value in the YAML; remove the code "
                   f"default (a keyword-only argument without one) so the YAML is the only place")
    unknown = sorted(keys - set(params))
    if unknown and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        out.append(f"{where}: {unknown} are not arguments of {node._target_}")
    missing = sorted(
        name for name, p in params.items()
        if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and name not in keys and name not in PASSED_BY_CODE | PASSED_BY_CODE_TO.get(node._target_, set()))
    if missing:
        out.append(f"{where}: {node._target_} needs {missing}, which the YAML does not give")
    return out


@pytest.mark.parametrize(("where", "node"), OWN, ids=[w for w, _ in OWN])
def test_yaml_and_constructor_do_not_restate_each_other(where: str, node: DictConfig):
    assert problems(where, node, get_class(node._target_)) == []


def test_the_check_catches_each_kind_of_problem():
    class Block:
        def __init__(self, num_classes: int, *, width: int, depth: int = 2) -> None:
            self.width, self.depth = width, depth

    def check(**yaml: object) -> list[str]:
        return problems("b.yaml:", OmegaConf.create({"_target_": "x.Block", **yaml}), Block)

    assert check(width=4) == []
    (restated,) = check(width=4, depth=2)
    assert "['depth'] have a default" in restated
    (unknown,) = check(width=4, dpeth=3)
    assert "['dpeth'] are not arguments" in unknown
    (missing,) = check()
    assert "needs ['width']" in missing
