"""Records of a renamed fusion join the row of its new name: one row, not two (cfnsr.runs.renames)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from report_fixtures import N_TEST, make_config, make_record

from cfnsr.report import build_report, collect_runs
from cfnsr.runs.recipe import recipe_hash, training_recipe
from cfnsr.runs.record import write_record

OLD_TARGET = "cfnsr.models.fusion.multiplication.Multiplication"
NEW_TARGET = "cfnsr.models.fusion.prob_product.ProbProduct"


def _new_shape(cfg: dict) -> dict:
    """The config of a run written today: init/speed/measure_gflops instead of model.*/complexity."""
    cfg = copy.deepcopy(cfg)
    model = cfg.pop("model")
    cfg["init"], cfg["speed"] = model["init"], {"compile": model["compile"], "channels_last": model["channels_last"]}
    cfg["measure_gflops"] = cfg.pop("complexity")
    return cfg


def test_old_and_new_fusion_names_share_one_row(tmp_path: Path) -> None:
    root = tmp_path / "multirun"
    # Folds 1-2 recorded by a44e97e as "multiplication"; fold 3 recorded today as "prob_product".
    olds = []
    for fold, correct in ((1, 170), (2, 160)):
        # (the fixture does not know the old name's YAML: its stage is given as the old YAML said)
        record = make_record("multiplication", fold, 1, correct,
                             settings={"fusion.model._target_": OLD_TARGET, "fusion.stage": "Late"})
        record["fusion_stage"], record["fusion_display"] = "Late", "Multiplication"
        olds.append(record)
        write_record(root / f"old{fold}", record)
    new = make_record("prob_product", 3, 1, 180)
    cfg = make_config("prob_product", 3, 1, settings={"fusion.model._target_": NEW_TARGET})
    cfg = _new_shape(cfg)
    new["recipe"] = training_recipe(cfg)
    new["recipe_hash"] = recipe_hash(new["recipe"])
    new["fusion_display"] = "Multiplication"
    write_record(root / "new3", new)
    assert new["recipe_hash"] == olds[0]["recipe_hash"]  # the hash an old record stored

    runs, skipped = collect_runs([root])
    assert not skipped
    (table,) = build_report(runs).groups
    assert table.rows_for("multiplication") == []
    (row,) = table.rows_for("prob_product")
    assert (row.n_runs, row.folds, row.label) == (3, [1, 2, 3], "Multiplication")
    assert row.war_mean == pytest.approx(100.0 * (170 + 160 + 180) / 3 / N_TEST)
