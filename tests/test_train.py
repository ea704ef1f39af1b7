"""End-to-end: the real training job on the tiny synthetic corpus (generate -> preprocess -> train -> test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tests_helpers import compose_eval, compose_train

from cfnsr.runs.record import read_record
from cfnsr.tasks.evaluate import evaluate
from cfnsr.tasks.train import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained_run(tiny_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("run")
    cfg = compose_train(["trainer.max_epochs=4", "logger=wandb"], tiny_data_dir, out)
    return train(cfg)


def test_train_writes_a_complete_record_well_above_chance(trained_run: dict):
    rec = read_record(trained_run["run_dir"])
    assert rec["status"] == "finished" and rec["protocol"] == "clean"
    assert rec["selection"] == "best validation epoch (clean protocol)"
    assert rec["test_actors"] == [1, 2] and rec["val_actors"] == [3, 4]
    assert rec["test"]["n"] == 120 == sum(map(sum, rec["test"]["confusion"]))  # 2 actors x 60 clips
    assert rec["test"]["war"] > 0.35  # chance is 1/8
    assert rec["params"] > 0 and rec["gflops"] > 0 and rec["epochs"] == 4
    run = Path(rec["run_dir"])
    assert Path(rec["best_ckpt"]).is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    assert (run / "config.yaml").is_file() and (run / "csv" / "metrics.csv").is_file()


def test_wandb_offline_run_files(trained_run: dict):
    runs = list((Path(trained_run["run_dir"]) / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("run-*.wandb")) and (runs[0] / "files").is_dir()


def test_checkpoints_load_with_weights_only_and_last_is_the_last_epoch(trained_run: dict):
    best = torch.load(trained_run["best_ckpt"], map_location="cpu", weights_only=True)
    assert best["cfnsr_config"]["fusion"]["name"] == "cfnsr"
    assert best["epoch"] == trained_run["best_epoch"]
    last = torch.load(trained_run["last_ckpt"], map_location="cpu", weights_only=True)
    assert last["epoch"] == trained_run["epochs"] - 1


def test_evaluate_reproduces_the_training_test_metrics(trained_run: dict, tiny_data_dir: Path, tmp_path: Path,
                                                      capsys):
    cfg = compose_eval([f"ckpt_path={trained_run['best_ckpt']}"], tmp_path, tiny_data_dir)
    result = evaluate(cfg)
    for key in ("war", "uar", "f1"):
        assert result["test"][key] == pytest.approx(trained_run["test"][key], abs=1e-6)
    assert result["test"]["confusion"] == trained_run["test"]["confusion"]
    assert f"{100 * trained_run['test']['war']:7.2f}" in capsys.readouterr().out


def test_resume_ends_with_the_same_metrics(tiny_data_dir: Path, tmp_path: Path, monkeypatch):
    from cfnsr.module import EmotionModule

    common = ["fusion=msaf", "protocol=paper", "fold=2", "trainer.max_epochs=2"]
    full = train(compose_train([*common, "logger=csv"], tiny_data_dir, tmp_path / "full"))
    original = EmotionModule.on_train_epoch_start

    def killed(self):  # the run dies at the start of its second epoch, after last.ckpt of the first
        if self.current_epoch == 1:
            raise RuntimeError("killed")
        original(self)

    monkeypatch.setattr(EmotionModule, "on_train_epoch_start", killed)
    with pytest.raises(RuntimeError, match="killed"):
        train(compose_train(common, tiny_data_dir, tmp_path / "half"))
    monkeypatch.setattr(EmotionModule, "on_train_epoch_start", original)
    resumed = train(compose_train([*common, f"ckpt_path={tmp_path / 'half' / 'checkpoints' / 'last.ckpt'}"],
                                  tiny_data_dir, tmp_path / "launch"))
    assert resumed["epochs"] == 2 and resumed["run_dir"] == str((tmp_path / "half").resolve())
    for tag in ("test", "test_last"):
        assert resumed[tag] == full[tag]
    a = torch.load(full["last_ckpt"], weights_only=True)["state_dict"]
    b = torch.load(resumed["last_ckpt"], weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_failed_run_leaves_a_failed_record(tiny_data_dir: Path, tmp_path: Path):
    cfg = compose_train(["fold=2", "init.video=/nonexistent.ckpt"], tiny_data_dir, tmp_path)
    with pytest.raises(Exception, match="nonexistent"):
        train(cfg)
    # The error happened before training started; the record still says what failed, for the report.
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["status"] == "failed" and "nonexistent" in record["error"] and record["fold"] == 2


def test_storage_modes_deliver_identical_batches(tiny_data_dir: Path, tmp_path: Path):
    # mmap (with loader workers), host memory and device-resident storage must train the same model.
    common = ["fusion=averaging", "fold=3", "trainer.max_epochs=1", "measure_gflops=false"]
    results = {
        storage: train(compose_train([*common, f"data.storage={storage}", f"data.num_workers={workers}"],
                                     tiny_data_dir, tmp_path / storage))["test_last"]
        for storage, workers in (("mmap", 2), ("memory", 0), ("device", 0))
    }
    assert results["mmap"] == results["memory"] == results["device"]
