import os

import pytest

from cfnsr.builders.init_runs import find_unimodal_checkpoints
from cfnsr.runs.record import write_record


def _run(root, name, fusion, fold, mtime, **fields):
    rec = {"status": "finished", "fusion": fusion, "fold": fold, "seed": 1, "dataset": "synthetic",
           "backbone": "tiny", "protocol": "paper", "run_dir": str(root / name),
           "best_ckpt": str(root / name / "best.ckpt"), **fields}
    path = write_record(root / name, rec)
    os.utime(path, (mtime, mtime))


def test_finds_matching_runs_and_prefers_the_newest(tmp_path):
    _run(tmp_path, "v_old", "video_only", 1, 100)
    _run(tmp_path, "v_new", "video_only", 1, 200)
    _run(tmp_path, "v_fold2", "video_only", 2, 300)
    _run(tmp_path, "v_clean", "video_only", 1, 400, protocol="clean")
    _run(tmp_path, "a", "audio_only", 1, 100)
    _run(tmp_path, "a_failed", "audio_only", 1, 500, status="failed")
    found = find_unimodal_checkpoints(tmp_path, fold=1, seed=1, protocol="paper", dataset="synthetic")
    assert found == {"video": str(tmp_path / "v_new" / "best.ckpt"), "audio": str(tmp_path / "a" / "best.ckpt")}


def test_missing_stream_names_the_command_to_run(tmp_path):
    _run(tmp_path, "v", "video_only", 1, 100)
    with pytest.raises(FileNotFoundError, match="fusion=audio_only fold=1"):
        find_unimodal_checkpoints(tmp_path, fold=1)
    with pytest.raises(FileNotFoundError, match="no such directory"):
        find_unimodal_checkpoints(tmp_path / "nope", fold=1)
