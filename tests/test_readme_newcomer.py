"""The newcomer test: the README's quick start, run as printed, from a copy of the repository's tracked files.

A reader with the README alone must get a trained model, a fold sweep and its report. The commands are taken from
the README's "Quick start" block (not restated here), run in order in a fresh copy of the committed tree (what a
clone holds), with ``<time>`` replaced by the folder the previous command created. Two shortenings keep the test
within a few minutes on 2 cores, both appended as ordinary overrides a reader could type: ``trainer.max_epochs=2``
on each training command, and the sweep's fold list cut to its first two folds. The data folder is the session's
prepared synthetic corpus (``paths.data_dir``), so the corpus is not generated a second time.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def quick_start_commands() -> list[str]:
    """The command lines of the README's quick-start code block, comments dropped."""
    text = (REPO / "README.md").read_text()
    m = re.search(r"^## Quick start.*?^```bash\n(.*?)^```", text, re.S | re.M)
    assert m, "README.md: no '## Quick start' section with a bash block"
    lines = [line.split("#", 1)[0].strip() for line in m.group(1).splitlines()]
    return [line for line in lines if line]


def tracked_copy(dest: Path) -> Path:
    """The repository's committed and tracked files (what a clone has) copied into ``dest``."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        src = REPO / rel
        if src.is_symlink():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(src), dest / rel)
        elif src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def newest(folder: Path) -> Path:
    dirs = [p for p in folder.iterdir() if p.is_dir()]
    assert dirs, f"{folder}: the command created no folder"
    return max(dirs, key=lambda p: p.stat().st_mtime)


def test_readme_quick_start_trains_sweeps_and_reports(tiny_data_dir: Path, tmp_path: Path):
    commands = quick_start_commands()
    kinds = [("train" if "train.py" in c and " -m " not in c else "sweep" if "train.py" in c else
              "report" if "cfnsr.report" in c else "read") for c in commands]
    assert kinds.count("train") >= 1 and kinds.count("sweep") == 1 and kinds.count("report") == 1, commands
    repo = tracked_copy(tmp_path / "clone")
    env = {**os.environ, "PYTHONPATH": str(repo), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    env.pop("CFNSR_RUN_ID", None)
    run_dir = sweep_dir = None
    for command, kind in zip(commands, kinds, strict=True):
        args = shlex.split(command)
        if kind == "read":  # `cat <run>/metrics.json`: the record the reader looks at
            assert run_dir is not None, command
            path = Path(args[-1].replace("outputs/demo/runs/<time>", str(run_dir)))
            record = json.loads((repo / path).read_text() if not path.is_absolute() else path.read_text())
            assert record["status"] == "finished" and record["test"]["n"] > 0, record
            continue
        if args[0] == "python":
            args[0] = sys.executable
        if kind in ("train", "sweep"):
            for i, a in enumerate(args):
                if kind == "sweep" and a.startswith("fold=") and "," in a:
                    args[i] = "fold=" + ",".join(a.split("=", 1)[1].split(",")[:2])
            args += ["trainer.max_epochs=2", f"paths.data_dir={tiny_data_dir}"]
        if kind == "report":
            assert sweep_dir is not None, command
            args = [a.replace("outputs/demo/multirun/<time>", str(sweep_dir)) for a in args]
        proc = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{command}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        if kind == "train":
            run_dir = newest(repo / "outputs" / "demo" / "runs")
            assert (run_dir / "checkpoints").is_dir()
        elif kind == "sweep":
            sweep_dir = newest(repo / "outputs" / "demo" / "multirun")
            jobs = sorted(p for p in sweep_dir.iterdir() if (p / "metrics.json").is_file())
            assert len(jobs) == 2, f"{sweep_dir}: {[p.name for p in sweep_dir.iterdir()]}"
            records = [json.loads((p / "metrics.json").read_text()) for p in jobs]
            assert sorted(r["fold"] for r in records) == [1, 2]
            assert all(r["status"] == "finished" for r in records)
    assert sweep_dir is not None
    csv_path = sweep_dir / "report.csv"
    assert (sweep_dir / "report.md").is_file() and csv_path.is_file(), sorted(p.name for p in sweep_dir.iterdir())
    import csv

    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 1 and rows[0]["fusion"] == "cfnsr" and rows[0]["n_folds"] == "2", rows
    assert 0.0 <= float(rows[0]["war_mean"]) <= 100.0
