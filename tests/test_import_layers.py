"""The package's layers hold (docs/architecture.md): ``lint-imports`` with the contracts in pyproject.toml, the
entry-point contracts, and, as a check of their strictness, the same contracts for the old module names reporting
each wrong-way import of the code before the move (commit 89d6ea0)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests_helpers import extract_old_code, unavailable

REPO = Path(__file__).resolve().parents[1]
OLD_COMMIT = "89d6ea0"


def _run(cmd: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_package_layers_are_kept():
    if shutil.which("lint-imports") is None:
        unavailable("import-linter not installed (pip install -e '.[dev]')")
    res = _run([shutil.which("lint-imports"), "--no-cache"])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout


def test_entry_points_are_thin():
    res = _run([sys.executable, "scripts/lint_layers.py", "docs/importlinter-entry.toml"])
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.slow
def test_contracts_report_every_wrong_way_import_of_the_old_code(tmp_path: Path):
    """The contracts, written for the old names, break on each wrong-way import the layering issue listed."""
    extract_old_code(OLD_COMMIT, tmp_path)
    res = _run([sys.executable, "scripts/lint_layers.py", "docs/importlinter-before.toml", "--repo", str(tmp_path)])
    out = " ".join(res.stdout.split())  # lint-imports wraps long lines
    assert res.returncode != 0
    for line in ("entry.preprocess -> cfnsr.experiment",
                 "cfnsr.complexity -> cfnsr.report.build",
                 "cfnsr.models.init_runs -> cfnsr.run_record",
                 "cfnsr.evaluate -> cfnsr.train",
                 "cfnsr.data.datamodule -> cfnsr.data.preprocess"):
        assert line in out, f"not reported: {line}\n{res.stdout}"
