"""Names that changed, in one place: what old command lines, records and checkpoints say, and what it means now.

Three readers, three rules:

* **Command line** (``rename_overrides``, called by the ``cfnsr/cli/*.py`` mains before Hydra parses ``sys.argv``):
  an old key or fusion name is rewritten to the new one, with one warning per old name that names the new one.
  Sweeps (``fusion=multiplication,msaf``, ``fusion=choice(...)``) are rewritten value by value.
* **Saved configs** (``current_config``, applied by ``cfnsr.runs.checkpoint_files.load_checkpoint`` to every
  checkpoint's ``cfnsr_config``): an old checkpoint is read as if written under the new names, so evaluate,
  predict, resume and ``init.*`` sources rebuild it from the shipped configs.
* **Recipes** (``stored_recipe``, applied by ``cfnsr.runs.recipe.clean_recipe``): a recipe keeps the *first* name of
  each renamed key and value, so the recipe hash of a run is the same under the old and the new names, and the
  hashes in existing records stay valid. The report maps an old record's ``fusion`` to the new name
  (``current_fusion``), so old and new runs of one fusion share one row.

Standard library only: the report and the run files read records without the training stack.
"""

from __future__ import annotations

import copy
import re
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

# Fusion names: old -> new. The table's display names stay "Multiplication" and "Multiplicative".
FUSION_NAMES: dict[str, str] = {
    "multiplication": "prob_product",  # prediction: the product of the streams' softmax probabilities
    "multiplicative": "multiplicative_loss",  # Liu et al. 2018: the down-weighted loss; prediction: their mean
}
# The fusion classes those names built: old _target_ -> new.
FUSION_TARGETS: dict[str, str] = {
    "cfnsr.models.fusion.multiplication.Multiplication": "cfnsr.models.fusion.prob_product.ProbProduct",
    "cfnsr.models.fusion.multiplicative.Multiplicative": "cfnsr.models.fusion.multiplicative_loss.MultiplicativeLoss",
}
# Config keys (dotted, the key and everything under it): old -> new.
CONFIG_KEYS: dict[str, str] = {
    "complexity": "measure_gflops",  # train.yaml's flag; the complexity *task* keeps its name
    "model.init": "init",  # the `model` group held initialisation options, not the model: now the `init` group
    "model.compile": "speed.compile",  # execution options of the network: train.yaml's `speed` node
    "model.channels_last": "speed.channels_last",
}

_warned: set[str] = set()


def warn_renamed(old: str, new: str, what: str) -> None:
    """One ``FutureWarning`` per old name per process, naming the new one."""
    if old in _warned:
        return
    _warned.add(old)
    # Attributed to the command line, not to a line of this module (which the default format would quote).
    warnings.warn_explicit(f"{what} {old!r} is deprecated, use {new!r} (the old name still works)", FutureWarning,
                           filename="command line", lineno=0)


def current_fusion(name: str) -> str:
    """The current name of a fusion as a record or checkpoint names it (an old name mapped, others unchanged)."""
    return FUSION_NAMES.get(name, name)


def _renamed_key(key: str) -> tuple[str, str] | None:
    """(old prefix, new prefix) when dotted ``key`` is an old key or lies under one."""
    for old, new in CONFIG_KEYS.items():
        if key == old or key.startswith(old + "."):
            return old, new
    return None


_FUSION_WORD = re.compile(r"\b(" + "|".join(map(re.escape, FUSION_NAMES)) + r")\b")
_OVERRIDE = re.compile(r"^(?P<prefix>~|\+\+|\+)?(?P<key>[A-Za-z_][\w.]*)(?P<rest>(@[\w.:]+)?=.*)?$", re.S)


def rename_override(arg: str) -> str:
    """One Hydra override with old keys and fusion names replaced (a warning per old name); anything else as is."""
    m = _OVERRIDE.match(arg)
    if m is None:
        return arg
    prefix, key, rest = m["prefix"] or "", m["key"], m["rest"] or ""
    renamed = _renamed_key(key)
    if renamed is not None:
        old, new = renamed
        warn_renamed(old, new, "config key")
        key = new + key[len(old):]
    if key == "fusion" and rest.startswith("="):
        def one(match: re.Match) -> str:
            warn_renamed(match[1], FUSION_NAMES[match[1]], "fusion")
            return FUSION_NAMES[match[1]]

        rest = "=" + _FUSION_WORD.sub(one, rest[1:])
    return prefix + key + rest


def rename_overrides(args: Sequence[str]) -> list[str]:
    """A command line's arguments with every override passed through ``rename_override`` (flags untouched)."""
    return [a if a.startswith("-") else rename_override(a) for a in args]


def rename_argv() -> None:
    """Rewrite ``sys.argv`` in place before ``hydra.main`` parses it (the cli mains call this)."""
    sys.argv[1:] = rename_overrides(sys.argv[1:])


def _move(cfg: dict[str, Any], old: str, new: str) -> None:
    """Move nested key ``old`` (dotted) to ``new`` in ``cfg`` when present and ``new`` is not."""
    *parents, leaf = old.split(".")
    node: Any = cfg
    for p in parents:
        node = node.get(p) if isinstance(node, dict) else None
    if not isinstance(node, dict) or leaf not in node:
        return
    *new_parents, new_leaf = new.split(".")
    target = cfg
    for p in new_parents:
        target = target.setdefault(p, {})
        if not isinstance(target, dict):
            return
    if new_leaf not in target:
        target[new_leaf] = node.pop(leaf)


def current_config(saved: Any) -> Any:
    """A saved run config (plain dict, as checkpoints hold it) under the current names; a copy. Not a mapping:
    returned as is (the checks that follow refuse it)."""
    if not isinstance(saved, Mapping):
        return saved
    cfg = copy.deepcopy(dict(saved))
    for old, new in CONFIG_KEYS.items():
        _move(cfg, old, new)
    if cfg.get("model") == {}:  # the old `model` node, emptied by the moves above
        del cfg["model"]
    fusion = cfg.get("fusion")
    if isinstance(fusion, dict):
        if isinstance(fusion.get("name"), str):
            fusion["name"] = current_fusion(fusion["name"])
        model = fusion.get("model")
        if isinstance(model, dict) and isinstance(model.get("_target_"), str):
            model["_target_"] = FUSION_TARGETS.get(model["_target_"], model["_target_"])
    return cfg


# Recipe keys and values under their first names (see the module docstring).
_STORED_KEYS = {new: old for old, new in CONFIG_KEYS.items()}
_STORED_VALUES: dict[str, dict[str, str]] = {
    "fusion.name": {new: old for old, new in FUSION_NAMES.items()},
    "fusion.model._target_": {new: old for old, new in FUSION_TARGETS.items()},
}


def stored_key(key: str) -> str:
    """A flat recipe key under its first name (``measure_gflops`` -> ``complexity``)."""
    for new, old in _STORED_KEYS.items():
        if key == new or key.startswith(new + "."):
            return old + key[len(new):]
    return key


def stored_recipe(flat: Mapping[str, Any]) -> dict[str, Any]:
    """A flat recipe with renamed keys and values under their first names, so its hash does not change."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        key = stored_key(key)
        values = _STORED_VALUES.get(key)
        out[key] = values.get(value, value) if values is not None and isinstance(value, str) else value
    return out
