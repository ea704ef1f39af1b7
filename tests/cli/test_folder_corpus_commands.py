"""A user's own folder of videos + clips.csv through the real commands: ``train.py data=folder`` (which preprocesses)
on fold 1 -> ``python -m cfnsr.report`` -> ``predict.py`` on one of the videos; no Python written by the user."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cfnsr.data.synthetic_cremad import generate_cremad
from cfnsr.runs.record import read_record

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SPEAKERS = {1001: "ann", 1002: "ben", 1003: "cy"}


def run(*args: str, cwd: Path) -> str:
    """``python <args>`` as a user types it (from another folder than the checkout); its stdout."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{args[:2]} exit {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_a_folder_with_a_csv_trains_reports_and_predicts_from_the_command_line(tmp_path: Path):
    stems = generate_cremad(tmp_path / "gen", actors=list(SPEAKERS), width=64, height=48, short_every=0)
    videos = tmp_path / "my videos"  # a space in the path, as users' folders have
    (videos / "clips").mkdir(parents=True)
    rows = []
    for i, stem in enumerate(stems):
        dst = videos / "clips" / f"take{i:02d}.flv"
        dst.write_bytes((tmp_path / "gen" / "VideoFlash" / f"{stem}.flv").read_bytes())
        mood = "loud" if stem.split("_")[2] in ("ANG", "HAP", "FEA") else "quiet"
        rows.append([f"clips/{dst.name}", mood, SPEAKERS[int(stem[:4])]])
    with open(videos / "clips.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["path", "label", "speaker"], *rows])
    work = tmp_path / "work"
    work.mkdir()
    run_dir = work / "run"
    run(str(REPO / "train.py"), "data=folder", f"data.root={videos}", "folds.k=3", "fold=1", "backbone=tiny",
        "fusion=concat_fc", "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "measure_gflops=false",
        "data.frames=4", "data.size=32", "data.num_workers=0", "data.storage=memory", "preprocess.workers=0",
        f"paths.log_dir={work / 'outputs'}", f"hydra.run.dir={run_dir}", cwd=work)
    rec = read_record(run_dir)
    assert rec["status"] == "finished" and rec["dataset"] == "folder" and rec["class_names"] == ["loud", "quiet"]
    assert rec["test_actors"] == ["ann"] and rec["test"]["n"] == sum(r[2] == "ann" for r in rows) == 6

    run("-m", "cfnsr.report", str(run_dir), "--out", str(tmp_path / "report"), cwd=work)
    with open(tmp_path / "report" / "report.csv", newline="") as fh:
        (row,) = csv.DictReader(fh)
    assert (row["dataset"], row["fusion"], row["n_runs"]) == ("folder", "concat_fc", "1")

    ckpt = next((run_dir / "checkpoints").glob("*.ckpt"))
    run(str(REPO / "predict.py"), f"ckpt_path={ckpt}", f"input={videos / 'clips' / 'take00.flv'}",
        "predict.progress=false", "predict.timeline=false", f"hydra.run.dir={work / 'predict'}", cwd=work)
    with open(work / "predict" / "predictions.csv", newline="") as fh:
        preds = list(csv.DictReader(fh))
    assert preds and {"loud", "quiet"} <= set(preds[0])  # one probability column per class name of the CSV
    assert {p["predicted"] for p in preds} <= {"loud", "quiet"}
