"""The wandb run of a training run, read back from its offline files: one wandb run per cfnsr run (a resumed run
continues it), grouped by recipe, epoch curves, the confusion chart with class names, checkpoints as an artifact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests_helpers import compose_train, interrupted_run
from wandb_files import read_run

from cfnsr.callbacks.wandb_summary import confusion_pairs, per_class_scores, wandb_run_options
from cfnsr.tasks.train import train

WANDB = ["logger=wandb", "logger.wandb.log_model=true", "fusion=averaging", "measure_gflops=false",
         "data.class_names=[neutral,calm,happy,sad,angry,fearful,disgust,surprised]"]


def test_per_class_scores_and_pairs_follow_the_matrix() -> None:
    confusion = [[3, 1, 0], [0, 0, 0], [2, 0, 4]]
    scores = per_class_scores(confusion, ["a", "b", "c"])
    assert scores["a/recall"] == pytest.approx(0.75) and scores["c/recall"] == pytest.approx(4 / 6)
    assert "b/recall" not in scores and scores["b/f1"] == 0.0  # predicted once, never true
    assert scores["a/f1"] == pytest.approx(2 * 3 / (4 + 5))
    y_true, y_pred = confusion_pairs(confusion)
    assert len(y_true) == 10 and sum(t == 2 and p == 0 for t, p in zip(y_true, y_pred, strict=True)) == 2


def test_groups_by_recipe_and_trials_by_study() -> None:
    meta = {"experiment": "demo", "dataset": "cremad", "fusion": "msaf", "recipe_hash": "0123456789abcdef"}
    assert wandb_run_options(meta, "r1", None) == {"id": "r1", "resume": "allow",
                                                  "group": "demo/cremad/msaf/0123456789"}
    assert wandb_run_options(meta, "r1", "mine")["group"] == "mine"
    trial = wandb_run_options({**meta, "search": {"study": "s", "trial": 3}}, "r2", None)
    assert trial["group"] == "demo/cremad/search/s" and trial["name"] == "trial-3"


@pytest.mark.slow
def test_resumed_run_continues_its_wandb_run_with_charts_and_artifact(tiny_data_dir: Path, tmp_path: Path,
                                                                       monkeypatch) -> None:
    out = tmp_path / "run"
    interrupted_run(monkeypatch, compose_train([*WANDB, "trainer.max_epochs=2"], tiny_data_dir, out))
    record = train(compose_train([*WANDB, "trainer.max_epochs=2", f"ckpt_path={out}/checkpoints/last.ckpt"],
                                 tiny_data_dir, tmp_path / "launch"))
    assert record["status"] == "finished"

    parts = sorted((out / "wandb").glob("offline-run-*"))
    assert len(parts) == 2, parts  # the first launch and the resume
    runs = [read_run(p) for p in parts]
    group = f"{record['experiment']}/{record['dataset']}/averaging/{record['recipe_hash'][:10]}"
    assert {r["id"] for r in runs} == {record["run_id"]} and {r["group"] for r in runs} == {group}
    first, resumed = runs
    assert first["metrics"].get("val/*") == "epoch" and resumed["metrics"].get("val/*") == "epoch"
    assert any("val/war" in row and row.get("epoch") == 0 for row in first["history"])
    assert any("val/war" in row and row.get("epoch") == 1 for row in resumed["history"])

    summary = resumed["summary"]
    assert summary["test/war"] == pytest.approx(record["test"]["war"])
    assert summary["test/class/fearful/recall"] == pytest.approx(
        per_class_scores(record["test"]["confusion"], WANDB[-1].split("[")[1].rstrip("]").split(","))[
            "fearful/recall"])
    tables = list((parts[1] / "files" / "media" / "table").rglob("confusion*.table.json"))
    assert len(tables) == 1
    table = json.loads(tables[0].read_text())
    counts = {(row[0], row[1]): row[2] for row in table["data"]}
    assert counts[("fearful", "fearful")] == record["test"]["confusion"][5][5]
    assert sum(counts.values()) == record["test"]["n"]

    (artifact,) = [a for a in resumed["artifacts"] if a["type"] == "model"]
    assert artifact["name"] == f"model-{record['run_id']}"
    assert artifact["metadata"]["run_id"] == record["run_id"]
    assert artifact["metadata"]["recipe_hash"] == record["recipe_hash"]
    assert sorted(artifact["files"]) == sorted([f"selected-{Path(record['best_ckpt']).name}", "last-last.ckpt"])
    assert not first["artifacts"] or all(a["type"] != "model" for a in first["artifacts"])  # the failed part
