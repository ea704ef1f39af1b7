"""Trust faults of the training job: checkpoints are data, resume is checked, one folder per run, validation first.

Each test reproduces a case where an earlier cfnsr printed a wrong number calmly or ran foreign code.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tests_helpers import compose_eval, compose_train, interrupted_run

from cfnsr.tasks.evaluate import evaluate
from cfnsr.tasks.train import train

pytestmark = pytest.mark.slow
FAST = ["fusion=averaging", "measure_gflops=false", "fold=2"]


class _Payload:
    """Unpickling this creates ``marker``: the stand-in for an attacker's code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _write_evil(path: Path, marker: Path, like: Path | None = None) -> None:
    """A torch checkpoint file that runs code when unpickled (optionally a copy of a real one plus the payload)."""
    ckpt = torch.load(like, weights_only=True) if like else {"state_dict": {}, "cfnsr_config": {}}
    ckpt["payload"] = _Payload(marker)
    torch.save(ckpt, path)


def _interrupted_run(data: Path, out: Path, monkeypatch, extra: list[str] = ()) -> dict:
    """A 2-epoch run that crashes at the start of its second epoch (as a kill would): last.ckpt holds epoch 0."""
    interrupted_run(monkeypatch, compose_train([*FAST, "trainer.max_epochs=2", *extra], data, out))
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def finished(tiny_data_dir: Path, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("finished")
    return train(compose_train([*FAST, "trainer.max_epochs=2"], tiny_data_dir, out))


# ---------------------------------------------------------------- 1. checkpoints are data, never code
def test_resume_with_crafted_checkpoint_state_runs_no_code(tiny_data_dir, tmp_path, monkeypatch):
    run = tmp_path / "run"
    _interrupted_run(tiny_data_dir, run, monkeypatch)
    marker, evil = tmp_path / "pwned", tmp_path / "evil.ckpt"
    _write_evil(evil, marker)
    last = run / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True)
    # What Lightning's ModelCheckpoint restores: the test step used to load this path with weights_only=False.
    from pytorch_lightning.callbacks import ModelCheckpoint

    top = torch.tensor(1.0)  # an unbeatable score, so the restored path stays the "best" one
    crafted = {"best_model_path": str(evil), "best_model_score": top, "dirpath": str(last.parent),
               "best_k_models": {str(evil): top}, "kth_best_model_path": str(evil), "kth_value": top}
    callbacks = ckpt.setdefault("callbacks", {})
    for key in [k for k in callbacks if k.startswith("ModelCheckpoint")]:
        callbacks[key] = {**callbacks[key], **crafted}
    callbacks[ModelCheckpoint(monitor="val/war", mode="max").state_key] = crafted
    torch.save(ckpt, last)
    record = train(compose_train([*FAST, "trainer.max_epochs=2", f"ckpt_path={last}"], tiny_data_dir,
                                 tmp_path / "launch"))
    assert not marker.exists()
    assert Path(record["best_ckpt"]).parent == run / "checkpoints" and record["status"] == "finished"


def test_pickle_named_last_beside_the_checkpoint_is_never_loaded(tiny_data_dir, tmp_path, monkeypatch):
    run = tmp_path / "run"
    _interrupted_run(tiny_data_dir, run, monkeypatch)
    marker = tmp_path / "pwned"
    best = next((run / "checkpoints").glob("best-e*.ckpt"))
    _write_evil(run / "checkpoints" / "last.ckpt", marker, like=best)
    for ckpt in (best, run / "checkpoints" / "last.ckpt"):
        with pytest.raises(Exception, match=r"last\.ckpt|weights-only"):
            train(compose_train([*FAST, "trainer.max_epochs=2", f"ckpt_path={ckpt}"], tiny_data_dir,
                                tmp_path / f"launch-{ckpt.stem}"))
    assert not marker.exists()


def test_evaluate_and_init_refuse_code_carrying_files(tiny_data_dir, tmp_path, finished):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    _write_evil(evil, marker, like=Path(finished["best_ckpt"]))
    with pytest.raises(Exception, match="weights-only"):
        evaluate(compose_eval([f"ckpt_path={evil}"], tmp_path / "eval"))
    with pytest.raises(Exception, match="weights-only"):
        train(compose_train([*FAST, "fusion=video_only", f"init.video={evil}"], tiny_data_dir,
                            tmp_path / "init"))
    assert not marker.exists()


# ---------------------------------------------------------------- 2. resume is checked and harms no other run
def test_resume_refuses_another_fold_and_seed(tiny_data_dir, tmp_path, monkeypatch):
    run = tmp_path / "run"
    _interrupted_run(tiny_data_dir, run, monkeypatch)
    last = run / "checkpoints" / "last.ckpt"
    before = last.stat().st_mtime_ns
    with pytest.raises(Exception, match=r"(?s)fold: 2 vs 3.*seed: 1234 vs 7"):
        train(compose_train([*FAST, "trainer.max_epochs=2", "fold=3", "seed=7", f"ckpt_path={last}"],
                            tiny_data_dir, tmp_path / "launch"))
    assert last.stat().st_mtime_ns == before


def test_resume_may_change_only_allowed_keys(tiny_data_dir, tmp_path, monkeypatch):
    run = tmp_path / "run"
    _interrupted_run(tiny_data_dir, run, monkeypatch)
    last = run / "checkpoints" / "last.ckpt"
    with pytest.raises(Exception, match="trainer.max_epochs: 2 vs 3"):
        train(compose_train([*FAST, "trainer.max_epochs=3", f"ckpt_path={last}"], tiny_data_dir, tmp_path / "a"))
    record = train(compose_train([*FAST, "trainer.max_epochs=3", f"ckpt_path={last}",
                                  "resume.allow=[trainer.max_epochs]"], tiny_data_dir, tmp_path / "b"))
    assert record["epochs"] == 3 and record["test_last"]["epoch"] == 2


def test_resuming_a_finished_run_is_refused_and_changes_nothing(tiny_data_dir, tmp_path, finished):
    ckpt_dir = Path(finished["last_ckpt"]).parent
    before = {p.name: p.stat().st_mtime_ns for p in ckpt_dir.iterdir()}
    with pytest.raises(Exception, match="finished"):
        train(compose_train([*FAST, "trainer.max_epochs=3", f"ckpt_path={finished['last_ckpt']}"],
                            tiny_data_dir, tmp_path / "launch"))
    assert {p.name: p.stat().st_mtime_ns for p in ckpt_dir.iterdir()} == before
    assert Path(json.loads((ckpt_dir.parent / "metrics.json").read_text())["best_ckpt"]).is_file()


def test_moved_run_folder_resumes_and_tests_the_true_last_epoch(tiny_data_dir, tmp_path, monkeypatch):
    first = tmp_path / "first"
    _interrupted_run(tiny_data_dir, first, monkeypatch)
    moved = tmp_path / "elsewhere" / "run"
    shutil.copytree(first, moved)
    record = train(compose_train([*FAST, "trainer.max_epochs=2", f"ckpt_path={moved}/checkpoints/last.ckpt"],
                                 tiny_data_dir, tmp_path / "launch"))
    names = sorted(p.name for p in (moved / "checkpoints").iterdir())
    assert "last-v1.ckpt" not in names and record["epochs"] == 2
    assert record["test_last"]["epoch"] == 1  # tested the weights of epoch 2 (0-based 1), not the stale file
    assert torch.load(record["last_ckpt"], weights_only=True)["epoch"] == 1


def test_ckpt_path_last_is_refused_before_writing_anything(tiny_data_dir, tmp_path):
    launch = tmp_path / "launch"
    with pytest.raises(Exception, match="ckpt_path=last"):
        train(compose_train([*FAST, "ckpt_path=last"], tiny_data_dir, launch))
    assert not (launch / "checkpoints").exists() and not (launch / "metrics.json").exists()


def test_a_second_writer_of_one_job_folder_is_refused(tiny_data_dir, tmp_path, finished):
    busy = tmp_path / "busy"
    busy.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from filelock import FileLock; "
        f"l = FileLock({str(busy / '.job.lock')!r}); l.acquire(); print('held', flush=True); time.sleep(120)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Exception, match="another job"):
            train(compose_train(FAST, tiny_data_dir, busy))
    finally:
        holder.kill()
        holder.wait()
    # A later fresh launch into a folder that holds a run is refused too (its files would be overwritten).
    with pytest.raises(Exception, match="already holds"):
        train(compose_train(FAST, tiny_data_dir, Path(finished["run_dir"])))


def test_run_id_and_format_versions_are_recorded_and_checked(tiny_data_dir, tmp_path, finished):
    ckpt = torch.load(finished["best_ckpt"], weights_only=True)
    assert ckpt["cfnsr_run_id"] == finished["run_id"] == json.loads(
        (Path(finished["run_dir"]) / "metrics.json").read_text())["run_id"]
    ckpt["cfnsr_format"] = 99
    future = tmp_path / "future.ckpt"
    torch.save(ckpt, future)
    with pytest.raises(Exception, match="format 99"):
        evaluate(compose_eval([f"ckpt_path={future}"], tmp_path / "eval"))


# ---------------------------------------------------------------- 3. the data the model sees (training side)
def _copy_data(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_a_split_missing_an_actor_is_an_error_naming_it(tiny_data_dir, tmp_path):
    data = _copy_data(tiny_data_dir, tmp_path / "data")
    cfg = compose_train([*FAST], data, tmp_path / "out")
    from cfnsr.builders.objects import build_datamodule

    for entry in (Path(cfg.data.cache_dir) / "clips").glob("*-04"):  # actor 4: half of fold 2's test block
        shutil.rmtree(entry)
    dm = build_datamodule(cfg)
    with pytest.raises(Exception, match="actor 4: all 60 clips"):
        dm.setup("fit")
    allowed = build_datamodule(compose_train([*FAST, "data.allow_missing_clips=true"], data, tmp_path / "o2"))
    allowed.setup("fit")
    assert len(allowed.datasets["test"]) == 60


@pytest.mark.parametrize("storage", ["memory", "mmap"])
def test_nan_in_a_cache_entry_fails_the_run_naming_the_clip(tiny_data_dir, tmp_path, storage):
    data = _copy_data(tiny_data_dir, tmp_path / "data")
    cfg = compose_train([*FAST, "trainer.max_epochs=1", f"data.storage={storage}"], data, tmp_path / "out")
    entry = Path(cfg.data.cache_dir) / "clips" / "01-01-03-01-01-01-01"  # actor 1: training actor of fold 2
    mfcc = entry / "mfcc.npy"
    arr = __import__("numpy").load(mfcc)
    arr[0, 5] = float("nan")
    __import__("numpy").save(mfcc, arr)  # same size, same shape: only the content is wrong
    with pytest.raises(Exception, match="01-01-03-01-01-01-01"):
        train(cfg)
    record = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert record["status"] == "failed" and "01-01-03-01-01-01-01" in record["error"]


def test_non_finite_loss_fails_naming_the_batch_clips(tiny_data_dir, tmp_path, monkeypatch):
    from cfnsr.data.datamodule import EmotionDataModule

    original = EmotionDataModule.on_after_batch_transfer

    def poisoned(self, batch, dataloader_idx):
        batch = original(self, batch, dataloader_idx)
        return {**batch, "audio": batch["audio"] * float("nan")} if self.trainer.training else batch

    monkeypatch.setattr(EmotionDataModule, "on_after_batch_transfer", poisoned)
    with pytest.raises(Exception, match=r"non-finite loss.*\d\d-\d\d-\d\d-\d\d-\d\d-\d\d-\d\d"):
        train(compose_train([*FAST, "trainer.max_epochs=1"], tiny_data_dir, tmp_path / "out"))
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["status"] == "failed"


# ---------------------------------------------------------------- 6. validation first
@pytest.mark.parametrize("override, message", [
    ("trainer.max_epochs=-1", "trainer.max_epochs=-1"),
    ("fold=abc", "fold='abc'"),
    ("fold=9", "fold=9"),
])
def test_bad_settings_are_refused_up_front(tiny_data_dir, tmp_path, override, message):
    with pytest.raises(Exception, match=message.replace("[", r"\[")):
        train(compose_train([*FAST, override], tiny_data_dir, tmp_path))
    assert not (tmp_path / "metrics.json").exists()


def test_evaluate_refuses_settings_it_would_ignore(tmp_path, finished):
    with pytest.raises(Exception, match="fold"):
        evaluate(compose_eval([f"ckpt_path={finished['best_ckpt']}", "+fold=2"], tmp_path))


def test_the_objective_is_validation_not_test(finished):
    import pandas as pd

    log = pd.read_csv(Path(finished["run_dir"]) / "csv" / "metrics.csv")
    best_val = log["val/war"].dropna().max()
    objective = finished["objective"]
    assert objective["name"] == "val/war" and objective["value"] == pytest.approx(best_val)
    assert objective["epoch"] == finished["best_epoch"]


def test_an_optimising_sweeper_refuses_the_paper_and_clean_protocols():
    from cfnsr.builders.config_checks import check_sweeper

    optuna = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    with pytest.raises(Exception, match="test"):
        check_sweeper(optuna, "paper", None)
    # clean: fold k validates on fold k+1's test actors
    with pytest.raises(Exception, match="another fold's test actors"):
        check_sweeper(optuna, "clean", "val/war")
    check_sweeper(optuna, "search", "val/war")
    check_sweeper("hydra._internal.core_plugins.basic_sweeper.BasicSweeper", "paper", None)


def test_a_slurm_requeue_continues_its_own_run_and_nothing_else_does(tiny_data_dir, tmp_path, monkeypatch):
    run = tmp_path / "job"
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    first = _interrupted_run(tiny_data_dir, run, monkeypatch)
    monkeypatch.setenv("SLURM_JOB_ID", "9999")  # another job launched into the same folder
    with pytest.raises(Exception, match="already holds"):
        train(compose_train([*FAST, "trainer.max_epochs=2"], tiny_data_dir, run))
    monkeypatch.setenv("SLURM_JOB_ID", "4242")  # the requeued job: same command, same job id
    first_log = (run / "csv" / "metrics.csv").read_text()
    record = train(compose_train([*FAST, "trainer.max_epochs=2"], tiny_data_dir, run))
    assert record["run_id"] == first["run_id"] and record["status"] == "finished" and record["epochs"] == 2
    # nothing already done is lost: the first part's per-epoch log stays, the resumed part logs beside it
    assert (run / "csv" / "metrics.csv").read_text() == first_log
    assert len(list((run / "csv").glob("resumed-*/metrics.csv"))) == 1
