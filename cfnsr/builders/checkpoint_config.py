"""A checkpoint's saved config is evidence, not instructions: what ``evaluate.py``, ``predict.py`` and the crop-gap
tool may take from it, and what they take from the command instead.

A checkpoint that passed ``weights_only=True`` still carries a config whose ``_target_`` entries Hydra would import
and call; Hydra's blocklist is not a security boundary. So, before anything is instantiated:

* every ``_target_`` anywhere in the saved config must be a class the project's own configs name at that place:
  ``fusion.*`` the ``fusion/<fusion.name>.yaml`` on Hydra's search path (``cfnsr.models.fusion.registry``; a user's
  own fusion YAML in ``--config-dir`` / ``hydra.searchpath`` counts), ``backbone.*`` the ``backbone/<backbone.name>.yaml``,
  any other top-level key ``<group>.*`` a target found at the same place in one of that group's options
  (``optimizer/adam.yaml``, ``augment/*.yaml``, ``trainer/*.yaml``, ...). Anything else is refused with the key path;
* string interpolations (``${...}``) are refused: a saved config is resolved, and a resolver is code too;
* where files live and how the job runs never come from the checkpoint: ``data.root``, ``data.cache_dir``, the
  ``paths`` and ``logger`` nodes, and the preprocessing run options (``workers``, ``force``, ``verify``,
  ``retry_failed``) are the command's (or the defaults of the dataset's YAML); ``data.generate`` is used only to
  *check* that the corpus at the command's root is the synthetic corpus the run was trained on, never to write one.

What the checkpoint does supply is the recipe (architecture, preprocessing settings, class names, fold scheme); the
data module compares the preprocessing settings with the cache's ``settings.json`` and refuses a mismatch.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from cfnsr.models.fusion.registry import CONF_DIR, fusion_registry, searchpath_override
from cfnsr.runs.checkpoint_files import CheckpointError
from cfnsr.runs.recipe import NEUTRAL_VALUES

# Preprocessing keys that say how a job runs, not what the cache holds (conf/preprocess/default.yaml's run options).
PREPROCESS_RUN_OPTIONS = ("workers", "force", "verify", "retry_failed")
# Top-level nodes of a saved config that are never used by a rebuild (where the training job wrote and logged; the
# data module's wiring, which holds the training job's data.root: it is rebuilt from conf/datamodule/).
DROPPED_NODES = ("paths", "logger", "ckpt_path", "datamodule")
# Groups whose option is chosen by the saved config's ``<group>.name``: their targets must be that option's.
NAMED_GROUPS = ("fusion", "backbone")


class CheckpointConfigError(CheckpointError):
    """A checkpoint's saved config asks for something a rebuild does not do; the message names the key."""


def hydra_searchpath() -> list[str]:
    """The extra config folders of the running Hydra app (``hydra.searchpath`` and ``--config-dir``), [] outside
    one."""
    try:
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.get()
    except Exception:  # noqa: BLE001 - no Hydra app running (tests, library use): only conf/
        return []
    out = [str(p) for p in (hc.searchpath or [])]
    for src in hc.runtime.config_sources:
        if src.provider == "command-line" and src.schema in ("file", "pkg"):
            out.append(f"{src.schema}://{src.path}")
    return out


@functools.lru_cache(maxsize=64)
def _group_options(group: str, searchpath: tuple[str, ...]) -> dict[str, Any]:
    """``{option: its composed node (plain, unresolved)}`` for every option of ``group`` on the search path."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.types import RunMode

    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(CONF_DIR)))
    extra = searchpath_override(searchpath)
    out: dict[str, Any] = {}
    try:
        names = loader.get_group_options(group, config_name=None, overrides=extra)
    except Exception:  # noqa: BLE001 - not a group: nothing in it is known
        return out
    for name in names:
        try:
            cfg = loader.load_configuration(config_name=None, overrides=[f"+{group}={name}", *extra],
                                            run_mode=RunMode.RUN)
        except Exception:  # noqa: BLE001 - e.g. data/cremad.yaml overrides the folds default: compose it in train
            try:
                cfg = loader.load_configuration(config_name="train", overrides=[f"{group}={name}", *extra],
                                                run_mode=RunMode.RUN)
            except Exception:  # noqa: BLE001 - an option that composes nowhere names no known target
                continue
        node = cfg.get(group)
        out[name] = OmegaConf.to_container(node, resolve=False) if node is not None else None
    return out


def group_option(group: str, name: str, searchpath: Sequence[str] = ()) -> Any:
    """The composed ``<group>/<name>.yaml`` node (plain, unresolved), None when there is no such option."""
    if group == "fusion":
        facts = fusion_registry(tuple(searchpath)).get(name)
        return None if facts is None else OmegaConf.to_container(facts.config, resolve=False)
    return _group_options(group, tuple(searchpath)).get(name)


def _walk(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every (path, leaf value) of nested dicts and lists."""
    if isinstance(node, Mapping):
        for k, v in node.items():
            yield from _walk(v, (*path, k))
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _walk(v, (*path, i))
    else:
        yield path, node


def _at(node: Any, path: Sequence[Any]) -> Any:
    for part in path:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return None
    return node


def _dotted(path: Sequence[Any]) -> str:
    return ".".join(str(p) for p in path)


def _option_at(option: Any, group: str, rel: Sequence[Any]) -> Any:
    """The value at ``rel`` in a group option: under the group's package, or (an option in the global package, such
    as ``data/cremad.yaml``, which chooses its own folds) under the group's key."""
    found = _at(option, rel)
    return found if found is not None else _at(option, (group, *rel))


def _known_targets(saved: Mapping[str, Any], path: tuple[Any, ...], searchpath: Sequence[str]) -> tuple[set, str]:
    """(the targets the project's configs name at ``path``, where they come from, for the message)."""
    group, rel = str(path[0]), path[1:]
    if group in NAMED_GROUPS:
        name = _at(saved, (group, "name"))
        option = group_option(group, str(name), searchpath) if isinstance(name, str) else None
        where = f"{group}/{name}.yaml on the config search path"
        if option is None:
            return set(), f"{where} (no such {group})"
        target = _option_at(option, group, rel)
        return ({target} if isinstance(target, str) else set()), where
    options = _group_options(group, tuple(searchpath))
    found = {t for opt in options.values() if isinstance(t := _option_at(opt, group, rel), str)}
    return found, f"the {group}/*.yaml options on the config search path"


def check_saved_config(saved: Mapping[str, Any], source: str, searchpath: Sequence[str] = ()) -> None:
    """Refuse a saved run config that would run code when rebuilt; ``CheckpointConfigError`` names every key.

    Nothing is imported or instantiated here: targets are compared as strings with the project's configs.
    """
    if not isinstance(saved, Mapping):
        raise CheckpointConfigError(f"{source}: its saved config (cfnsr_config) is not a mapping")
    problems = []
    for path, value in _walk(saved):
        if not path:
            continue
        if isinstance(value, str) and "${" in value:
            problems.append(f"{_dotted(path)}: an interpolation ({value!r}); a saved config is resolved, and a "
                            f"resolver is code")
        if path[-1] != "_target_":
            continue
        if len(path) < 2:
            problems.append(f"_target_: a target at the top level ({value!r})")
            continue
        known, where = _known_targets(saved, path, searchpath)
        if value not in known:
            problems.append(f"{_dotted(path)}: {value!r} is not a class of {where}"
                            + (f" (known: {sorted(known)})" if known else ""))
    if problems:
        raise CheckpointConfigError(
            f"{source}: refused, its saved config (cfnsr_config) names code this project does not know:\n  "
            + "\n  ".join(problems)
            + "\nA checkpoint's config is data: models are rebuilt only from the fusion and backbone classes of the "
              "project's configs (add your own fusion/backbone YAML to a --config-dir or hydra.searchpath).")


def _resolve_data_dir(data_dir: str | None, searchpath: Sequence[str]) -> str:
    if data_dir is not None:
        return str(data_dir)
    template = (group_option("paths", "default", searchpath) or {}).get("data_dir", "data")
    return str(OmegaConf.to_container(OmegaConf.create({"d": template}), resolve=True)["d"])


def data_paths(dataset: str, root: str | None, cache_dir: str | None, data_dir: str | None = None,
               searchpath: Sequence[str] = (), source: str = "checkpoint",
               generate: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """``(data.root, data.cache_dir)`` from the command: the given values, else the defaults of
    ``data/<dataset>.yaml`` resolved with the command's ``paths.data_dir`` (never the checkpoint's paths).

    ``generate``: the run's generator settings (recipe, not a path), for a default root named by them
    (``synthetic_${data.generate.preset}``); keys a run recorded before they existed take their neutral values."""
    option = group_option("data", dataset, searchpath) or {}
    root_t = root if root is not None else option.get("root")
    cache_t = cache_dir if cache_dir is not None else option.get("cache_dir")
    if root_t is None or cache_t is None:
        raise CheckpointConfigError(
            f"{source}: dataset {dataset!r} has no data/{dataset}.yaml with default paths on the config search "
            f"path; give data.root=<corpus> and data.cache_dir=<cache> (paths are never taken from a checkpoint)")
    gen = dict(option.get("generate") or {}) if generate is None else {
        **{k.split(".")[-1]: v for k, v in NEUTRAL_VALUES.items() if k.startswith("data.generate.")}, **generate}
    node = OmegaConf.create({"paths": {"data_dir": _resolve_data_dir(data_dir, searchpath)},
                             "data": {"root": root_t, "cache_dir": cache_t, "generate": gen}})
    data = OmegaConf.to_container(node, resolve=True)["data"]
    return str(data["root"]), str(data["cache_dir"])


def checked_generate(root: str | Path, generate: Mapping[str, Any] | None, source: str) -> dict[str, Any] | None:
    """The saved ``data.generate`` when ``root`` holds the complete synthetic corpus it describes, so that the data
    module knows which clips to expect without generating anything; None for a corpus without generator settings.

    Refuses a root without a complete synthetic corpus (a rebuild never writes a corpus) and one generated with other
    settings (another corpus than the run's).
    """
    if not generate:
        return None
    from cfnsr.data.synthetic import CONFIG_FILE, make_config

    wanted = make_config(**dict(generate)).to_json()
    path = Path(root) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointConfigError(
            f"{source}: trained on a synthetic corpus, but {root} holds no complete one ({CONFIG_FILE} missing); a "
            f"checkpoint never makes a corpus: make it with train.py/preprocess.py and the run's data.generate "
            f"settings, or point data.root= at it")
    try:
        found = json.loads(path.read_text(encoding="utf-8")).get("config")
    except (OSError, ValueError) as exc:
        raise CheckpointConfigError(f"{path}: unreadable ({exc})") from exc
    if found != wanted:
        found = found if isinstance(found, dict) else {}
        diff = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
        raise CheckpointConfigError(
            f"{source}: trained on another synthetic corpus than the one in {root} (data.generate differs: "
            + "; ".join(f"{k}: checkpoint {wanted.get(k)!r} vs corpus {found.get(k)!r}" for k in diff) + ")")
    return dict(generate)


def preprocess_run_options(searchpath: Sequence[str] = ()) -> dict[str, Any]:
    """The preprocessing run options of ``preprocess/default.yaml`` (the command's defaults)."""
    option = group_option("preprocess", "default", searchpath) or {}
    missing = [k for k in PREPROCESS_RUN_OPTIONS if k not in option]
    if missing:
        raise CheckpointConfigError(f"preprocess/default.yaml lacks the run option(s) {missing}")
    return {k: option[k] for k in PREPROCESS_RUN_OPTIONS}


def evaluation_config(saved: Mapping[str, Any], command: Mapping[str, Any], source: str,
                      searchpath: Sequence[str] = ()) -> dict[str, Any]:
    """The run config ``evaluate.py`` rebuilds: the checkpoint's recipe, checked (``check_saved_config``), with
    every path and run option from the command.

    command: the evaluate command's ``data`` (``root``, ``cache_dir``) and ``paths`` (``data_dir``) values, plain.
    """
    check_saved_config(saved, source, searchpath)
    run = copy.deepcopy(dict(saved))
    for key in DROPPED_NODES:
        run.pop(key, None)
    data = dict(run.get("data") or {})
    cmd_data = command.get("data") or {}
    data["root"], data["cache_dir"] = data_paths(
        str(data.get("name")), cmd_data.get("root"), cmd_data.get("cache_dir"),
        (command.get("paths") or {}).get("data_dir"), searchpath, source, data.get("generate"))
    data["generate"] = checked_generate(data["root"], data.get("generate"), source)
    # An evaluation covers its whole test split or stops naming the missing clips: a training run's permission to
    # go on without some clips would make a result on part of the split look like one on all of it.
    data["allow_missing_clips"] = False
    run["data"] = data
    run["preprocess"] = {**dict(run.get("preprocess") or {}), **preprocess_run_options(searchpath)}
    return run
