"""The command line answers before the training stack loads, with cfnsr's own help page."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "pytorch_lightning", "lightning_fabric", "cfnsr.tasks", "cfnsr.models", "cfnsr.module", "cfnsr.download")


def _imported_modules(script: str, *args: str) -> tuple[str, set[str]]:
    """(stdout, top-level names of the modules ``python -X importtime <script> <args>`` imported)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", script, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return proc.stdout, names


@pytest.mark.parametrize("script,args", [
    ("train.py", ["--help"]), ("train.py", ["--cfg", "job"]), ("train.py", ["--info"]),
    ("evaluate.py", ["--help"]), ("predict.py", ["--help"]), ("preprocess.py", ["--cfg", "job"]),
    ("complexity.py", ["--help"]), ("download.py", ["--help"]),
])
def test_help_and_config_do_not_load_the_training_stack(script: str, args: list[str]) -> None:
    out, names = _imported_modules(script, *args)
    assert out.strip()
    loaded = sorted(n for n in names if n.startswith(HEAVY))
    assert not loaded, f"{script} {' '.join(args)} imported {loaded[:5]}"


def test_help_is_cfnsrs_own_page() -> None:
    out, _ = _imported_modules("train.py", "--help")
    assert out.startswith("cfnsr train:")
    for expected in ("fusion: ", "averaging", "cfnsr", "trainer: ", "-m fold=", "debug=fast_dev_run",
                     "hparams_search=optuna", "hydra/launcher=slurm", "predict.py", "docs/"):
        assert expected in out, expected
    assert "powered by Hydra" not in out  # Hydra's generic page
