"""A sweep through hydra/launcher=local_parallel (joblib): two jobs at once on this machine, each with its record."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests_helpers import TINY_DATA, TINY_FOLDS, require_module

from cfnsr.runs.record import read_record

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_local_parallel_sweep_runs_both_jobs(tiny_data_dir: Path, tmp_path: Path):
    require_module("hydra_plugins.hydra_joblib_launcher", "joblib")
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, "train.py", "-m", "hydra/launcher=local_parallel", "fold=1,2", TINY_FOLDS, *TINY_DATA,
           "protocol=paper", "fusion=concat_fc", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
           "preprocess.workers=0", "measure_gflops=false", f"hydra.sweep.dir={sweep}"]
    env = {**os.environ, "CFNSR_DATA_DIR": str(tiny_data_dir), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in done.stdout + done.stderr  # the joblib launcher ran them
    dirs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    records = [read_record(d) for d in dirs]
    assert [(r["fold"], r["status"]) for r in records] == [(1, "finished"), (2, "finished")]
    assert len({r["run_id"] for r in records}) == 2
    assert all(r["test"]["n"] == 120 for r in records)  # 2 test actors x 60 clips each
