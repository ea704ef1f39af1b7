"""Every OmegaConf resolver the configs use, registered by ``register_resolvers()``.

Each entry point calls ``register_resolvers()`` once (the ``cfnsr/cli/*.py`` modules at their import, before
``hydra.main`` composes; ``python -m cfnsr.tasks.splits``; the test suite's ``conftest.py``). Importing ``cfnsr`` or
any other module registers nothing, so a resolver a config uses is always one listed in ``RESOLVERS`` below.
The cli modules register at import rather than inside ``main`` because Hydra composes (and resolves
``hydra.sweep.subdir``, ``hydra.launcher.gpus_per_node``) before ``main`` runs, and because the processes that run
``main`` again import that module first: a SLURM job (submitit unpickles ``main``), a joblib worker of
``hydra/launcher=local_parallel``, a ``ddp`` child (which re-runs the script) and a ``ddp_spawn`` child (which
imports the script as ``__mp_main__``).

* ``${cfnsr_len:${data.class_names}}`` (``conf/data/*.yaml``): ``num_classes`` derived from ``class_names``, so the
  count is never written twice.
* ``${cfnsr_csv_labels:<csv>}`` (``conf/data/folder.yaml``): the sorted labels of a folder corpus's CSV.
* ``${job_dirname:<num>,<override_dirname>}`` (``conf/hydra/default.yaml``, ``conf/hparams_search/optuna.yaml``):
  a multirun job's folder name (``cfnsr/runs/job_dirs.py``).
* ``${slurm_gpus:${trainer.accelerator},${trainer.devices}}`` (``conf/hydra/launcher/slurm.yaml``): the GPUs per
  node a SLURM job asks for.
* ``${sync_batchnorm_for:${.accelerator}}`` (``conf/trainer/ddp.yaml``): SyncBatchNorm on GPUs only. PyTorch's
  SyncBatchNorm refuses CPU modules ("SyncBatchNorm layers only work with GPU modules"), so CPU (gloo) data
  parallel keeps per-process BatchNorm statistics.
* ``${job_gpu:}`` (``conf/trainer/gpu_per_job.yaml``): the GPU of one job of a local parallel sweep
  (``hydra/launcher=local_parallel``). Each worker process claims one free GPU for its lifetime through a lock file
  per GPU, so the jobs that joblib runs at once never share a GPU (a job number modulo the GPU count would: joblib
  hands the next job to whichever worker finishes first), and a second sweep on the same machine takes the GPUs
  that are still free.

torch and the folder corpus are imported inside the resolvers that need them, when a config calls them: the
preprocessing and download jobs register the same resolvers and never load torch (``tests/test_resolvers.py``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from omegaconf import OmegaConf

from cfnsr.runs.job_dirs import job_dirname

GPU_ACCELERATORS = {"gpu", "cuda"}
# One lock file per GPU index, shared by every cfnsr job of this user on this machine.
GPU_LOCK_DIR_ENV = "CFNSR_GPU_LOCK_DIR"


def sync_batchnorm_for(accelerator: str) -> bool:
    """True when ``accelerator`` runs on CUDA GPUs ("gpu", "cuda", or "auto" on a machine with a GPU)."""
    name = str(accelerator).lower()
    if name == "auto":
        import torch

        return torch.cuda.is_available()
    return name in GPU_ACCELERATORS


def _gpu_lock_dir() -> Path:
    default = Path(tempfile.gettempdir()) / f"cfnsr-gpu-locks-{os.getuid()}"
    return Path(os.environ.get(GPU_LOCK_DIR_ENV) or default)


_claimed: dict[str, object] = {}  # this process's claim: {"index": int, "lock": FileLock}


def job_gpu(count: int | None = None) -> list[int]:
    """``[i]``: the index of the GPU this process holds (claimed on first call, kept until the process ends).

    count: GPUs to choose from (default: ``torch.cuda.device_count()``, i.e. those in CUDA_VISIBLE_DEVICES).
    Returned as a one-element list because Lightning reads ``devices=[i]`` as "GPU i" (``devices=1`` would mean
    "one GPU", always the first). The same process always gets the same GPU: OmegaConf calls a resolver on every
    access, and joblib's workers run one job after another. Raises RuntimeError when no GPU is free.
    """
    if "index" in _claimed:
        return [int(_claimed["index"])]  # type: ignore[call-overload]
    if count is None:
        import torch

        count = torch.cuda.device_count()
    if count < 1:
        raise RuntimeError("trainer=gpu_per_job: no CUDA GPU is visible to this process; use trainer=cpu for "
                           "CPU jobs of a local parallel sweep")
    lock_dir = _gpu_lock_dir()
    lock_dir.mkdir(parents=True, exist_ok=True)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").replace(",", "-") or "all"
    for index in range(count):
        # The lock name carries CUDA_VISIBLE_DEVICES: index 0 of "2,3" is another GPU than index 0 of all.
        lock = FileLock(str(lock_dir / f"visible-{visible}.gpu{index}.lock"), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            continue
        _claimed.update(index=index, lock=lock)  # held (the lock stays open) until this process exits
        return [index]
    raise RuntimeError(
        f"trainer=gpu_per_job: all {count} GPU(s) are held by other cfnsr jobs on this machine (lock files in "
        f"{lock_dir}); run at most one job per GPU: hydra.launcher.n_jobs<={count}")


def slurm_gpus(accelerator: str, devices: int | str) -> int | None:
    """GPUs per node a SLURM job asks for: ``devices`` for a GPU trainer, none (no ``--gpus-per-node``) for CPU.

    ``accelerator=auto`` is refused: SLURM must know whether to allocate GPUs before the job starts.
    """
    accelerator = str(accelerator).lower()
    if accelerator == "cpu":
        return None
    if accelerator not in GPU_ACCELERATORS:
        raise ValueError(f"trainer.accelerator={accelerator}: a SLURM job needs trainer.accelerator=gpu or cpu to "
                         f"know whether to request GPUs (hydra.launcher.gpus_per_node)")
    if not str(devices).isdigit() or int(devices) < 1:
        raise ValueError(f"trainer.devices={devices}: a SLURM job needs a number of GPUs per node (one SLURM task "
                         f"per GPU), not {devices!r}")
    return int(devices)


def csv_labels(csv_path: str) -> list[str]:
    """The sorted distinct labels of a folder corpus's CSV (``cfnsr.data.folder_corpus.csv_class_names``)."""
    from cfnsr.data.folder_corpus import csv_class_names

    return csv_class_names(csv_path)


# name -> function: every resolver of the configs, in one place.
RESOLVERS: dict[str, Callable[..., Any]] = {
    "cfnsr_len": len,
    "cfnsr_csv_labels": csv_labels,
    "job_dirname": job_dirname,
    "slurm_gpus": slurm_gpus,
    "sync_batchnorm_for": sync_batchnorm_for,
    "job_gpu": job_gpu,
}


def register_resolvers() -> None:
    """Register every resolver of ``RESOLVERS`` with OmegaConf (idempotent: a name already registered is kept)."""
    for name, fn in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
