"""Run ``lint-imports`` over a checkout's ``cfnsr`` package *and* its entry-point scripts.

import-linter only analyses packages, and ``train.py``, ``evaluate.py``, ``preprocess.py``, ``predict.py`` (and
``complexity.py`` where it exists) are top-level scripts. This copies them into a temporary package ``entry`` so that
a contract can name ``entry.preprocess`` and so on, then runs ``lint-imports <config>`` with ``PYTHONPATH`` set to the
checkout and that package. Exit status: lint-imports'.

    python scripts/lint_layers.py docs/importlinter-entry.toml                      # this checkout
    python scripts/lint_layers.py docs/importlinter-entry.toml --repo /tmp/other    # another checkout (a worktree)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ENTRY_POINTS = ("train", "evaluate", "preprocess", "predict", "complexity", "download")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", type=Path, help="an import-linter config (TOML) whose root_packages are cfnsr, entry")
    ap.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1], help="checkout to analyse")
    args = ap.parse_args(argv)
    repo, config = args.repo.resolve(), args.config.resolve()
    with tempfile.TemporaryDirectory(prefix="lint-layers-") as tmp:
        pkg = Path(tmp) / "entry"
        pkg.mkdir()
        (pkg / "__init__.py").write_text('"""The entry-point scripts of the checkout, as modules."""\n')
        for name in ENTRY_POINTS:
            if (repo / f"{name}.py").is_file():
                shutil.copy(repo / f"{name}.py", pkg / f"{name}.py")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), tmp])}
        exe = shutil.which("lint-imports") or "lint-imports"
        return subprocess.run([exe, "--no-cache", str(config)], cwd=repo, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
