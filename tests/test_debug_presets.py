"""The debug presets (conf/debug/): they run train() to the end and leave a record no report takes for a result."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests_helpers import compose_train

from cfnsr.report import collect_runs
from cfnsr.runs.record import read_record
from cfnsr.tasks.train import debug_flags, train


@pytest.mark.parametrize("preset", ["default", "fast_dev_run", "overfit"])
def test_presets_compose_as_debug_runs(tmp_path: Path, preset: str):
    cfg = compose_train([f"debug={preset}"], tmp_path, tmp_path / "run")
    assert cfg.experiment_name == "debug" and cfg.logger is None and cfg.trainer.detect_anomaly
    assert cfg.trainer.devices == 1 and cfg.data.num_workers == 0
    flags = {"default": [], "fast_dev_run": ["trainer.fast_dev_run=True"], "overfit": ["trainer.overfit_batches=3"]}
    assert debug_flags(cfg) == flags[preset]


def test_no_debug_preset_by_default(tmp_path: Path):
    cfg = compose_train([], tmp_path, tmp_path / "run")
    assert debug_flags(cfg) == [] and "fast_dev_run" not in cfg.trainer


@pytest.mark.slow
def test_fast_dev_run_ends_without_checkpoints_with_a_debug_record(tiny_data_dir: Path, tmp_path: Path, capsys):
    record = train(compose_train(["debug=fast_dev_run", "measure_gflops=false"], tiny_data_dir, tmp_path / "run"))
    run = tmp_path / "run"
    assert record["status"] == "debug" == read_record(run)["status"]
    assert record["debug"] == ["trainer.fast_dev_run=True"]
    assert not (run / "checkpoints").exists() or not any((run / "checkpoints").iterdir())
    assert record["test"]["n"] > 0 and "train/loss" in " ".join(record["final_metrics"])
    out = capsys.readouterr().out
    assert "DEBUG RUN (trainer.fast_dev_run=True)" in out and "checkpoints: none written" in out
    runs, skipped = collect_runs([run])
    assert not runs and "debug run (trainer.fast_dev_run=True)" in skipped[0].reason


@pytest.mark.slow
def test_overfit_trains_on_a_few_batches_to_the_end(tiny_data_dir: Path, tmp_path: Path):
    record = train(compose_train(["debug=overfit", "trainer.max_epochs=2", "measure_gflops=false"], tiny_data_dir,
                                 tmp_path / "run"))
    assert record["status"] == "debug" and record["debug"] == ["trainer.overfit_batches=3"]
    assert record["epochs"] == 2 and Path(record["last_ckpt"]).is_file() and record["test"]["n"] == 120
    assert "val/war" in record["final_metrics"]


@pytest.mark.parametrize(("override", "flag"), [
    ("+trainer.limit_train_batches=1", "trainer.limit_train_batches=1"),  # an int: one batch (before: not flagged)
    ("+trainer.limit_val_batches=0.5", "trainer.limit_val_batches=0.5"),
])
def test_a_limit_to_part_of_the_data_makes_a_debug_run(tmp_path: Path, override: str, flag: str):
    assert debug_flags(compose_train([override], tmp_path, tmp_path / "run")) == [flag]
    assert debug_flags(compose_train(["+trainer.limit_train_batches=1.0"], tmp_path, tmp_path / "run")) == []
