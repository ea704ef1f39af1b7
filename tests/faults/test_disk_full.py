"""A full disk under a training run, on a real small file system (a tmpfs mounted by the test, see disk_helpers):
one clear line naming the file and its disk, a record that says failed, no temporary checkpoint left behind, and
checkpoints that never pass through ``$TMPDIR``."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from disk_helpers import fill, small_disk  # noqa: E402
from tests_helpers import SEARCHPATH_OVERRIDE, TINY_DATA, TINY_FOLDS, compose_train  # noqa: E402

from cfnsr.callbacks.run_checkpoints import remove_stale_temps  # noqa: E402
from cfnsr.console import console_to_log  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_a_log_file_on_a_full_disk_is_reported_once_not_fed_its_own_errors(tmp_path: Path, capfd):
    with small_disk(tmp_path / "disk", "64k") as disk:
        handler = logging.FileHandler(disk / "train.log")
        try:
            fill(disk)
            with console_to_log([handler]):
                for i in range(2000):
                    print(f"line {i} " + "x" * 40)
        finally:
            try:
                handler.close()  # its last flush fails too (logging.shutdown ignores that at exit)
            except OSError:
                pass
    err = capfd.readouterr().err
    # before: logging's "--- Logging error ---" report went through the tee into the failing file again and
    # again: thousands of lines ending in RecursionError
    assert "RecursionError" not in err and "Logging error" not in err
    lines = [line for line in err.splitlines() if "cannot write the log file" in line]
    assert len(lines) == 1
    assert f"{disk}/train.log" in lines[0] and "ENOSPC" in lines[0] and "MiB free" in lines[0]


def test_stale_temporary_checkpoints_are_removed_and_a_live_writers_kept(tmp_path: Path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = folder / f".last.ckpt.tmp-{dead.pid}"
        live = folder / f".best-e003.ckpt.tmp-{alive.pid}"
        for p in (stale, live, folder / "last.ckpt"):
            p.write_bytes(b"x" * 100)
        assert remove_stale_temps(folder) == [stale]
        assert not stale.exists() and live.exists() and (folder / "last.ckpt").exists()
    finally:
        alive.send_signal(signal.SIGKILL)
        alive.wait()


def test_checkpoints_are_not_staged_in_tmpdir(tiny_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A $TMPDIR too small for one checkpoint: before, the first save failed (Lightning staged it there)."""
    from cfnsr.tasks.train import train

    with small_disk(tmp_path / "small_tmp", "128k") as small:
        monkeypatch.setenv("TMPDIR", str(small))
        monkeypatch.setattr(tempfile, "tempdir", str(small))
        out = tmp_path / "run"
        record = train(compose_train(["fusion=averaging", "trainer.max_epochs=1", "measure_gflops=false",
                                      "logger=csv", "test_after_fit=false"], tiny_data_dir, out))
        assert record["status"] == "finished"
        assert (out / "checkpoints" / "last.ckpt").stat().st_size > 128 * 1024
        assert not list(small.iterdir())


@pytest.mark.slow
def test_a_full_run_folder_says_so_in_one_line_and_the_record_says_failed(tiny_data_dir: Path, tmp_path: Path):
    # 2 MiB: the config, logs and record fit, the first checkpoint (~3.4 MB) does not
    with small_disk(tmp_path / "disk", "2m") as disk:
        run = disk / "run"
        done = subprocess.run(
            [sys.executable, "train.py", TINY_FOLDS, *TINY_DATA, f"paths.data_dir={tiny_data_dir}",
             f"hydra.run.dir={run}", "trainer.enable_progress_bar=false", "preprocess.workers=0", "fusion=averaging",
             "trainer.max_epochs=1", "measure_gflops=false", "logger=csv", *SEARCHPATH_OVERRIDE],
            cwd=ROOT, capture_output=True, text=True, timeout=900,
            env={**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline"})
        assert done.returncode != 0
        err = done.stderr
        # before: ~3,900 lines ending in RecursionError, the ENOSPC buried among them
        assert "RecursionError" not in err
        assert len(err.splitlines()) < 400, err[-3000:]
        (line,) = [x for x in err.splitlines() if x.startswith("train.py: the run failed on its disk")]
        assert "ENOSPC" in line and f"{run}/checkpoints/" in line and f"file system of {disk}" in line
        record = json.loads((run / "metrics.json").read_text())
        # before: "running" forever, no error.txt, a .tmp checkpoint left
        assert record["status"] == "failed" and "No space left on device" in record["error"]
        assert (run / "error.txt").is_file()
        assert not [p.name for p in (run / "checkpoints").iterdir() if ".tmp-" in p.name]
