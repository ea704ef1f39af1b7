"""Checks run before a job touches anything: one clear line per mistake, instead of a crash deep inside."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
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
    n_folds = len(cfg.folds.test_actors)
    _int(cfg.fold, "fold", 1, n_folds)
    _int(cfg.seed, "seed", 0)
    _int(cfg.trainer.max_epochs, "trainer.max_epochs", 1)  # -1 would train forever, 0 not at all
    if cfg.ckpt_path is not None and not isinstance(cfg.ckpt_path, str):
        raise ConfigError(f"ckpt_path={cfg.ckpt_path!r}: expected a file path")


def check_sweeper(sweeper_target: str | None, objective: str | None) -> None:
    """An optimising sweeper needs a validation objective; the paper protocol has none (it selects on test)."""
    if sweeper_target and sweeper_target != BASIC_SWEEPER and not objective:
        raise ConfigError(
            f"hydra/sweeper {sweeper_target.rsplit('.', 1)[-1]} optimises the job's return value, but this "
            f"protocol defines no validation objective (protocol=paper selects epochs on the test fold): a search "
            f"would tune on test data. Use protocol=clean for searches.")


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
