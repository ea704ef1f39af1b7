"""A record edited by hand (or half-rewritten) is refused by the report, naming the file and the numbers.

Before: the report showed a ``test.war`` of 90.83 beside a confusion matrix that gives 30.83, and never compared a
record with the run's own result files or its fold's actors.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from tests_helpers import compose_train

from cfnsr.report.collect import Run, classify
from cfnsr.report.consistency import confusion_metrics
from cfnsr.tasks.train import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_dir(tiny_data_dir: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    train(compose_train(["fusion=averaging", "measure_gflops=false", "trainer.max_epochs=1"], tiny_data_dir, out))
    return out


def _edited(run_dir: Path, tmp_path: Path, edit: Callable[[dict], None]) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    record = json.loads((copy / "metrics.json").read_text())
    edit(record)
    (copy / "metrics.json").write_text(json.dumps(record))
    return copy / "metrics.json"


def test_untouched_record_is_used_and_matches_its_matrix(run_dir: Path) -> None:
    item = classify(run_dir / "metrics.json")
    assert isinstance(item, Run), getattr(item, "reason", "")
    test = item.record["test"]
    derived = confusion_metrics(test["confusion"])
    # the matrix-derived metrics agree with torchmetrics' (the check's premise), and the split was counted whole
    assert abs(derived["war"] - test["war"]) < 1e-6 and abs(derived["uar"] - test["uar"]) < 1e-6
    assert abs(derived["f1"] - test["f1"]) < 1e-6
    assert test["n"] == test["split_clips"] > 0


def test_war_edited_by_hand_is_refused_naming_both_numbers(run_dir: Path, tmp_path: Path) -> None:
    path = _edited(run_dir, tmp_path, lambda r: r["test"].update(war=0.9083))
    item = classify(path)
    assert not isinstance(item, Run)
    war = confusion_metrics(json.loads(path.read_text())["test"]["confusion"])["war"]
    assert f"test.war is 90.83 but its confusion matrix gives {100 * war:.2f}" in item.reason


def test_record_rewritten_consistently_still_disagrees_with_its_result_file(run_dir: Path, tmp_path: Path) -> None:
    def forge(r: dict) -> None:  # every clip correct: matrix, war, uar, f1 and n agree with each other
        k = len(r["test"]["confusion"])
        support = [sum(row) for row in r["test"]["confusion"]]
        r["test"].update(war=1.0, uar=1.0, f1=1.0,
                         confusion=[[support[i] if i == j else 0 for j in range(k)] for i in range(k)])

    path = _edited(run_dir, tmp_path, forge)
    item = classify(path)
    results = path.parent / "test_results" / "test.json"
    assert f"test.war is 100.00 but {results} says" in item.reason
    assert "test.confusion differs from the matrix in" in item.reason


def test_clip_count_and_actors_are_checked_against_the_split(run_dir: Path, tmp_path: Path) -> None:
    def drop_clips(r: dict) -> None:  # as if part of the split was never tested; the rest stays consistent
        cm = r["test"]["confusion"]
        i = next(i for i, row in enumerate(cm) if row[i] > 0)
        cm[i][i] -= 1
        r["test"]["n"] -= 1
        r["test"]["war"] = confusion_metrics(cm)["war"]

    path = _edited(run_dir, tmp_path, drop_clips)
    (path.parent / "test_results" / "test.json").unlink()  # only the split size is left to catch it
    n = json.loads(path.read_text())["test"]["n"]
    assert f"test counted {n} clips but its test split holds {n + 1}" in classify(path).reason

    path = _edited(run_dir, tmp_path / "b", lambda r: r.update(test_actors=[5, 6]))
    assert "test_actors [5, 6] are not fold 1's actors [1, 2] of its fold scheme" in classify(path).reason
