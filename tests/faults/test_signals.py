"""SIGTERM and SIGINT end a job as interrupted: non-zero status, a record that says so, a resume command that works.

Before: Lightning turned SIGTERM into ``SystemExit()`` (exit status 0, so ``train.py && next`` and schedulers saw
success) and SIGINT into ``SystemExit(1)``, recorded as ``failed: SystemExit: 1``; a re-run of the sweep started
everything again in a new folder.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests_helpers import TINY_DATA, TINY_FOLDS, compose_train

from cfnsr.module import EmotionModule
from cfnsr.report.collect import classify
from cfnsr.runs.interrupt import Interrupted
from cfnsr.tasks.train import train

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
COMMON = [TINY_FOLDS, *TINY_DATA, "fusion=averaging", "measure_gflops=false", "trainer.enable_progress_bar=false",
          "preprocess.workers=0"]


def _env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "CFNSR_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 300) -> None:
    end = time.time() + timeout
    while not predicate():
        assert proc.poll() is None, f"job ended early ({proc.returncode}): {proc.stdout.read()[-3000:]}"
        assert time.time() < end, "timed out waiting for the job"
        time.sleep(0.1)


def _status(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("status")
    except (OSError, ValueError):
        return None


def _record(path: Path) -> dict:
    return json.loads(path.read_text())


def _run(cmd: str, data_dir: Path) -> subprocess.CompletedProcess:
    argv = shlex.split(cmd)
    assert argv[0] == "python"
    return subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, env=_env(data_dir), capture_output=True, text=True,
                          timeout=900)


def test_sigterm_during_fit_exits_143_with_an_interrupted_record(tiny_data_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cmd = [sys.executable, "train.py", *COMMON, "trainer.max_epochs=3", f"hydra.run.dir={run}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(tiny_data_dir), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    _wait_for(lambda: (run / "checkpoints" / "last.ckpt").is_file(), proc)  # epoch 1 saved, epoch 2 under way
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 143, (proc.returncode, out[-3000:])
    record = _record(run / "metrics.json")
    assert record["status"] == "interrupted" and record["interrupted"]["signal"] == "SIGTERM"
    resume = record["interrupted"]["resume"]
    assert resume.startswith("python train.py ") and f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}" in resume
    # the user's overrides, exactly, then the checkpoint (the run continues in its own folder: no hydra.run.dir)
    assert shlex.split(resume)[2:-1] == cmd[2:-1]
    assert f"resume with: {resume}" in out
    reason = classify(run / "metrics.json").reason
    assert reason == f"interrupted by SIGTERM: resume with {resume}" and "failed" not in reason


def test_sigint_and_sigterm_in_the_test_phase_are_interrupts_and_resume_finishes(tiny_data_dir, tmp_path,
                                                                                  monkeypatch) -> None:
    """A real signal to this process from inside the test step (SIGTERM) or a training step (SIGINT)."""
    def kill_once(original, signum):
        def step(self, *args, **kwargs):
            if not getattr(kill_once, "done", False):
                kill_once.done = True
                os.kill(os.getpid(), signum)
            return original(self, *args, **kwargs)
        return step

    out = tmp_path / "test_phase"
    monkeypatch.setattr(EmotionModule, "test_step", kill_once(EmotionModule.test_step, signal.SIGTERM))
    with pytest.raises(Interrupted) as err:
        train(compose_train([*COMMON, "trainer.max_epochs=1"], tiny_data_dir, out))
    assert err.value.exit_code == 143
    record = _record(out / "metrics.json")
    assert (record["status"], record["interrupted"]["signal"]) == ("interrupted", "SIGTERM")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the job's handlers are gone after it
    monkeypatch.undo()
    # the resume continues the same run, which finishes its tests
    last = out / "checkpoints" / "last.ckpt"
    done = train(compose_train([*COMMON, "trainer.max_epochs=1", f"ckpt_path={last}"], tiny_data_dir, out))
    assert done["status"] == "finished" and done["run_id"] == record["run_id"]

    out = tmp_path / "sigint"
    kill_once.done = False
    monkeypatch.setattr(EmotionModule, "training_step", kill_once(EmotionModule.training_step, signal.SIGINT))
    with pytest.raises(Interrupted) as err:
        train(compose_train([*COMMON, "trainer.max_epochs=1"], tiny_data_dir, out))
    assert err.value.exit_code == 130
    record = _record(out / "metrics.json")
    assert record["status"] == "interrupted" and record["error"] == "interrupted by SIGINT"
    monkeypatch.undo()
    # interrupted in its first step, the run has no checkpoint: the same command in its folder starts it again,
    # keeping the interrupted record aside
    assert not (out / "checkpoints" / "last.ckpt").exists()
    again = train(compose_train([*COMMON, "trainer.max_epochs=1"], tiny_data_dir, out))
    assert again["status"] == "finished" and again["run_id"] != record["run_id"]
    assert _record(out / "metrics.json.interrupted")["run_id"] == record["run_id"]


def test_interrupted_sweep_exits_143_and_its_resume_command_completes_it(tiny_data_dir: Path, tmp_path: Path):
    sweep = tmp_path / "sweep"
    # The signal is sent once job 0 has saved its first epoch, so it lands inside job 0's fit on a fast or a busy
    # machine alike (between jobs Python's default handler would end the sweep with -15 and no record).
    cmd = [sys.executable, "train.py", "-m", "fold=1,2", *COMMON, "trainer.max_epochs=12", f"hydra.sweep.dir={sweep}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(tiny_data_dir), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    def job(num: int) -> Path:  # <num>_<overrides> (cfnsr.runs.job_dirs)
        found = sorted(sweep.glob(f"{num}_*"))
        return found[0] if found else sweep / f"{num}_missing"

    first = sweep / "missing"
    _wait_for(lambda: (job(0) / "checkpoints" / "last.ckpt").exists(), proc)
    first = job(0) / "metrics.json"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 143, (proc.returncode, out[-3000:])
    record = _record(first)
    assert record["status"] == "interrupted" and not job(1).exists()
    resume = record["interrupted"]["resume"]
    assert shlex.split(resume)[:3] == ["python", "train.py", "-m"] and f"hydra.sweep.dir={sweep}" in resume

    done = _run(resume, tiny_data_dir)  # the interrupted job continues, the job never started runs
    assert done.returncode == 0, done.stderr[-3000:]
    records = [_record(job(n) / "metrics.json") for n in (0, 1)]
    assert [(r["fold"], r["status"]) for r in records] == [(1, "finished"), (2, "finished")]
    # job 0 had a checkpoint: it continued as the same run (tests/faults/test_signals.py's fit test covers a job
    # interrupted before its first checkpoint)
    assert records[0]["run_id"] == record["run_id"] and not (job(0) / "metrics.json.interrupted").exists()

    again = _run(resume, tiny_data_dir)  # nothing left to do: finished jobs are kept, not refused or redone
    assert again.returncode == 0, again.stderr[-3000:]
    assert [_record(job(n) / "metrics.json")["run_id"] for n in (0, 1)] == \
        [r["run_id"] for r in records]
    assert "holds finished run" in again.stdout + again.stderr
