"""End-to-end without the data: a synthetic CREMA-D-format corpus and a user's folder corpus go through preprocess ->
train one fusion on fold 1 (tiny backbone, 1 epoch) -> report row / predict."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict
from tests_helpers import CONF_DIR, SEARCHPATH_OVERRIDE

from cfnsr.data.cache import cached_clips, load_meta
from cfnsr.data.synthetic_cremad import generate_cremad
from cfnsr.report.build import build_report
from cfnsr.report.collect import collect_runs
from cfnsr.report.write import write_report
from cfnsr.runs.record import read_record
from cfnsr.tasks.train import train

pytestmark = pytest.mark.slow

TINY = ["data.frames=8", "data.size=32", "data.num_workers=0", "data.pin_memory=false", "data.storage=memory",
        "data.batch_size=8", "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "preprocess.workers=0",
        "fusion=concat_fc", "measure_gflops=false"]


def _compose(overrides: list[str], tmp_path: Path) -> DictConfig:
    out = tmp_path / "out"
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.data_dir={tmp_path}", f"paths.output_dir={out}", *TINY,
                                          *SEARCHPATH_OVERRIDE, *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
    return cfg


def test_synthetic_cremad_generate_preprocess_train_report(tmp_path: Path):
    root = tmp_path / "CREMA-D"
    # fold 1 of the default 5-fold split tests actors 1001-1019 and validates on 1020-1037; the rest train
    generate_cremad(root, actors=[1001, 1002, 1020, 1040, 1060, 1080])
    cfg = _compose(["data=cremad", f"data.root={root}", "data.corpus.label_source=voice"], tmp_path)
    record = read_record(train(cfg)["run_dir"])
    assert record["status"] == "finished" and record["dataset"] == "cremad"
    assert record["fold_scheme"]["name"] == "kfold" and record["fold_scheme"]["k"] == 5
    assert [len(b) for b in record["fold_scheme"]["test_speakers"]] == [19, 18, 18, 18, 18]
    assert record["test_actors"] == list(range(1001, 1020)) and record["val_actors"] == list(range(1020, 1038))
    assert record["class_names"] == ["anger", "disgust", "fear", "happy", "neutral", "sad"]
    assert record["test"]["n"] == 12 - 1  # the 12 clips of actors 1001 and 1002 but the voice tie (clip 11)
    assert len(record["test"]["confusion"]) == 6

    cache = Path(cfg.data.cache_dir)
    report = json.loads((cache / "preprocess_report.json").read_text())
    assert report["counts"]["skipped_by_kind"] == {"no-label": 3}  # the voice ties (clips 11, 22, 33)
    padded = {p["stem"] for p in report["audio_padded"]}
    assert "1001_DFA_NEU_XX" in padded and len(padded) == 7  # every 5th clip was cut to 2 s < 2.45 s
    meta = load_meta(cache, "1001_DFA_NEU_XX")
    # 2.45 s window - 2 s of audio, less the MP3 encoder's added delay (tens of ms)
    assert 0.3 < meta["audio_padded_seconds"] <= 0.45 and meta["speaker"] == 1001
    assert meta["corpus"] == "cremad" and meta["source"] == "VideoFlash/1001_DFA_NEU_XX.flv"
    assert load_meta(cache, "1001_DFA_ANG_XX")["audio_padded_seconds"] == 0

    runs, _ = collect_runs([Path(cfg.paths.output_dir)])
    built = build_report(runs)
    (group,) = built.groups
    assert group.dataset == "cremad" and group.class_names == tuple(record["class_names"])
    assert [r.fusion for r in group.rows] == ["concat_fc"]
    written = write_report(built, tmp_path / "report")
    assert "confusion_concat_fc" in written


def test_a_folder_of_videos_with_a_csv_trains_and_predicts(tmp_path: Path):
    from cfnsr.predict.model import load_predictor

    videos = tmp_path / "my_videos"
    stems = generate_cremad(tmp_path / "gen", actors=[1001, 1002, 1003], short_every=0)
    (videos / "clips").mkdir(parents=True)
    rows = []
    for i, stem in enumerate(stems):
        src = tmp_path / "gen" / "VideoFlash" / f"{stem}.flv"
        dst = videos / "clips" / f"take{i:02d}.flv"
        dst.write_bytes(src.read_bytes())
        mood = "loud" if stem.split("_")[2] in ("ANG", "HAP", "FEA") else "quiet"
        rows.append([f"clips/{dst.name}", mood, ["ann", "ben", "cy"][int(stem[:4]) - 1001]])
    with open(videos / "clips.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["path", "label", "speaker"], *rows])

    cfg = _compose(["data=folder", f"data.root={videos}", "folds.k=3"], tmp_path)
    assert list(cfg.data.class_names) == ["loud", "quiet"] and cfg.data.num_classes == 2
    result = train(cfg)
    record = read_record(result["run_dir"])
    assert record["status"] == "finished" and record["dataset"] == "folder"
    assert record["fold_scheme"]["test_speakers"] == [["ann"], ["ben"], ["cy"]]
    assert record["test_actors"] == ["ann"] and record["test"]["n"] == 6
    assert len(cached_clips(cfg.data.cache_dir)) == 18
    ckpt = next(Path(result["run_dir"]).glob("checkpoints/*.ckpt"))
    assert load_predictor(ckpt).class_names == ("loud", "quiet")
