"""Runs written before the package moved (commit 89d6ea0: cfnsr.train, cfnsr.checkpoints, ...) still work with this
code, shown on files that code wrote (tests/fixtures/old_run_89d6ea0, made once, see tests/fixtures/README.md): its
record reads and reports, its checkpoint and cache entry give the probabilities the old code gave, its recipe is a
new run's, and (slow) the checkpoint evaluates to the numbers its record holds. No old code runs here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests_helpers import compose_eval, compose_train

from cfnsr.data.cache import load_clip, verify_entry
from cfnsr.data.settings import check_cache, settings_from_config
from cfnsr.predict.model import load_predictor
from cfnsr.report import build_report, collect_runs
from cfnsr.runs.checkpoint_files import load_checkpoint
from cfnsr.runs.folder import run_identity
from cfnsr.runs.record import read_record

OLD = Path(__file__).resolve().parent / "fixtures" / "old_run_89d6ea0"
RUN, CACHE, CKPT = OLD / "run", OLD / "cache", OLD / "run" / "checkpoints" / "best-e000.ckpt"
# The old run's command beyond tests_helpers.TINY_DATA/TINY_FOLDS (a backbone and Transformer small enough to commit,
# an 8 kHz audio window for a small cache entry); tests/fixtures/README.md has the whole command.
OLD_OVERRIDES = [
    "fold=1", "protocol=clean", "trainer.max_epochs=1", "measure_gflops=false", "logger=csv",
    "preprocess.sample_rate=8000", "backbone.video.stem_channels=4", "backbone.video.base_planes=2",
    "backbone.video.cardinality=2", "backbone.audio.channels=[4,4,8]", "fusion.model.num_layers=1",
    "fusion.model.ffn_multiplier=1",
]
# Defaults changed since: the face detector for clips without landmarks (BlazeFace replaced Haar) and the
# tie-break among equal validation scores (lower val/loss; before, the earliest epoch).
OLD_DEFAULTS = ["preprocess.face_fallback=haar", "callbacks.run_checkpoints.tie_break=null"]


def test_old_record_reads_and_reports():
    record = read_record(RUN)
    assert (record["schema"], record["status"], record["fusion"]) == (2, "finished", "cfnsr")
    assert record["best_ckpt"].endswith("best-e000.ckpt")
    runs, skipped = collect_runs([RUN])
    assert skipped == [] and len(runs) == 1
    (group,) = build_report(runs).groups
    row = group.row("cfnsr")
    assert (row.label, row.n_runs, row.folds, row.seeds) == ("CFN-SR", 1, [1], [1234])
    assert row.war_mean == pytest.approx(100 * record["test"]["war"])
    assert row.uar_mean == pytest.approx(100 * record["test"]["uar"])
    assert row.confusion.tolist() == record["test"]["confusion"]
    # the table is formed from the recorded recipe: all of it but the row keys (fusion.*, model.init.*)
    assert group.recipe == {k: v for k, v in record["recipe"].items() if not k.startswith(("fusion.", "model.init."))}


def test_old_cache_entry_passes_todays_checks():
    saved = load_checkpoint(CKPT)["cfnsr_config"]
    check_cache(CACHE, settings_from_config(saved["preprocess"]))  # what the data module checks; raises on a difference
    (stem,) = json.loads((OLD / "probabilities.json").read_text())["stems"]
    assert verify_entry(CACHE, stem, full=True) is None  # files, sizes, format and sha256 of each array
    frames, mfcc = load_clip(CACHE, stem, mmap=False)
    assert frames.shape == (8, 32, 32, 3) and frames.dtype == np.uint8
    assert mfcc.shape == (13, 39) and mfcc.dtype == np.float32  # 2.45 s at 8 kHz: 1 + 19600 // 512 frames


def test_old_checkpoint_and_cache_entry_give_the_old_codes_probabilities():
    """The probabilities the old code's predictor gave for the cached clip, from today's checkpoint reader, model
    and cache reader: every weight lands where it did and the entry reads back the same."""
    predictor = load_predictor(CKPT)  # weights_only, targets checked against today's configs, strict key match
    assert predictor.fusion == "cfnsr" and predictor.model.__class__.__name__ == "CFNSR"
    expected = json.loads((OLD / "probabilities.json").read_text())
    video, mfcc = zip(*(load_clip(CACHE, s, mmap=False) for s in expected["stems"]), strict=True)
    n = len(video)
    probs = predictor.predict(np.stack(video), np.stack(mfcc), np.zeros(n, bool), np.zeros(n, bool))
    np.testing.assert_allclose(probs, expected["probabilities"], rtol=0, atol=1e-6)


def test_old_recipe_equals_a_new_runs(tmp_path: Path):
    saved = load_checkpoint(CKPT)["cfnsr_config"]
    # With the old defaults named: the same recipe (one report row; a resume accepts the old last.ckpt). With
    # today's defaults: another one.
    old_defaults = compose_train([*OLD_OVERRIDES, *OLD_DEFAULTS], tmp_path, tmp_path / "out")
    assert run_identity(saved) == run_identity(old_defaults)
    assert run_identity(saved) != run_identity(compose_train(OLD_OVERRIDES, tmp_path, tmp_path / "out"))


@pytest.mark.slow
def test_old_checkpoint_evaluates_to_its_recorded_numbers(tiny_data_dir: Path, tmp_path: Path):
    """The session's tiny corpus is the old run's (the generator's legacy preset makes the same mp4 files); the
    evaluation preprocesses it with the checkpoint's settings into its own cache and tests fold 1."""
    from cfnsr.tasks.evaluate import evaluate

    root = compose_train([], tiny_data_dir, tmp_path).data.root
    result = evaluate(compose_eval([f"ckpt_path={CKPT}", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}"],
                                   tmp_path / "eval", tiny_data_dir))
    recorded = read_record(RUN)["test"]
    for key in ("war", "uar", "f1"):
        assert result["test"][key] == pytest.approx(recorded[key], abs=1e-6)
    assert result["test"]["confusion"] == recorded["confusion"]
    assert result["best_epoch"] == 0
