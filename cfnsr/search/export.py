"""Write the settings a search chose as an experiment config: ``python train.py experiment=<name>``.

The experiment is built from the chosen trial's own job: its command-line overrides (``.hydra/overrides.yaml``,
with config-group choices told apart by ``.hydra/hydra.yaml``'s ``runtime.choices``) minus the search machinery,
and the trial's parameters exactly as the study stored them. It pins ``fold`` to the search's outer fold and
carries an ``hparams`` block (how the settings were chosen, and the test actors the search never touched), which
the training job records and checks: the settings may only be tested on those actors.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from cfnsr.search.study import SearchError, best_trial, load_study, trial_records

# Overrides of the trial's job that belong to the search, not to the chosen configuration.
SEARCH_KEYS = ("hparams_search", "protocol", "test_after_fit", "measure_gflops", "complexity", "ckpt_path", "hparams")
# ("complexity": measure_gflops under its old name, in the overrides of studies run before the rename)
SEARCH_PREFIXES = ("search", "hydra", "hparams")


def _dropped(key: str) -> bool:
    key = key.lstrip("+~")
    return key in SEARCH_KEYS or any(key == p or key.startswith(p + ".") for p in SEARCH_PREFIXES)


def _job_overrides(folder: Path) -> tuple[list[str], dict[str, Any]]:
    """The trial job's task overrides and its config-group choices, from the job's ``.hydra`` folder."""
    hydra_dir = folder / ".hydra"
    try:
        overrides = yaml.safe_load((hydra_dir / "overrides.yaml").read_text()) or []
        hydra_cfg = yaml.safe_load((hydra_dir / "hydra.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SearchError(f"{hydra_dir}: cannot read the trial's overrides.yaml / hydra.yaml ({exc})") from exc
    choices = ((hydra_cfg.get("hydra") or {}).get("runtime") or {}).get("choices") or {}
    return [str(o) for o in overrides], choices


def _chosen_trial(study: Any, trial: int | None) -> tuple[Any, list[Any]]:
    """(the trial to export: ``trial`` or the best, the study's completed trials); SearchError naming the trial's
    state when it did not complete."""
    import optuna

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if trial is None:
        return best_trial(study), done
    chosen = next((t for t in done if t.number == trial), None)
    if chosen is None:
        state = next((t.state.name for t in study.trials if t.number == trial), "no such trial")
        raise SearchError(f"study {study.study_name!r} has no completed trial {trial} ({state}; "
                          f"completed: {[t.number for t in done]})")
    return chosen, done


def _trial_overrides(overrides: list[str], choices: dict[str, Any]
                     ) -> tuple[list[Any], list[dict[str, str]], DictConfig]:
    """A trial's command-line overrides as (experiment defaults, group overrides, plain values); the fold and the
    search's own keys are dropped."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    defaults: list[Any] = []
    group_defaults: list[dict[str, str]] = []
    body = OmegaConf.create({})
    for o in OverridesParser.create().parse_overrides(overrides):
        key = o.get_key_element()
        if _dropped(key) or key in ("fold",):
            continue
        bare = key.lstrip("+~")
        if bare in choices:  # a config group: fusion=cfnsr, experiment=..., trainer=...
            value = o.get_value_element_as_str()
            if bare == "experiment":
                defaults.append(f"/experiment/{value}")  # the search's base experiment, included as it was
            else:
                group_defaults.append({f"override /{bare}": value})
            continue
        OmegaConf.update(body, bare, o.value(), force_add=True)
    return defaults, group_defaults, body


def experiment_config(sweep_dir: str | Path, study_name: str | None = None, trial: int | None = None,
                      storage: str | None = None) -> tuple[dict[str, Any], str]:
    """(the experiment config as a plain dict, a one-line description) for the chosen trial (default: the best)."""
    study = load_study(sweep_dir, study_name, storage)
    chosen, done = _chosen_trial(study, trial)
    records = trial_records(sweep_dir, study.study_name)
    if chosen.number not in records:
        raise SearchError(f"{sweep_dir}: no run folder holds trial {chosen.number} of study {study.study_name!r} "
                          f"(its metrics.json is missing)")
    folder, record = records[chosen.number]
    overrides, choices = _job_overrides(folder)

    defaults, group_defaults, body = _trial_overrides(overrides, choices)
    for name, value in chosen.params.items():  # exactly what the study stored (no float round trip)
        OmegaConf.update(body, name, value, force_add=True)

    objective = (record.get("search") or {}).get("objective") or "objective"
    test_actors, val_actors = list(record.get("test_actors") or []), list(record.get("val_actors") or [])
    chosen_by = (f"optuna study {study.study_name} ({len(done)} completed trials): trial {chosen.number}, "
                 f"{objective} {chosen.value:.4f} on search-validation actors {val_actors}; outer fold "
                 f"{record['fold']}, test actors {test_actors} never used")
    OmegaConf.update(body, "fold", int(record["fold"]), force_add=True)
    body.hparams = {
        "chosen_by": chosen_by,
        "study": study.study_name,
        "trial": chosen.number,
        "objective": objective,
        "value": chosen.value,
        "outer_fold": int(record["fold"]),
        "test_actors": test_actors,
        "search_val_actors": val_actors,
        "sweep_dir": str(Path(sweep_dir).resolve()),
        "params": {k: v for k, v in chosen.params.items()},
    }
    config = {"defaults": [*defaults, "_self_", *group_defaults], **OmegaConf.to_container(body)}
    return config, chosen_by


def default_name(study_name: str) -> str:
    return "tuned_" + re.sub(r"[^A-Za-z0-9_.-]", "_", study_name)


def export_experiment(sweep_dir: str | Path, name: str | None = None, config_dir: str | Path = "conf",
                      study_name: str | None = None, trial: int | None = None, force: bool = False,
                      storage: str | None = None) -> Path:
    """Write ``<config_dir>/experiment/<name>.yaml`` (``# @package _global_``); refuse to overwrite unless force."""
    config, chosen_by = experiment_config(sweep_dir, study_name, trial, storage)
    name = name or default_name(config["hparams"]["study"])
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise SearchError(f"--name {name!r}: use letters, digits, '_', '.', '-' (it becomes experiment={name})")
    out = Path(config_dir) / "experiment" / f"{name}.yaml"
    if out.exists() and not force:
        raise SearchError(f"{out} exists; choose another --name or pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    fold = config["fold"]
    header = (f"# @package _global_\n"
              f"# Written by `python -m cfnsr.search export {sweep_dir}`.\n"
              f"# {chosen_by}.\n"
              f"# Use for fold {fold} only (train.py refuses other test actors): python train.py experiment={name}\n")
    out.write_text(header + yaml.safe_dump(config, sort_keys=False, default_flow_style=None))
    return out
