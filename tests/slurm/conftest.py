"""The ``slurm`` tests: a real one-node SLURM cluster started by ``scripts/slurm_cluster.sh``.

They are opt-in: ``pytest -m slurm`` runs them; any other run deselects them (also ``-m "not slow"``), so a plain
``pytest`` never starts daemons. Under ``CI=true`` a cluster that cannot start is a failure, elsewhere a skip.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from tests_helpers import TINY_DATA, TINY_FOLDS

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "slurm_cluster.sh"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Only a marker expression that names slurm selects these tests.
    if "slurm" in (config.option.markexpr or ""):
        return
    keep = [i for i in items if i.get_closest_marker("slurm") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i.get_closest_marker("slurm") is not None])
        items[:] = keep


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"SLURM cluster unavailable under CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[dict[str, str]]:
    """Start (or reuse) the local cluster; yields the environment its clients need (SLURM_CONF).

    A cluster this fixture started is stopped at the end of the session; one that was running is left running.
    """
    if importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None:
        _unavailable('hydra-submitit-launcher is not installed (pip install -e ".[slurm]")')
    if shutil.which("slurmctld") is None or shutil.which("munged") is None:
        _unavailable("SLURM is not installed (scripts/slurm_cluster.sh install, or apt-get install slurm-wlm munge)")
    if os.geteuid() != 0:
        _unavailable("the local SLURM cluster needs root (slurmd starts jobs as the submitting user)")
    was_running = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True).returncode == 0
    done = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        _unavailable(f"scripts/slurm_cluster.sh start failed:\n{done.stderr[-2000:]}")
    env_line = subprocess.run(["bash", str(SCRIPT), "env"], capture_output=True, text=True, check=True).stdout
    conf = env_line.strip().split("=", 1)[1]
    os.environ["SLURM_CONF"] = conf  # sbatch/squeue/scontrol from this process and from submitit
    yield {"SLURM_CONF": conf}
    if not was_running:
        subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, timeout=120)


@pytest.fixture
def tiny_conf_dir(tmp_path: Path) -> Path:
    """A config dir with ``experiment=tiny_e2e``: the tiny corpus, paper protocol, one CPU epoch, quiet output."""
    exp_dir = tmp_path / "conf" / "experiment"
    exp_dir.mkdir(parents=True)
    settings = OmegaConf.from_dotlist([
        TINY_FOLDS, *TINY_DATA, "protocol.name=paper", "protocol.selection=best test epoch (paper protocol)",
        "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "preprocess.workers=0",
    ])
    (exp_dir / "tiny_e2e.yaml").write_text("# @package _global_\n" + OmegaConf.to_yaml(settings))
    return tmp_path / "conf"
