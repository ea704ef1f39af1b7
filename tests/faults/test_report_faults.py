"""Faults the report used to make, rebuilt from metrics.json files in tmp dirs.

The report once put a 12-epoch and a 1-epoch CFN-SR run into one row (choosing between them by file mtime) and
printed a paired test against a 1-epoch baseline. Runs in one row must share the whole training recipe except fold
and seed; duplicates are resolved by the record's ``finished_at``, not by file mtimes; and a run's settings come from
its record, never from its folder name.
"""

from __future__ import annotations

import copy
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from cfnsr.report import build_report, collect_runs, format_markdown, main
from cfnsr.runs.recipe import recipe_hash, training_recipe
from cfnsr.runs.record import write_record

N = 240  # clips per test fold
SELECTION = {"paper": "best test epoch (paper protocol)", "clean": "best validation epoch (clean protocol)"}


def config(fusion: str, fold: int, seed: int, protocol: str, settings: dict[str, Any]) -> dict[str, Any]:
    """A resolved train config (trimmed) with dotted ``settings`` applied."""
    cfg: dict[str, Any] = {
        "experiment_name": "faults", "fold": fold, "seed": seed, "ckpt_path": None,
        "paths": {"output_dir": f"/out/{uuid.uuid4()}"},
        "data": {"name": "synthetic", "root": "/data/s", "frames": 16, "size": 64, "batch_size": 16,
                 "num_workers": 0},
        "preprocess": {"crop_margin": 0.2, "channel_order": "rgb", "workers": 2},
        "folds": {"name": "paper", "test_actors": [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]},
        "protocol": {"name": protocol, "selection": SELECTION[protocol]},
        "backbone": {"name": "tiny", "video": {"layers": [1, 1, 1, 1]}},
        "fusion": {"name": fusion, "model": {"_target_": f"cfnsr.models.fusion.{fusion}"}},
        "model": {"init": {"video": None, "audio": None, "from_runs": None, "kinetics": None}},
        "augment": {"flip": 0.5},
        "optimizer": {"_target_": "torch.optim.Adam", "lr": 1.0e-3, "weight_decay": 0.0},
        "trainer": {"max_epochs": 12, "devices": 1, "accelerator": "cpu"},
    }  # fmt: skip
    for key, value in settings.items():
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = copy.deepcopy(value)
    return cfg


def write_run(
    run_dir: Path,
    fusion: str,
    fold: int,
    correct: int,
    *,
    seed: int = 1,
    protocol: str = "paper",
    settings: dict[str, Any] | None = None,
    finished_at: str = "2024-06-01T12:00:00+00:00",
    run_id: str | None = None,
) -> Path:
    """A finished record as the training job writes it (recipe, recipe_hash, run_id, finished_at)."""
    recipe = training_recipe(config(fusion, fold, seed, protocol, settings or {}))
    war = correct / N
    return write_record(
        run_dir,
        {
            "status": "finished", "error": None, "run_dir": str(run_dir), "experiment": "faults",
            "dataset": "synthetic", "backbone": "tiny", "fusion": fusion, "fusion_stage": "Model",
            "protocol": protocol, "selection": SELECTION[protocol], "folds": "paper", "fold": fold,
            "test_actors": [4 * fold - 3 + i for i in range(4)], "val_actors": [4 * fold - 3 + i for i in range(4)],
            "seed": seed, "params": 1000, "gflops": 1.0, "paper": None, "epochs": recipe["trainer.max_epochs"],
            "best_epoch": 0,
            "test": {"war": war, "uar": war, "f1": war, "n": N},
            "test_last": {"war": war, "uar": war, "f1": war, "n": N},
            "recipe": recipe, "recipe_hash": recipe_hash(recipe), "run_id": run_id or str(uuid.uuid4()),
            "finished_at": finished_at,
        },
    )  # fmt: skip


def pct(correct: int) -> float:
    return 100.0 * correct / N


def test_12_epoch_and_1_epoch_cfnsr_runs_are_never_one_row(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    sweep = tmp_path / "sweep"
    long_cf = {1: 190, 2: 185, 3: 188}
    short_cf = {1: 100, 2: 110, 3: 105}
    short_msaf = {1: 120, 2: 118, 3: 125}
    for fold in (1, 2, 3):
        # The 12-epoch run is written last, so it is also the newest file: the old report kept only it.
        write_run(sweep / f"short_cfnsr_{fold}", "cfnsr", fold, short_cf[fold], settings={"trainer.max_epochs": 1})
        write_run(sweep / f"short_msaf_{fold}", "msaf", fold, short_msaf[fold], settings={"trainer.max_epochs": 1})
        write_run(sweep / f"long_cfnsr_{fold}", "cfnsr", fold, long_cf[fold])
    runs, _ = collect_runs([sweep])
    report = build_report(runs)

    assert not report.duplicates  # different recipes: not duplicates of each other
    cfnsr_rows = [(g, r) for g in report.groups for r in g.rows if r.fusion == "cfnsr"]
    assert len(cfnsr_rows) == 2
    for g, r in cfnsr_rows:
        assert r.n_runs == 3  # one recipe per row: never a 12-epoch and a 1-epoch run together
        assert len({run.record["recipe"]["trainer.max_epochs"] for run in r.runs}) == 1
        assert "trainer.max_epochs" in f"{g.title} {r.label}"
    by_epochs = {r.runs[0].record["recipe"]["trainer.max_epochs"]: (g, r) for g, r in cfnsr_rows}
    assert by_epochs[12][1].war_mean == pytest.approx(sum(map(pct, long_cf.values())) / 3)
    assert by_epochs[1][1].war_mean == pytest.approx(sum(map(pct, short_cf.values())) / 3)

    # The 1-epoch MSAF is compared with the 1-epoch CFN-SR only, and nothing is compared across recipes.
    short_table = by_epochs[1][0]
    assert "trainer.max_epochs=1" in short_table.title
    msaf = short_table.row("msaf")
    assert msaf.comparison is not None
    assert msaf.comparison["diffs"] == pytest.approx([pct(short_msaf[f]) - pct(short_cf[f]) for f in (1, 2, 3)])
    for g in report.groups:
        for r in g.rows:
            for run in r.runs:
                assert run.record["recipe"]["trainer.max_epochs"] == g.recipe["trainer.max_epochs"]
    long_table = by_epochs[12][0]
    assert "trainer.max_epochs=12" in long_table.title and long_table.row("msaf") is None
    assert not long_table.has_comparison

    md = format_markdown(report)
    assert "trainer.max_epochs=12" in md and "trainer.max_epochs=1" in md
    # The CLI names the splitting key in one line.
    assert main([str(sweep), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    (hint,) = [line for line in err.splitlines() if line.startswith("note:")]
    assert "trainer.max_epochs" in hint


def test_duplicates_keep_the_later_finished_at_even_when_its_file_is_older(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    earlier = write_run(sweep / "a", "cfnsr", 1, 150, finished_at="2024-06-01T08:00:00+00:00")
    later = write_run(sweep / "b", "cfnsr", 1, 180, finished_at="2024-06-02T08:00:00+00:00")
    os.utime(earlier, (2_000_000_000, 2_000_000_000))  # the earlier run's file looks newer on disk
    os.utime(later, (1_000_000_000, 1_000_000_000))
    runs, _ = collect_runs([sweep])
    report = build_report(runs)
    ((dropped, kept),) = report.duplicates
    assert kept.path == later.resolve() and dropped.path == earlier.resolve()
    (table,) = report.groups
    assert table.row("cfnsr").war_mean == pytest.approx(pct(180))
    md = format_markdown(report)
    assert "latest `finished_at`" in md and "run_id" in md  # the rule is stated
    assert f"dropped `{earlier.resolve()}`" in md and f"kept `{later.resolve()}`" in md


def test_runs_differing_in_learning_rate_are_split_and_the_key_is_named(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for fold in (1, 2):
        write_run(sweep / f"lr3_{fold}", "cfnsr", fold, 180)
        write_run(sweep / f"lr4_{fold}", "cfnsr", fold, 160, settings={"optimizer.lr": 1.0e-4})
        write_run(sweep / f"msaf_lr4_{fold}", "msaf", fold, 150, settings={"optimizer.lr": 1.0e-4})
    report = build_report(collect_runs([sweep])[0])
    assert len(report.groups) == 2
    titles = sorted(g.title for g in report.groups)
    assert all("optimizer.lr" in t for t in titles)
    assert any("optimizer.lr=0.001" in t for t in titles) and any("optimizer.lr=0.0001" in t for t in titles)
    for g in report.groups:
        assert {run.record["recipe"]["optimizer.lr"] for r in g.rows for run in r.runs} == {g.recipe["optimizer.lr"]}
    assert report.recipe_split_keys == ["optimizer.lr"]
    lr4 = next(g for g in report.groups if g.recipe["optimizer.lr"] == 1.0e-4)
    assert lr4.row("msaf").comparison["diffs"] == pytest.approx([pct(150) - pct(160)] * 2)
    md = format_markdown(report)
    assert "optimizer.lr=0.0001" in md and "optimizer.lr=0.001" in md


def test_settings_come_from_the_record_not_the_folder_name(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    # A 1-epoch run in a folder whose name claims 12 epochs, fold 2 and MSAF, next to a real 12-epoch fold-1 run.
    liar = sweep / "fusion=msaf,fold=2,seed=9,trainer.max_epochs=12"
    write_run(liar, "cfnsr", 1, 100, settings={"trainer.max_epochs": 1})
    write_run(sweep / "fold=1,fusion=cfnsr", "cfnsr", 1, 190)
    report = build_report(collect_runs([sweep])[0])
    assert not report.duplicates and len(report.groups) == 2
    short = next(g for g in report.groups if g.recipe["trainer.max_epochs"] == 1)
    (row,) = short.rows
    assert (row.fusion, row.folds, row.seeds) == ("cfnsr", [1], [1])
    assert row.war_mean == pytest.approx(pct(100))
