"""A run's *training recipe*: the part of its resolved config that says how the model was trained.

Two runs belong in one row of a comparison table only when they were trained the same way and differ in nothing but
the fold and the seed. :func:`training_recipe` turns a run's resolved config (a plain nested dict, e.g.
``OmegaConf.to_container(cfg, resolve=True)``) into a flat ``{"dotted.key": value}`` dict that keeps every setting
except the ones listed below; the training job stores it (and :func:`recipe_hash` of it) in ``metrics.json``, and
the report (``cfnsr.report``) compares recipes key by key.

The rule, key by key (a prefix matches the key itself and everything under it, by whole dotted segments, so
``fold`` matches ``fold`` but not ``folds.test_actors``):

* :data:`WHERE_PREFIXES` are dropped: they only say where a job wrote or read files or which job it was (fold, seed,
  paths, Hydra's own settings, the resume checkpoint, experiment and task names, run ids, loggers, the data and
  cache directories). Two identically trained runs differ in these.
* :data:`EXECUTION_PREFIXES` are dropped: how the job was executed without changing what was trained (device count
  and kind, distributed strategy, progress bars and logging frequency, data-loader workers and memory placement,
  the evaluation batch size, preprocessing workers and cache maintenance flags, whether the test ran after fitting,
  whether GFLOPs were measured, ``torch.compile`` and ``channels_last``, resume settings).
* :data:`DESCRIPTIVE_PREFIXES` are dropped: values quoted for display (the paper's reported accuracy and size, a
  fusion's display name and table position).
* :data:`INIT_PATH_KEYS` (initialisation checkpoints) are replaced by whether each was set (``True``/``False``; a
  key missing from the config counts as not set): a per-fold checkpoint path differs per fold but is the same
  recipe.
* :data:`BATCH_DEPENDENT_KEYS` (the eval batch size and the device count) are kept, although execution details
  otherwise, when an option of :data:`BATCH_DEPENDENT_OPTIONS` is on (``batch_sum_attention=true`` makes a clip's
  logits depend on the other clips of its batch).
* :data:`NEUTRAL_VALUES`: options added after runs were recorded are left out while they keep their neutral value
  (the behaviour from before they existed), so old and new runs with the option off share a recipe.
* Renamed keys and values (:mod:`cfnsr.runs.renames`: ``init.*`` was ``model.init.*``, ``measure_gflops`` was
  ``complexity``, fusion ``prob_product`` was ``multiplication``, ...) are recorded under their first names, so a rename changes no
  recipe hash and an old record and a new run of the same recipe compare equal.
* Everything else is kept: epochs, optimiser and learning rate, batch size, augmentation, preprocessing settings,
  backbone and fusion settings, protocol, fold scheme, dataset, precision and determinism, ...

Lists are values, not flattened (``folds.test_actors`` is one key). This module depends on the standard library
(and ``cfnsr.runs.renames``) only, so the report can read recipes without importing the training stack.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cfnsr.runs.renames import stored_recipe

# Where / which job: never part of how the model was trained.
WHERE_PREFIXES: tuple[str, ...] = (
    "fold",
    "seed",
    "paths",
    "hydra",
    "ckpt_path",
    "experiment_name",
    "task_name",
    "run_id",
    "job_id",
    "logger",
    "data.root",
    "data.cache_dir",
    "data.corpus.csv",  # the folder corpus's clip list and root: where, not how
    "data.corpus.root",
)

# Execution details that do not change the recipe.
EXECUTION_PREFIXES: tuple[str, ...] = (
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.accelerator",
    "trainer.strategy",
    "trainer.enable_progress_bar",
    "trainer.log_every_n_steps",
    "trainer.enable_model_summary",
    "data.num_workers",
    "data.pin_memory",
    "data.storage",
    "data.eval_batch_size",
    "preprocess.workers",
    "preprocess.force",
    "preprocess.verify",
    "preprocess.retry_failed",
    "test_after_fit",
    "complexity",  # measure_gflops, recorded under its first name (cfnsr.runs.renames)
    "cpu_threads",
    "model.compile",  # speed.compile and speed.channels_last, recorded under their first names (cfnsr.runs.renames)
    "model.channels_last",
    "resume",
    "callbacks.wandb_summary",
    "callbacks.run_checkpoints._target_",
    "callbacks.trial_report",  # a search trial's per-epoch report to its study (and pruner): not how it trains
)

# Values quoted for display only, and the provenance of searched settings: a search trial's study and trial number
# (``search``), a tuned run's "chosen by" record (``hparams``); the settings themselves are recipe keys.
DESCRIPTIVE_PREFIXES: tuple[str, ...] = ("fusion.paper", "fusion.display", "fusion.order", "protocol.objective",
                                         "search", "hparams", "data.paper_table")

# Copies of values the recipe keeps under another key (or drops: the data module node repeats data.root, the seed),
# and names: the corpus's class names (the labels are fixed
# by ``dataset`` and the corpus's own settings, which stay: ``data.corpus.label_source`` ...), the corpus class
# (named by ``dataset``), and the per-corpus preprocessing defaults that ``preprocess.*`` repeats.
MIRRORED_PREFIXES: tuple[str, ...] = ("data.class_names", "data.corpus._target_", "data.corpus.class_names",
                                      "data.corpus.generate", "data.audio_offset", "data.audio_duration",
                                      "data.short_audio",
                                      # the data module's wiring (conf/datamodule/): data.* keys and the seed again
                                      "datamodule")

# Initialisation checkpoints: kept as "was it set", not as the path. The keys are ``init.*`` in the config and
# ``model.init.*`` (their first names, cfnsr.runs.renames) in a recipe.
INIT_PATH_KEYS: tuple[str, ...] = (
    "model.init.video",
    "model.init.audio",
    "model.init.kinetics",
    "model.init.from_runs",
    "model.init.weights",
)

# Options added after runs were recorded, with the value that reproduces the behaviour from before they existed: a
# key at that value is left out, so an old record and a new run with the option off have the same recipe.
NEUTRAL_VALUES: dict[str, Any] = {
    "augment.modality_dropout": 0.0,
    "data.allow_missing_clips": False,
    # The checkpoint callback became config (conf/callbacks/) after runs were recorded; before, it always selected
    # on the highest val/war.
    "callbacks.run_checkpoints.monitor": "val/war",
    "callbacks.run_checkpoints.mode": "max",
    # Before tie_break existed the earliest of several epochs with the best val/war was selected.
    "callbacks.run_checkpoints.tie_break": None,
    "folds.search_val_actors": None,
    "preprocess.short_audio": "skip",  # clips with too little audio were always skipped
    "model.init.allow_unknown_split": False,
    # The synthetic corpus's preset and clip subset (the interactions preset, docs/diagnostics.md); before them every
    # synthetic run used the legacy corpus with all 60 clips per actor.
    "data.generate.preset": "legacy",
    "data.generate.clips_per_actor": None,
}

# Reproduce-options under which the evaluation's numbers depend on how clips are batched: with the reference code's
# attention map summed over the batch (``batch_sum_attention``), a clip's logits depend on the other clips of its
# evaluation batch, so the eval batch size and the device count (each device batches its own share) are recipe.
BATCH_DEPENDENT_OPTIONS: tuple[str, ...] = ("batch_sum_attention",)
BATCH_DEPENDENT_KEYS: tuple[str, ...] = ("data.eval_batch_size", "trainer.devices", "trainer.num_nodes")

EXCLUDED_PREFIXES: tuple[str, ...] = WHERE_PREFIXES + EXECUTION_PREFIXES + DESCRIPTIVE_PREFIXES + MIRRORED_PREFIXES

HASH_LENGTH = 12  # hex digits of sha256 kept by recipe_hash


def matches_prefix(key: str, prefixes: tuple[str, ...] | list[str]) -> str | None:
    """The first prefix that ``key`` equals or lies under (by whole dotted segments), else None."""
    for p in prefixes:
        if key == p or key.startswith(p + "."):
            return p
    return None


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings -> ``{"a.b.c": value}``; lists stay values, an empty mapping stays ``{}``."""
    flat: dict[str, Any] = {}
    for k, v in cfg.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v:
            flat.update(flatten(v, key))
        else:
            flat[key] = _plain(v)
    return flat


def _plain(v: Any) -> Any:
    """JSON-shaped copy: tuples become lists, mappings plain dicts."""
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _is_set(v: Any) -> bool:
    return v not in (None, False, "") and v != [] and v != {}


def clean_recipe(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Apply the exclusion and initialisation rules to an already-flat dict; idempotent.

    :func:`training_recipe` uses it on the flattened config; the report re-applies it to recorded recipes, so a
    record written under older rules is compared under the current ones.
    """
    out: dict[str, Any] = {}
    init_set: dict[str, bool] = {}
    flat = stored_recipe(flat)  # renamed keys and values under their first names: hashes survive a rename
    batch_dependent = batch_dependent_eval(flat)
    for key, value in flat.items():
        if matches_prefix(key, EXCLUDED_PREFIXES) and not (batch_dependent and key in BATCH_DEPENDENT_KEYS):
            continue
        init = matches_prefix(key, INIT_PATH_KEYS)
        if init is not None:
            init_set[init] = init_set.get(init, False) or _is_set(value)
            continue
        if key in NEUTRAL_VALUES and value == NEUTRAL_VALUES[key]:
            continue
        out[key] = _plain(value)
    # Every initialisation key is recorded, absent ones as False, so a config written before a key existed compares
    # equal to one where it is null.
    out.update({key: init_set.get(key, False) for key in INIT_PATH_KEYS})
    return dict(sorted(out.items()))


def batch_dependent_eval(flat: Mapping[str, Any]) -> bool:
    """Whether a flat config turns on an option under which evaluation depends on the batching
    (:data:`BATCH_DEPENDENT_OPTIONS` set to true anywhere, e.g. ``fusion.model.batch_sum_attention``)."""
    return any(value is True and key.rsplit(".", 1)[-1] in BATCH_DEPENDENT_OPTIONS for key, value in flat.items())


def training_recipe(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The flat, sorted ``{dotted key: value}`` recipe of a resolved config (see the module docstring)."""
    return clean_recipe(flatten(cfg))


def canonical_json(recipe: Mapping[str, Any]) -> str:
    """Key-sorted, whitespace-free JSON; values JSON cannot hold are written as ``str(value)``."""
    return json.dumps(recipe, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def recipe_hash(recipe: Mapping[str, Any]) -> str:
    """A short stable id of a recipe: the first 12 hex digits of sha256 over its canonical JSON."""
    return hashlib.sha256(canonical_json(recipe).encode("utf-8")).hexdigest()[:HASH_LENGTH]


# Recipe keys that tell rows of one comparison table apart (the fusion and its initialisation); every other key
# must agree within a table. The report's tables and the robustness blocks both split recipes by them.
ROW_PREFIXES: tuple[str, ...] = ("fusion", "model.init")


def table_recipe(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """The recipe without the row keys (``fusion.*``, ``model.init.*``): what every run of one table shares."""
    return {k: v for k, v in recipe.items() if not matches_prefix(k, ROW_PREFIXES)}


def row_recipe(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """The recipe's row keys only (fusion settings and initialisation)."""
    return {k: v for k, v in recipe.items() if matches_prefix(k, ROW_PREFIXES)}


_ABSENT = object()


def format_value(v: Any) -> str:
    """A recipe value for display: strings bare, everything else as JSON (true, null, [1, 2], 0.001)."""
    if v is _ABSENT:
        return "(absent)"
    if isinstance(v, str):
        return v
    return json.dumps(v, sort_keys=True, default=str)


def recipe_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """``"key: A vs B"`` for every key whose value differs (or is absent on one side), in key order."""
    lines = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, _ABSENT), b.get(key, _ABSENT)
        if va is _ABSENT or vb is _ABSENT or canonical_json({"v": va}) != canonical_json({"v": vb}):
            lines.append(f"{key}: {format_value(va)} vs {format_value(vb)}")
    return lines
