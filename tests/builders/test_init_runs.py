import os

import pytest
import torch

from cfnsr.builders.init_runs import find_unimodal_checkpoints
from cfnsr.runs.checkpoint_files import CheckpointError
from cfnsr.runs.record import write_record

FOLD1 = {"test_actors": [1, 2, 3, 4], "val_actors": [5, 6, 7, 8]}
FOLD2 = {"test_actors": [5, 6, 7, 8], "val_actors": [9, 10, 11, 12]}


def _run(root, name, fusion, actors, mtime, ckpt_run_id=None, **fields):
    run_id = f"id-{name}"
    ckpt = root / name / "checkpoints" / "best-e000.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"state_dict": {}, "cfnsr_config": {}, "cfnsr_run_id": ckpt_run_id or run_id}, ckpt)
    rec = {"status": "finished", "fusion": fusion, "fold": 1, "seed": 1, "dataset": "synthetic",
           "backbone": "tiny", "protocol": "clean", "run_dir": str(root / name), "run_id": run_id,
           "best_ckpt": str(ckpt), **actors, **fields}
    path = write_record(root / name, rec)
    os.utime(path, (mtime, mtime))
    return ckpt


def test_finds_matching_runs_by_actor_sets_and_prefers_the_newest(tmp_path):
    _run(tmp_path, "v_old", "video_only", FOLD1, 100)
    v_new = _run(tmp_path, "v_new", "video_only", FOLD1, 200)
    _run(tmp_path, "v_fold2", "video_only", FOLD2, 300, fold=1)  # fold number 1 of another scheme: other actors
    _run(tmp_path, "v_paper", "video_only", {**FOLD1, "val_actors": [1, 2, 3, 4]}, 400)  # selected on the test fold
    a = _run(tmp_path, "a", "audio_only", FOLD1, 100)
    _run(tmp_path, "a_failed", "audio_only", FOLD1, 500, status="failed")
    found = find_unimodal_checkpoints(tmp_path, FOLD1["test_actors"], FOLD1["val_actors"], seed=1,
                                      dataset="synthetic")
    assert found == {"video": str(v_new), "audio": str(a)}


def test_missing_stream_names_the_command_to_run(tmp_path):
    _run(tmp_path, "v", "video_only", FOLD1, 100)
    with pytest.raises(FileNotFoundError, match=r"actors \[1, 2, 3, 4\].*fusion=audio_only fold=1"):
        find_unimodal_checkpoints(tmp_path, FOLD1["test_actors"], FOLD1["val_actors"], fold=1)
    with pytest.raises(FileNotFoundError, match="no such directory"):
        find_unimodal_checkpoints(tmp_path / "nope", FOLD1["test_actors"], FOLD1["val_actors"])


def test_only_the_runs_own_checkpoint_is_taken(tmp_path):
    _run(tmp_path, "v", "video_only", FOLD1, 100)
    _run(tmp_path, "a", "audio_only", FOLD1, 100, ckpt_run_id="someone-else")
    with pytest.raises(CheckpointError, match="carries run 'someone-else'"):
        find_unimodal_checkpoints(tmp_path, FOLD1["test_actors"], FOLD1["val_actors"])
