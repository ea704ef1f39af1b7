"""Checks run before a job touches anything: one clear line per mistake, instead of a crash deep inside.

Range checks of numeric settings (``VALUE_RULES``): without them a bad value fails late with a third-party message
(``data.batch_size=0`` -> ``ZeroDivisionError`` in the sampler, ``optimizer.lr=-1`` -> ``ValueError: Invalid learning
rate`` from torch after the data was prepared). Each message names the key the user set: many keys are interpolations
of others (``preprocess.frames: ${data.frames}``), so a bad value is reported at the key it came from
(``data.frames=0``), with the key that uses it.
"""

from __future__ import annotations

import math
import re
from typing import Any

from omegaconf import DictConfig, OmegaConf

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
SEARCH_PROTOCOL = "search"  # the only protocol an optimising sweeper may tune on (cfnsr.data.folds)
EVALUATE_KEYS = {"task_name", "experiment_name", "ckpt_path", "data", "paths", "trainer", "robustness"}
EVALUATE_DATA_KEYS = {"root", "cache_dir"}


class ConfigError(ValueError):
    """A setting that cannot work; the message names the key, the value and what is expected."""


def _int(value: Any, key: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}={value!r}: expected an integer" + (f" in 1..{high}" if high else ""))
    if value < low or (high is not None and value > high):
        raise ConfigError(f"{key}={value}: expected {low}.." + (str(high) if high is not None else ""))
    return value


def check_train_config(cfg: DictConfig) -> None:
    """Raise ``ConfigError`` for settings that would silently train something else than asked."""
    from cfnsr.builders.corpus import fold_test_speakers

    n_folds = len(fold_test_speakers(cfg))
    _int(cfg.fold, "fold", 1, n_folds)
    _int(cfg.seed, "seed", 0)

    check_values(cfg)  # epochs, batch size, learning rate, frames, workers...: named at the key the user set
    check_wiring(cfg)
    if cfg.ckpt_path is not None and not isinstance(cfg.ckpt_path, str):
        raise ConfigError(f"ckpt_path={cfg.ckpt_path!r}: expected a file path")
    if cfg.protocol.name == SEARCH_PROTOCOL and cfg.get("test_after_fit"):
        raise ConfigError("protocol=search with test_after_fit=true: a search trial never evaluates the test fold "
                          "(set test_after_fit=false, as hparams_search=optuna does)")
    check_tuned_fold(cfg)


# Nodes that only wire user-facing keys into an object (every value an interpolation of the key it names). A value set
# on one of them directly would reach the object while the record, the recipe and the effective batch still show the
# key it should come from (``datamodule.batch_size=64`` trained with 64 and recorded 16).
WIRING_NODES = ("datamodule",)


def check_wiring(cfg: DictConfig) -> None:
    """``ConfigError`` for a wiring node value that is not an interpolation, naming the key to set instead (the
    shipped option's, ``conf/<node>/default.yaml``, when it has one)."""
    from cfnsr.models.fusion.registry import CONF_DIR  # the shipped configs

    for name in WIRING_NODES:
        node = cfg.get(name)
        if node is None:
            continue
        shipped = OmegaConf.to_container(OmegaConf.load(CONF_DIR / name / "default.yaml"), resolve=False)
        for key, raw in OmegaConf.to_container(node, resolve=False).items():
            if key.startswith("_") or (isinstance(raw, str) and raw.startswith("${") and raw.endswith("}")):
                continue
            wanted = shipped.get(key)
            hint = (f"set {wanted[2:-1]} instead" if isinstance(wanted, str) and wanted.startswith("${")
                    else "give the value a key of its own and interpolate it here")
            raise ConfigError(f"{name}.{key}={raw!r}: the {name} node only wires other keys into its object "
                              f"(conf/{name}/default.yaml: {key}: {wanted}); {hint}, so that the record and the "
                              f"recipe show the value that is used")


def check_tuned_fold(cfg: DictConfig) -> None:
    """Settings tuned by a nested search for outer fold k may only be tested on fold k's test actors.

    The search for fold k trained and validated on every other actor, so any other test fold was seen by the
    search that chose these settings. ``hparams.test_actors`` (written by ``python -m cfnsr.search export``) are
    the actors that search never touched.
    """
    hp = cfg.get("hparams")
    if not hp or hp.get("test_actors") is None:
        return
    from cfnsr.builders.corpus import fold_split

    split = fold_split(cfg, "clean")
    allowed = sorted(hp.test_actors, key=lambda a: (0, a) if isinstance(a, int) else (1, str(a)))  # any speaker ids
    if list(split.test_actors) != allowed:
        raise ConfigError(
            f"fold={cfg.fold} tests actors {list(split.test_actors)}, but these hyperparameters were chosen by a "
            f"search for outer fold {hp.get('outer_fold')} ({hp.get('chosen_by') or 'no description'}), which "
            f"trained and validated on every actor except {allowed}: testing them on other actors would report "
            f"numbers tuned on the test data. Run the search for fold {cfg.fold} (hparams_search=optuna fold={cfg.fold}) and "
            f"export its result.")


def check_sweeper(sweeper_target: str | None, protocol: str | None, objective: str | None) -> None:
    """An optimising sweeper tunes on validation data that no reported test fold may share: protocol=search only.

    The paper protocol has no validation set (it selects epochs on the test fold); under the clean protocol fold
    k validates on fold k+1's test actors, so a search on it would tune fold k+1's reported number on its test data.
    """
    if not sweeper_target or sweeper_target == BASIC_SWEEPER:
        return
    name = sweeper_target.rsplit(".", 1)[-1]
    if not objective:
        raise ConfigError(
            f"hydra/sweeper {name} optimises the job's return value, but protocol={protocol} defines no validation "
            f"objective (protocol=paper selects epochs on the test fold): a search would tune on test data. Use "
            f"hparams_search=optuna (protocol=search).")
    if protocol != SEARCH_PROTOCOL:
        raise ConfigError(
            f"hydra/sweeper {name} optimises the validation score, but under protocol={protocol} fold k validates "
            f"on another fold's test actors, so the search would tune that fold's reported number on its test "
            f"data. Use hparams_search=optuna, which runs protocol=search (nested: validation from the fold's own "
            f"training actors); see docs/hparams_search.md.")


def check_evaluate_config(cfg: DictConfig) -> None:
    """evaluate.py takes every run setting from the checkpoint; any other key would be silently ignored."""
    extra = sorted(set(cfg.keys()) - EVALUATE_KEYS)
    data_extra = sorted(set((cfg.get("data") or {}).keys()) - EVALUATE_DATA_KEYS)
    if extra or data_extra:
        keys = extra + [f"data.{k}" for k in data_extra]
        raise ConfigError(
            f"evaluate.py does not take {', '.join(keys)}: the fold, model and data settings come from the "
            f"checkpoint's saved config (only ckpt_path, data.root, data.cache_dir, robustness, trainer.* and paths.* "
            f"apply)")
    if not cfg.get("ckpt_path"):
        raise ConfigError("evaluate.py needs ckpt_path=<run>/checkpoints/<file>.ckpt")


# A value that is exactly one absolute interpolation: ``${data.frames}``.
_PLAIN_INTERPOLATION = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_.]*)\}$")

# (key, kind, lower bound, bound inclusive): kind "int" takes integers only, "num" any finite number.
VALUE_RULES: tuple[tuple[str, str, float, bool], ...] = (
    ("data.batch_size", "int", 1, True),
    ("data.eval_batch_size", "int", 1, True),
    ("data.num_workers", "int", 0, True),
    ("preprocess.frames", "int", 1, True),
    ("preprocess.size", "int", 1, True),
    ("preprocess.sample_rate", "int", 1, True),
    ("preprocess.n_mfcc", "int", 1, True),
    ("preprocess.n_fft", "int", 1, True),
    ("preprocess.hop_length", "int", 1, True),
    ("preprocess.workers", "int", 0, True),
    ("preprocess.audio_duration", "num", 0, False),
    ("preprocess.audio_offset", "num", 0, True),
    ("preprocess.crop_margin", "num", 0, True),
    ("optimizer.lr", "num", 0, False),
    ("optimizer.weight_decay", "num", 0, True),
    ("trainer.max_epochs", "int", 1, True),
    ("trainer.accumulate_grad_batches", "int", 1, True),
    ("trainer.devices", "int", 1, True),  # "auto" and device lists are left to Lightning
    ("trainer.num_nodes", "int", 1, True),
)


def _raw(cfg: DictConfig, key: str) -> Any:
    """The value at ``key`` as written (an interpolation stays a string); ``KeyError`` when absent."""
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    if not isinstance(parent, DictConfig) or leaf not in parent:
        raise KeyError(key)
    return OmegaConf.to_container(parent, resolve=False)[leaf]


def source_key(cfg: DictConfig, key: str) -> str:
    """The key whose value ``key`` takes, following plain interpolations (``preprocess.frames`` -> ``data.frames``).

    Stops at the first key that holds a value (or a non-plain interpolation such as ``${oc.env:...}``).
    """
    seen = {key}
    while True:
        try:
            raw = _raw(cfg, key)
        except KeyError:
            return key
        match = _PLAIN_INTERPOLATION.match(raw) if isinstance(raw, str) else None
        if match is None or match.group(1) in seen:
            return key
        key = match.group(1)
        seen.add(key)


def _named(cfg: DictConfig, key: str, value: Any) -> str:
    """``data.frames=0 (used as preprocess.frames)``: the user's key first, the key that reads it after."""
    origin = source_key(cfg, key)
    return f"{origin}={value!r}" + ("" if origin == key else f" (used as {key})")


def check_values(cfg: DictConfig) -> None:
    """Raise ``ConfigError`` naming the key (the one the user set) for the first value out of range.

    Keys absent from the config are skipped; ``trainer.devices`` and ``num_nodes`` are checked only when they are
    integers (Lightning takes ``auto`` and device lists too).
    """
    for key, kind, low, inclusive in VALUE_RULES:
        try:
            _raw(cfg, key)
        except KeyError:
            continue
        value = OmegaConf.select(cfg, key)
        if value is None:
            continue
        if key in ("trainer.devices", "trainer.num_nodes") and not isinstance(value, int):
            continue
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind == "int" and (not is_number or float(value) != int(value)):
            raise ConfigError(f"{_named(cfg, key, value)}: expected an integer >= {int(low)}")
        if not is_number or not math.isfinite(float(value)):
            raise ConfigError(f"{_named(cfg, key, value)}: expected a finite number")
        if value < low or (value == low and not inclusive):
            bound = f">= {low:g}" if inclusive else f"> {low:g}"
            raise ConfigError(f"{_named(cfg, key, value)}: expected a value {bound}")
