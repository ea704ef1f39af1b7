"""The one resolver registry (cfnsr.conf_resolvers): every resolver the configs use is listed there, registered by
the entry points and never by an import; machine-dependent values: SyncBatchNorm only on GPUs, one GPU per job of a
local parallel sweep."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests_helpers import compose_train

from cfnsr.conf_resolvers import RESOLVERS, sync_batchnorm_for

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter (this test session has registered the resolvers already)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)


def test_importing_the_package_registers_no_resolver():
    """Before: ``import cfnsr`` registered cfnsr_len/cfnsr_csv_labels and ``import cfnsr.builders.objects`` two more."""
    res = _python("import cfnsr, cfnsr.builders.objects, cfnsr.runs.job_dirs, cfnsr.tasks.train\n"
                  "from omegaconf import OmegaConf\n"
                  f"print(sorted(n for n in {sorted(RESOLVERS)!r} if OmegaConf.has_resolver(n)))")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_the_registry_lists_every_resolver_the_configs_use():
    used = {m for path in (ROOT / "conf").rglob("*.yaml") for m in re.findall(r"\$\{([\w.]+):", path.read_text())}
    used = {n for n in used if n not in ("now", "hydra") and not n.startswith("oc.")}  # Hydra's, OmegaConf's own
    assert used <= set(RESOLVERS), used - set(RESOLVERS)
    assert {"cfnsr_len", "job_dirname", "job_gpu"} <= used  # the scan does find resolver calls
    # One place registers resolvers: the registry.
    registering = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "cfnsr").rglob("*.py")
                         if "register_new_resolver" in p.read_text())
    assert registering == ["cfnsr/conf_resolvers.py"]


@pytest.mark.parametrize(("entry", "config", "overrides"), [
    ("cfnsr.cli.preprocess", "preprocess_job", []),
    ("cfnsr.cli.download", "download", []),
    ("cfnsr.cli.train", "train", ["data=ravdess", "trainer=ddp", "trainer.accelerator=cpu"]),
])
def test_each_entry_point_registers_what_its_config_resolves(entry: str, config: str, overrides: list[str]):
    """Importing a cli module registers the resolvers (before hydra.main composes); the preprocessing and download
    configs resolve without loading torch or the data package, which the registry imports only when called."""
    code = (f"import sys, {entry}\nfrom hydra import compose, initialize_config_dir\nfrom omegaconf import OmegaConf\n"
            f"with initialize_config_dir(config_dir={str(ROOT / 'conf')!r}, version_base='1.3'):\n"
            f"    cfg = compose({config!r}, overrides={overrides!r}, return_hydra_config=True)\n"
            "cfg.hydra.job.num = 3\n"
            "for key in {'data', 'trainer', 'preprocess', 'download'} & set(cfg):\n"  # the rest needs a Hydra run
            "    OmegaConf.to_container(cfg[key], resolve=True)\n"
            "assert cfg.data.num_classes == len(cfg.data.class_names)\n"
            "print(cfg.hydra.sweep.subdir, 'torch' in sys.modules, 'cfnsr.data' in sys.modules)")
    res = _python(code)
    assert res.returncode == 0, res.stderr[-3000:]
    subdir, torch_loaded, data_loaded = res.stdout.split()
    assert subdir.startswith("3_")  # ${job_dirname:...} resolved
    if config != "train":
        assert (torch_loaded, data_loaded) == ("False", "False")


@pytest.mark.parametrize(("accelerator", "expected"), [("cpu", False), ("gpu", True), ("cuda", True),
                                                       ("mps", False)])
def test_sync_batchnorm_follows_the_accelerator(accelerator: str, expected: bool):
    assert sync_batchnorm_for(accelerator) is expected


def test_ddp_config_turns_sync_batchnorm_off_on_cpu(tmp_path: Path):
    on_cpu = compose_train(["trainer=ddp", "trainer.accelerator=cpu"], tmp_path, tmp_path / "out")
    on_gpu = compose_train(["trainer=ddp"], tmp_path, tmp_path / "out")
    forced = compose_train(["trainer=ddp", "trainer.accelerator=cpu", "trainer.sync_batchnorm=true"], tmp_path,
                           tmp_path / "out")
    assert (on_cpu.trainer.sync_batchnorm, on_gpu.trainer.sync_batchnorm, forced.trainer.sync_batchnorm) == \
        (False, True, True)


# A process that claims a GPU out of 2, prints it, asks again (same answer), then holds it until stdin closes.
CLAIM = ("import sys\nfrom cfnsr.conf_resolvers import job_gpu\n"
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
