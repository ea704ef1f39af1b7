"""Multirun job folder names from Hydra's own job config: ``<job number>_<overrides>`` (``0_fold-1+fusion-cfnsr``).

The name is built from ``hydra.job.num`` and ``hydra.job.override_dirname`` (whose ``kv_sep``/``item_sep``/
``exclude_keys`` are set in ``conf/hydra/default.yaml``), so it is right under any launcher or sweeper (a SLURM job's
``sys.argv`` is submitit's, not the user's). Characters that the Hydra command line would parse (``=``, ``,``, ``/``,
brackets, quotes, spaces) are replaced, so ``ckpt_path=<sweep>/<job>/checkpoints/last.ckpt`` needs no quoting, and
the name is at most ``MAX_LEN`` characters (a long tail becomes a short hash). Nothing reads settings back from
these names: a job's overrides are in its ``.hydra/overrides.yaml`` and its ``metrics.json``.

``slurm_gpus`` is the SLURM launcher's GPU request (``conf/hydra/launcher/slurm.yaml``), registered with it.
"""

from __future__ import annotations

import hashlib
import re

from omegaconf import OmegaConf

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


_GPU_ACCELERATORS = {"gpu", "cuda"}


def slurm_gpus(accelerator: str, devices: int | str) -> int | None:
    """GPUs per node a SLURM job asks for: ``devices`` for a GPU trainer, none (no ``--gpus-per-node``) for CPU.

    ``accelerator=auto`` is refused: SLURM must know whether to allocate GPUs before the job starts.
    """
    accelerator = str(accelerator).lower()
    if accelerator == "cpu":
        return None
    if accelerator not in _GPU_ACCELERATORS:
        raise ValueError(f"trainer.accelerator={accelerator}: a SLURM job needs trainer.accelerator=gpu or cpu to "
                         f"know whether to request GPUs (hydra.launcher.gpus_per_node)")
    if not str(devices).isdigit() or int(devices) < 1:
        raise ValueError(f"trainer.devices={devices}: a SLURM job needs a number of GPUs per node (one SLURM task "
                         f"per GPU), not {devices!r}")
    return int(devices)


def register() -> None:
    """Register the resolvers the configs use (idempotent): ``job_dirname`` and ``slurm_gpus``."""
    for name, fn in (("job_dirname", job_dirname), ("slurm_gpus", slurm_gpus)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
