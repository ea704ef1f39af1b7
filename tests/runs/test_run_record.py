"""RunRecord (cfnsr/runs/run_record.py): the training job's one writer of metrics.json, one status per outcome."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from cfnsr.runs.interrupt import Interrupted
from cfnsr.runs.record import read_record
from cfnsr.runs.run_record import RunRecord


class _Pruned(Exception):
    pass


def _record(tmp_path: Path, write: bool = True) -> RunRecord:
    return RunRecord(tmp_path, {"run_id": "run-1", "run_dir": str(tmp_path)}, write=write)


def test_a_run_is_written_running_then_finished_with_its_fields_and_times(tmp_path: Path):
    record = _record(tmp_path)
    record.start(fusion="concat_fc", epochs=None)
    on_disk = read_record(tmp_path)
    assert on_disk["status"] == "running" and on_disk["error"] is None and on_disk["run_id"] == "run-1"
    assert "train_seconds" not in on_disk
    record.update(epochs=2, test={"war": 0.5})
    assert read_record(tmp_path)["epochs"] is None  # update alone does not write
    record.finish("debug", final_metrics={"val/war": 0.5})
    on_disk = read_record(tmp_path)
    assert on_disk["status"] == "debug" and on_disk["epochs"] == 2 and on_disk["test"] == {"war": 0.5}
    assert on_disk["train_seconds"] >= 0 and on_disk["finished_at"].endswith("+00:00")
    assert on_disk["schema"] == 2 and on_disk == {"schema": 2, **record.fields}


def test_a_failure_is_recorded_with_its_traceback_and_reraised(tmp_path: Path):
    record = _record(tmp_path)
    record.start()
    with pytest.raises(ValueError, match="bad value"), record.watching(pruned=(_Pruned,)):
        raise ValueError("bad value")
    on_disk = read_record(tmp_path)
    assert on_disk["status"] == "failed" and on_disk["error"] == "ValueError: bad value"
    assert "train_seconds" in on_disk
    assert 'raise ValueError("bad value")' in (tmp_path / "error.txt").read_text()


def test_a_failure_before_the_start_has_no_clock_and_may_leave_no_traceback(tmp_path: Path):
    record = _record(tmp_path)
    with pytest.raises(KeyError), record.watching(traceback_file=False):
        raise KeyError("fold")
    on_disk = read_record(tmp_path)
    assert on_disk["status"] == "failed" and "train_seconds" not in on_disk
    assert not (tmp_path / "error.txt").exists()


def test_a_pruned_trial_is_not_a_failure(tmp_path: Path):
    record = _record(tmp_path)
    record.start()
    with pytest.raises(_Pruned), record.watching(pruned=(_Pruned,)):
        raise _Pruned("trial 3 pruned at epoch 2")
    on_disk = read_record(tmp_path)
    assert on_disk["status"] == "pruned" and on_disk["error"] == "_Pruned: trial 3 pruned at epoch 2"
    assert not (tmp_path / "error.txt").exists()


def test_a_signal_records_interrupted_with_a_resume_command(tmp_path: Path):
    record = _record(tmp_path)
    record.start()
    with pytest.raises(Interrupted), record.watching():
        raise Interrupted(signal.SIGTERM)
    on_disk = read_record(tmp_path)
    assert on_disk["status"] == "interrupted" and on_disk["error"] == "interrupted by SIGTERM"
    assert on_disk["interrupted"]["signal"] == "SIGTERM" and on_disk["interrupted"]["resume_job"]  # the command
    assert "train_seconds" in on_disk


def test_only_the_writing_rank_writes(tmp_path: Path):
    record = _record(tmp_path, write=False)
    record.start()
    with pytest.raises(ValueError), record.watching():
        raise ValueError("x")
    assert list(tmp_path.iterdir()) == []
    assert record.fields["status"] == "failed"  # the fields still reach this rank's callbacks
    json.dumps(record.fields)  # and stay plain values
