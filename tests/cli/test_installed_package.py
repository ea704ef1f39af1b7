"""``pip install .`` (not editable) gives working commands: the configs travel in the wheel (``pkg://cfnsr.conf``)
and the console scripts run a job from any folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from tests_helpers import TINY_DATA, TINY_FOLDS

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ folder of a virtual environment holding cfnsr installed from its wheel (dependencies from here)."""
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(root / "dist"), str(REPO)], check=True, timeout=600)
    wheel = next((root / "dist").glob("cfnsr-*.whl"))
    env_dir = root / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(env_dir / "bin" / "python"), "install", "--no-deps", "--ignore-installed",
                    "-q", str(wheel)], check=True, timeout=600)
    return env_dir / "bin"


def _run(bin_dir: Path, cwd: Path, *cmd: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the wheel's cfnsr, not this checkout's
    return subprocess.run([str(bin_dir / cmd[0]), *cmd[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_wheel_carries_the_configs_and_the_commands(installed: Path, tmp_path: Path, tiny_data_dir: Path) -> None:
    where = _run(installed, tmp_path, "python", "-c", "import cfnsr, sys; print(cfnsr.__file__)")
    assert where.returncode == 0 and str(installed.parent) in where.stdout, where.stdout + where.stderr

    helped = _run(installed, tmp_path, "cfnsr-train", "--help")
    assert helped.returncode == 0, helped.stderr[-2000:]
    assert "fusion: " in helped.stdout and "msaf" in helped.stdout

    ran = _run(installed, tmp_path, "cfnsr-train", "debug=fast_dev_run", "fusion=concat_fc", TINY_FOLDS, *TINY_DATA,
               f"paths.data_dir={tiny_data_dir}", "trainer.enable_progress_bar=false", "preprocess.workers=0")
    assert ran.returncode == 0, ran.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in (tmp_path / "outputs").rglob("metrics.json")]
    assert len(records) == 1 and records[0]["status"] == "debug", records
    assert records[0]["fusion"] == "concat_fc"

    listed = _run(installed, tmp_path, "cfnsr-complexity", "backbone=tiny", "fusion=averaging")
    assert listed.returncode == 0 and "averaging" in listed.stdout, listed.stderr[-2000:]
