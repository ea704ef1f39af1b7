"""The package's layers hold (docs/architecture.md): ``lint-imports`` with the contracts in pyproject.toml, the
entry-point contracts, and, as a check of their strictness, the same contracts on a copy of the package with
three wrong-way imports put in (a function-level import up the layers, an import between siblings, an indirect
import of torch under the preprocessing job): each one is reported."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests_helpers import unavailable

REPO = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


def _lint_imports() -> str:
    exe = shutil.which("lint-imports")
    if exe is None:
        unavailable("import-linter not installed (pip install -e '.[dev]')")
    return exe


def test_package_layers_are_kept():
    res = _run([_lint_imports(), "--no-cache"])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout


def test_entry_points_are_thin():
    res = _run([sys.executable, "scripts/lint_layers.py", "docs/importlinter-entry.toml"])
    assert res.returncode == 0, res.stdout + res.stderr


# (file in the copy, code appended to it, the import chain lint-imports must print)
WRONG_WAY = [
    ("cfnsr/runs/record.py", "\n\ndef _up():\n    from cfnsr.tasks import train  # noqa: F401\n",
     "cfnsr.runs.record -> cfnsr.tasks.train"),
    ("cfnsr/models/_sibling.py", "import cfnsr.data.cache  # noqa: F401\n", "cfnsr.models._sibling -> cfnsr.data.cache"),
    ("cfnsr/data/settings.py", "\n\ndef _torch():\n    import torch  # noqa: F401\n", "cfnsr.data.settings -> torch"),
]


def test_the_contracts_report_each_wrong_way_import(tmp_path: Path):
    """The contracts of pyproject.toml, unchanged, on a copy of ``cfnsr`` with the imports of ``WRONG_WAY`` added."""
    shutil.copytree(REPO / "cfnsr", tmp_path / "cfnsr", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    for name, code, _ in WRONG_WAY:
        with (tmp_path / name).open("a") as f:
            f.write(code)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}  # the copy, not this checkout, is the cfnsr analysed
    res = _run([_lint_imports(), "--no-cache"], cwd=tmp_path, env=env)
    out = " ".join(res.stdout.split())  # lint-imports wraps long lines
    assert res.returncode != 0 and "0 broken" not in out, res.stdout
    for _, _, chain in WRONG_WAY:
        assert chain in out, f"not reported: {chain}\n{res.stdout}"
    # the indirect one is reported against the job that may not import torch, through the module that does
    assert "cfnsr.tasks.preprocess is not allowed to import torch" in out, res.stdout
