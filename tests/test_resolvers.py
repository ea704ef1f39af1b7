"""Machine-dependent config values: SyncBatchNorm only on GPUs, one GPU per job of a local parallel sweep."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests_helpers import compose_train

from cfnsr.builders.resolvers import sync_batchnorm_for

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("accelerator", "expected"), [("cpu", False), ("gpu", True), ("cuda", True),
                                                       ("mps", False)])
def test_sync_batchnorm_follows_the_accelerator(accelerator: str, expected: bool):
    assert sync_batchnorm_for(accelerator) is expected


def test_ddp_config_turns_sync_batchnorm_off_on_cpu(tmp_path: Path):
    import cfnsr.builders.objects  # noqa: F401 - registers the resolvers, as every run does

    on_cpu = compose_train(["trainer=ddp", "trainer.accelerator=cpu"], tmp_path, tmp_path / "out")
    on_gpu = compose_train(["trainer=ddp"], tmp_path, tmp_path / "out")
    forced = compose_train(["trainer=ddp", "trainer.accelerator=cpu", "trainer.sync_batchnorm=true"], tmp_path,
                           tmp_path / "out")
    assert (on_cpu.trainer.sync_batchnorm, on_gpu.trainer.sync_batchnorm, forced.trainer.sync_batchnorm) == \
        (False, True, True)


# A process that claims a GPU out of 2, prints it, asks again (same answer), then holds it until stdin closes.
CLAIM = ("import sys\nfrom cfnsr.builders.resolvers import job_gpu\n"
         "try:\n    a = job_gpu(2)\nexcept RuntimeError as e:\n    print('error', e, flush=True); sys.exit(3)\n"
         "print(a[0], job_gpu(2)[0], flush=True)\nsys.stdin.read()\n")


def _claimer(lock_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CFNSR_GPU_LOCK_DIR": str(lock_dir), "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen([sys.executable, "-c", CLAIM], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env)


def test_job_gpu_gives_each_running_process_its_own_gpu(tmp_path: Path):
    first, second = _claimer(tmp_path), _claimer(tmp_path)
    try:
        held_by_first = first.stdout.readline().split()
        claims = sorted(held_by_first + second.stdout.readline().split())
        assert claims == ["0", "0", "1", "1"]  # distinct GPUs, and each process keeps its own on a second call
        third = _claimer(tmp_path)
        out, _ = third.communicate(timeout=60)
        assert third.returncode == 3 and "all 2 GPU(s) are held" in out and "n_jobs<=2" in out
        first.stdin.close()  # a finished worker frees its GPU for the next
        first.wait(timeout=60)
        fourth = _claimer(tmp_path)
        assert fourth.stdout.readline().split()[0] == held_by_first[0]  # the GPU the finished worker freed
        fourth.stdin.close()
        fourth.wait(timeout=60)
    finally:
        for p in (first, second):
            if p.poll() is None:
                p.stdin.close()
                p.wait(timeout=60)
