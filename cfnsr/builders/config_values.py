"""Range checks of numeric settings, run before any data is loaded or any model is built.

Without them a bad value fails late with a third-party message (``data.batch_size=0`` -> ``ZeroDivisionError`` in
the sampler, ``optimizer.lr=-1`` -> ``ValueError: Invalid learning rate`` from torch after the data was prepared).
Each message names the key the user set: many keys are interpolations of others (``preprocess.frames:
${data.frames}``), so a bad value is reported at the key it came from (``data.frames=0``), with the key that uses it.
"""

from __future__ import annotations

import math
import re
from typing import Any

from omegaconf import DictConfig, OmegaConf

from cfnsr.builders.config_checks import ConfigError

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
