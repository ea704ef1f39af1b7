"""A real Hydra multirun (2 folds x 2 fusions) through train.py, then the report built from its run folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from tests_helpers import TINY_DATA, TINY_FOLDS

from cfnsr.report import build_report, collect_runs
from cfnsr.runs.record import read_record

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_multirun_folders_and_report_match_the_runs(tiny_data_dir: Path, tmp_path: Path):
    # The tiny-corpus settings go in an experiment file (excluded from folder names), as a user's would.
    exp_dir = tmp_path / "conf" / "experiment"
    exp_dir.mkdir(parents=True)
    settings = OmegaConf.from_dotlist([
        TINY_FOLDS, *TINY_DATA, "protocol.name=paper", "protocol.selection=best test epoch (paper protocol)",
        "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "preprocess.workers=0",
    ])
    (exp_dir / "tiny_e2e.yaml").write_text("# @package _global_\n" + OmegaConf.to_yaml(settings))
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, "train.py", "--config-dir", str(tmp_path / "conf"), "-m", "experiment=tiny_e2e",
           "fold=1,2", "fusion=averaging,concat_fc", f"hydra.sweep.dir={sweep}"]
    env = {**os.environ, "CFNSR_DATA_DIR": str(tiny_data_dir)}
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    dirs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert dirs == ["0_fold-1+fusion-averaging", "1_fold-1+fusion-concat_fc", "2_fold-2+fusion-averaging",
                    "3_fold-2+fusion-concat_fc"]
    records = {(r["fusion"], r["fold"]): r for r in (read_record(sweep / d) for d in dirs)}
    assert all(r["status"] == "finished" for r in records.values())

    runs, skipped = collect_runs([sweep])
    report = build_report(runs)
    assert not skipped and len(runs) == 4
    (table,) = report.groups
    for row in table.rows:
        wars = [records[(row.fusion, fold)]["test"]["war"] * 100 for fold in (1, 2)]
        assert row.per_fold_war == pytest.approx(dict(zip((1, 2), wars, strict=False)))
        assert row.war_mean == pytest.approx(sum(wars) / 2)

    out = subprocess.run([sys.executable, "-m", "cfnsr.report", str(sweep)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Concat + FC" in out.stdout and "best test epoch (paper protocol)" in out.stdout
    assert (sweep / "report.md").is_file() and (sweep / "report.csv").is_file()
