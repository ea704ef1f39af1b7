"""Multirun job folder names from Hydra's own job config: ``<job number>_<overrides>`` (``0_fold-1+fusion-cfnsr``).

The name is built from ``hydra.job.num`` and ``hydra.job.override_dirname`` (whose ``kv_sep``/``item_sep``/
``exclude_keys`` are set in ``conf/hydra/default.yaml``), so it is right under any launcher or sweeper (a SLURM job's
``sys.argv`` is submitit's, not the user's). Characters that the Hydra command line would parse (``=``, ``,``, ``/``,
brackets, quotes, spaces) are replaced, so ``ckpt_path=<sweep>/<job>/checkpoints/last.ckpt`` needs no quoting, and
the name is at most ``MAX_LEN`` characters (a long tail becomes a short hash). Nothing reads settings back from
these names: a job's overrides are in its ``.hydra/overrides.yaml`` and its ``metrics.json``.

``${job_dirname:...}`` is registered with the other resolvers by ``cfnsr.conf_resolvers.register_resolvers``.
"""

from __future__ import annotations

import hashlib
import re

MAX_LEN = 96
_UNSAFE = re.compile(r"[^A-Za-z0-9._@%+-]")


def job_dirname(num: int | str, override_dirname: str | None) -> str:
    """``<num>_<override_dirname>`` made safe for a path and a Hydra override value, bounded in length."""
    text = _UNSAFE.sub("_", str(override_dirname or "")).strip("._") or "job"
    name = f"{num}_{text}"
    if len(name) > MAX_LEN:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[:MAX_LEN - 10]}+h{digest}"
    return name
