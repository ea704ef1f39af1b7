"""Runs written before the package moved (commit 89d6ea0: cfnsr.train, cfnsr.checkpoints, ...) still work with
this code: their best-eNNN checkpoint evaluates, their record reads, and their recipe equals a new run's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests_helpers import TINY_DATA, TINY_FOLDS, compose_eval, compose_train, extract_old_code

from cfnsr.runs.checkpoint_files import load_checkpoint
from cfnsr.runs.folder import run_identity
from cfnsr.runs.record import read_record
from cfnsr.tasks.evaluate import evaluate

REPO = Path(__file__).resolve().parents[1]
OLD_COMMIT = "89d6ea0"


@pytest.fixture(scope="module")
def old_run(tiny_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-epoch run folder written by the code of ``OLD_COMMIT`` (a subprocess with that code on its path)."""
    old = tmp_path_factory.mktemp("old-code")
    extract_old_code(OLD_COMMIT, old)
    run_dir = tmp_path_factory.mktemp("old-run")
    env = {**os.environ, "PYTHONPATH": str(old), "WANDB_MODE": "offline"}
    # the old code knows neither the synthetic presets nor clips_per_actor: its corpus is the legacy one, made by it
    # under its own default root (<data>/synthetic_ravdess)
    old_data = [o for o in TINY_DATA if not o.startswith(("data.generate.preset=", "data.generate.clips_per_actor="))]
    cmd = [sys.executable, str(old / "train.py"), TINY_FOLDS, *old_data, f"paths.data_dir={tiny_data_dir}",
           f"hydra.run.dir={run_dir}", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
           "preprocess.workers=0", "complexity=false", "logger=csv"]  # the old code's name
    res = subprocess.run(cmd, cwd=old, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert (run_dir / "checkpoints" / "best-e000.ckpt").is_file()
    return run_dir


@pytest.mark.slow
def test_old_checkpoint_evaluates_with_the_same_numbers(old_run: Path, tiny_data_dir: Path, tmp_path: Path):
    ckpt = old_run / "checkpoints" / "best-e000.ckpt"
    assert load_checkpoint(ckpt)["cfnsr_config"]["fusion"]["model"]["_target_"] == "cfnsr.models.fusion.cfnsr.CFNSR"
    root = tiny_data_dir / "synthetic_ravdess"  # the old default root (since: synthetic_<preset>)
    result = evaluate(compose_eval([f"ckpt_path={ckpt}", f"data.root={root}", f"data.cache_dir={root}_cache"],
                                   tmp_path, tiny_data_dir))
    recorded = json.loads((old_run / "metrics.json").read_text())
    assert recorded["status"] == "finished"
    for key in ("war", "uar", "f1"):
        assert result["test"][key] == pytest.approx(recorded["test"][key], abs=1e-6)
    assert result["test"]["confusion"] == recorded["test"]["confusion"]


@pytest.mark.slow
def test_old_record_reads_and_its_recipe_equals_a_new_runs(old_run: Path, tiny_data_dir: Path, tmp_path: Path):
    record = read_record(old_run)
    assert record["best_ckpt"].endswith("best-e000.ckpt")
    saved = load_checkpoint(old_run / "checkpoints" / "last.ckpt")["cfnsr_config"]
    common = ["trainer.max_epochs=1", "measure_gflops=false", "logger=csv"]
    # Same recipe but for two defaults changed since: the face detector (BlazeFace replaced Haar, which changes the
    # crops of clips without landmarks) and the tie-break among equal validation scores (lower val/loss; before, the
    # earliest epoch). With the old values named, the same recipe (one report row, a resume accepts the old
    # last.ckpt); with the new defaults, another one.
    haar = compose_train([*common, "preprocess.face_fallback=haar", "callbacks.run_checkpoints.tie_break=null"],
                         tiny_data_dir, tmp_path)
    assert run_identity(saved) == run_identity(haar)
    assert run_identity(saved) != run_identity(compose_train(common, tiny_data_dir, tmp_path))
