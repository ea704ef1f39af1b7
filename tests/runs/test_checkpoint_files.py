"""Which checkpoint files a run's test uses: the ones its last.ckpt names, never a leftover."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cfnsr.runs.checkpoint_files import (
    CHECKPOINT_FORMAT,
    LAST_NAME,
    CheckpointError,
    best_name,
    run_checkpoints,
)


def _save(path: Path, run_id: str, epoch: int, best_epoch: int) -> None:
    torch.save({"cfnsr_config": {}, "cfnsr_format": CHECKPOINT_FORMAT, "cfnsr_run_id": run_id, "epoch": epoch,
                "state_dict": {"w": torch.full((1,), float(epoch))},
                "callbacks": {"RunCheckpoints": {"run_id": run_id, "monitor": "val/war", "best_score": 0.5,
                                                 "best_epoch": best_epoch}}}, path)


def test_a_best_file_left_by_a_killed_attempt_is_not_tested(tmp_path: Path):
    # Killed after writing best-e002 but before last.ckpt; the resumed epochs 2-3 did not beat epoch 1.
    _save(tmp_path / best_name(1), "r1", epoch=1, best_epoch=1)
    _save(tmp_path / best_name(2), "r1", epoch=2, best_epoch=2)
    _save(tmp_path / LAST_NAME, "r1", epoch=3, best_epoch=1)
    best_path, best, last_path, last = run_checkpoints(tmp_path, "r1")
    assert best_path.name == "best-e001.ckpt" and best["epoch"] == 1 and last["epoch"] == 3


def test_a_missing_or_foreign_selected_file_is_an_error(tmp_path: Path):
    _save(tmp_path / LAST_NAME, "r1", epoch=3, best_epoch=1)
    with pytest.raises(CheckpointError, match="best-e001.ckpt: no such checkpoint file"):
        run_checkpoints(tmp_path, "r1")
    _save(tmp_path / best_name(1), "other", epoch=1, best_epoch=1)
    with pytest.raises(CheckpointError, match="not the selected checkpoint of run r1"):
        run_checkpoints(tmp_path, "r1")
    with pytest.raises(CheckpointError, match="not by this run"):
        run_checkpoints(tmp_path, "r2")
