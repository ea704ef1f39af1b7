"""Initialisation cannot leak test actors: a checkpoint that initialises a run is checked against the run's split.

Every initialisation from a cfnsr checkpoint (``init.weights``, ``init.video`` / ``audio``, and the
stage-1 checkpoints ``init.from_runs`` finds) reads the source run's split from the checkpoint
(``cfnsr_split``: its train, validation and test actors). The rules, with S the source and R this run:

* S's **training** actors must not include any actor R tests on or validates on (under every protocol: a validation
  actor the network was trained on selects an epoch on memorised clips);
* S's **selection** (validation) actors must not include any actor R tests on, unless R runs ``protocol=paper``,
  which selects its own epoch on its test actors anyway (an oracle the report labels as such). S selecting on R's own
  validation block is allowed: that is the block both runs were meant to select on.

A checkpoint without a recorded split (written before cfnsr stored it, or a plain state dict) is refused unless
``init.allow_unknown_split=true``; the record then says the split was unknown. ``init.kinetics`` (an
external Kinetics-400 model, no RAVDESS actor) is not checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cfnsr.data.folds import Split
from cfnsr.runs.recipe import recipe_hash, training_recipe
from cfnsr.weights_only import read_weights_only

SPLIT_KEYS = ("train_actors", "val_actors", "test_actors")


class InitLeakageError(ValueError):
    """An initialisation checkpoint saw actors this run tests or validates on; the message names them."""


def speaker_id(a: Any) -> int | str:
    """A speaker id as JSON keeps it: an int (numpy ints too) or, for a folder corpus, a string."""
    return a if isinstance(a, str) else int(a)


def _sorted_ids(ids: Any) -> list[int | str]:
    return sorted((speaker_id(a) for a in ids), key=lambda a: (isinstance(a, str), a))


def split_dict(split: Split) -> dict[str, list[int | str]]:
    """The split as saved in checkpoints (``cfnsr_split``) and records: plain sorted lists."""
    return {k: _sorted_ids(getattr(split, k)) for k in SPLIT_KEYS}


def saved_split(ckpt: Any) -> dict[str, list[int | str]] | None:
    """A checkpoint's recorded split, None when it has none (or a malformed one)."""
    split = ckpt.get("cfnsr_split") if isinstance(ckpt, Mapping) else None
    if not isinstance(split, Mapping) or any(not isinstance(split.get(k), list) for k in SPLIT_KEYS):
        return None
    return {k: _sorted_ids(split[k]) for k in SPLIT_KEYS}


def init_source(path: str | Path, ckpt: Any = None) -> dict[str, Any]:
    """What a record says about one initialisation checkpoint: its path, run id, recipe hash and split (None for
    what it does not carry). ``ckpt``: the file's contents when already read."""
    if ckpt is None:
        ckpt = read_weights_only(path)  # FileNotFoundError / WeightsFileError (a ValueError) naming the file
    cfg = ckpt.get("cfnsr_config") if isinstance(ckpt, Mapping) else None
    return {
        "path": str(Path(path).resolve()),
        "run_id": ckpt.get("cfnsr_run_id") if isinstance(ckpt, Mapping) else None,
        "recipe_hash": recipe_hash(training_recipe(cfg)) if isinstance(cfg, Mapping) and cfg else None,
        "split": saved_split(ckpt),
    }


def check_init_source(source: Mapping[str, Any], key: str, split: Split, protocol: str,
                      allow_unknown_split: bool) -> None:
    """Raise ``InitLeakageError`` when ``source`` (from :func:`init_source`) may not initialise a run with ``split``
    under ``protocol``; ``key`` names the setting (``init.weights``) in the message."""
    path = source.get("path")
    src = source.get("split")
    test, val = set(split.test_actors), set(split.val_actors)
    if src is None:
        if allow_unknown_split:
            return
        raise InitLeakageError(
            f"{key}={path}: the checkpoint does not record which actors it was trained and selected on (written "
            f"before cfnsr stored its split, or not a cfnsr training checkpoint), so it may have seen this run's "
            f"test actors {sorted(test)}. Use a checkpoint written by this cfnsr, or accept the risk with "
            f"init.allow_unknown_split=true (the record notes it).")
    problems = []
    trained = set(src["train_actors"])
    if trained & test:
        problems.append(f"it was trained on actors {sorted(trained & test)}, which this run tests on")
    if trained & (val - test):
        problems.append(f"it was trained on actors {sorted(trained & (val - test))}, which this run validates on")
    selected = set(src["val_actors"])
    if protocol != "paper" and selected & test:
        problems.append(f"its epoch was selected on actors {sorted(selected & test)}, which this run tests on")
    if problems:
        raise InitLeakageError(
            f"{key}={path}: refused, the initialisation would leak test or validation actors into this run "
            f"(test actors {sorted(test)}, validation actors {sorted(val)}): " + "; ".join(problems)
            + ". Initialise from a run of the same test and validation actors (its fold), or train without it.")
