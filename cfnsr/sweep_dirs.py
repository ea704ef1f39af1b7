"""Readable multirun folder names: only the keys the sweep varies (``fold=1,fusion=cfnsr``).

Hydra's ``override_dirname`` lists every command-line override of a job, so one extra fixed setting makes every
folder name long. This resolver keeps only the overrides that are sweeps on the launching command line.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf


def swept_keys(argv: Sequence[str]) -> set[str]:
    """Keys that ``argv`` sweeps (``fold=1,2``, ``seed=range(3)``, ...)."""
    candidates = [a for a in argv if "=" in a and not a.startswith("-")]
    parsed = OverridesParser.create().parse_overrides(candidates)
    return {o.key_or_group for o in parsed if o.is_sweep_override()}


def swept_dirname(task_overrides: Sequence[str]) -> str:
    """The job's overrides of swept keys, sorted and comma-joined (all its overrides if nothing is swept)."""
    keys = swept_keys(sys.argv[1:])
    kept = sorted(o for o in task_overrides if o.split("=", 1)[0].lstrip("+~") in keys)
    return ",".join(kept or sorted(task_overrides)) or "job"


def register() -> None:
    if not OmegaConf.has_resolver("swept_dirname"):
        OmegaConf.register_new_resolver("swept_dirname", swept_dirname)
