"""Config resolvers that depend on the machine a job runs on.

* ``${sync_batchnorm_for:${.accelerator}}`` (``conf/trainer/ddp.yaml``): SyncBatchNorm on GPUs only. PyTorch's
  SyncBatchNorm refuses CPU modules ("SyncBatchNorm layers only work with GPU modules"), so CPU (gloo) data
  parallel keeps per-process BatchNorm statistics.
* ``${job_gpu:}`` (``conf/trainer/gpu_per_job.yaml``): the GPU of one job of a local parallel sweep
  (``hydra/launcher=local_parallel``). Each worker process claims one free GPU for its lifetime through a lock file
  per GPU, so the jobs that joblib runs at once never share a GPU (a job number modulo the GPU count would: joblib
  hands the next job to whichever worker finishes first), and a second sweep on the same machine takes the GPUs
  that are still free.

``register()`` is idempotent; ``cfnsr.builders.objects`` calls it on import, so every entry point that builds a trainer
(and every test composing a config) can resolve these keys.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from filelock import FileLock, Timeout
from omegaconf import OmegaConf

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


def register() -> None:
    for name, fn in (("sync_batchnorm_for", sync_batchnorm_for), ("job_gpu", job_gpu)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
