"""The fusion strategies on Hydra's search path, and their facts, read from their YAML files only.

A fusion is one module (its ``FusionModel`` subclass) plus one ``fusion/<name>.yaml`` in a config folder on the
search path: ``conf/`` of this repository, and any folder added with ``hydra.searchpath=[file:///my/conf]``. The
YAML is the one place for everything said about the fusion::

    name: gated_sum          # = the file name; fusion=<name> on the command line
    stage: Late              # Late | Early | Model | Unimodal: the comparison table's "Fusion stage" column
    display: Gated sum       # optional: the table's row label (default: name)
    order: 35                # optional: position in tables (ascending; fusions without one follow, by name)
    paper: {accuracy: 70.1, params: 25.9M}   # optional: the number a paper reports, quoted next to ours
    model:
      _target_: my_package.gated_sum.GatedSum
      ...                    # every hyperparameter, with its value; the class holds no default

The report, the complexity CLI, ``scripts/reproduce_table.sh`` and the tests read these facts from here.
``python -m cfnsr.models.fusion.registry [--kind fused|unimodal] [hydra.searchpath=[...]] [other overrides]`` prints
the names, comma-separated, in table order.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"  # cfnsr/conf: the checkout's conf/ (a link) or the wheel's copy
STAGES = ("Unimodal", "Late", "Early", "Model")


@dataclass(frozen=True)
class FusionFacts:
    """What tables and tools say about one fusion; ``config`` is its whole YAML (unresolved)."""

    name: str
    stage: str
    display: str
    order: float  # inf when the YAML gives none: such fusions follow the ordered ones, by name
    paper: dict[str, Any] | None
    target: str
    config: DictConfig

    @property
    def sort_key(self) -> tuple[float, str]:
        return (self.order, self.name)


def searchpath_override(searchpath: Sequence[str]) -> list[str]:
    """``["hydra.searchpath=[a,b]"]`` for extra config folders (``file://...`` or ``pkg://...``), ``[]`` for none."""
    return [f"hydra.searchpath=[{','.join(searchpath)}]"] if searchpath else []


def facts_of(cfg: DictConfig, source: str = "fusion config") -> FusionFacts:
    """The facts of one composed fusion config (the ``fusion`` node); ValueError naming ``source`` if malformed."""
    missing = [k for k in ("name", "stage", "model") if k not in cfg]
    if missing:
        raise ValueError(f"{source}: missing key(s) {missing}; a fusion YAML needs name, stage and model._target_")
    if cfg.stage not in STAGES:
        raise ValueError(f"{source}: stage {cfg.stage!r} is not one of {list(STAGES)}")
    if "_target_" not in cfg.model:
        raise ValueError(f"{source}: model has no _target_ (the FusionModel class to build)")
    paper = cfg.get("paper")
    return FusionFacts(
        name=str(cfg.name),
        stage=str(cfg.stage),
        display=str(cfg.get("display") or cfg.name),
        order=float(cfg.order) if cfg.get("order") is not None else float("inf"),
        paper=OmegaConf.to_container(paper) if paper else None,
        target=str(cfg.model._target_),
        config=cfg,
    )


@functools.lru_cache(maxsize=8)
def _load(searchpath: tuple[str, ...]) -> dict[str, FusionFacts]:
    # Hydra's own loader, so the search path, pkg:// sources and defaults lists inside a fusion YAML behave exactly
    # as they do for train.py; it is separate from the global Hydra state, so this also works inside a Hydra app.
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.types import RunMode

    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(CONF_DIR)))
    extra = searchpath_override(searchpath)
    facts = {}
    for name in loader.get_group_options("fusion", config_name=None, overrides=extra):
        cfg = loader.load_configuration(config_name=None, overrides=[f"+fusion={name}", *extra], run_mode=RunMode.RUN)
        f = facts_of(cfg.fusion, f"fusion/{name}.yaml")
        if f.name != name:
            raise ValueError(f"fusion/{name}.yaml: its name is {f.name!r}; name must equal the file name")
        facts[name] = f
    return dict(sorted(facts.items(), key=lambda kv: kv[1].sort_key))


def fusion_registry(searchpath: Sequence[str] = ()) -> dict[str, FusionFacts]:
    """Every ``fusion/*.yaml`` on the search path (``conf/`` plus ``searchpath`` folders), name -> facts, in table
    order. The result is cached per search path; do not modify it."""
    return _load(tuple(searchpath))


def fusion_facts(name: str, searchpath: Sequence[str] = ()) -> FusionFacts | None:
    """One fusion's facts, or None if no ``fusion/<name>.yaml`` is on the search path."""
    return fusion_registry(searchpath).get(name)


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(description="Print the fusion names on the search path, in table order.")
    p.add_argument("--kind", choices=("all", "fused", "unimodal"), default="all",
                   help="fused: stage other than Unimodal; unimodal: stage Unimodal")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, as given to train.py: hydra.searchpath=[file:///"
                   "extra/conf,...] adds config folders; the others are ignored, so a script can pass its whole list")
    args = p.parse_args(argv)
    paths: list[str] = []
    for item in args.overrides:
        if item.startswith("hydra.searchpath="):
            paths += [v.strip() for v in item.split("=", 1)[1].strip("[]").split(",") if v.strip()]
    facts = fusion_registry(paths).values()
    wanted = {"all": set(STAGES), "fused": set(STAGES) - {"Unimodal"}, "unimodal": {"Unimodal"}}[args.kind]
    print(",".join(f.name for f in facts if f.stage in wanted))


if __name__ == "__main__":
    main(sys.argv[1:])
