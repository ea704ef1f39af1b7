"""Tables and rows by training recipe: variants, initialisation, old records without a recipe, outputs."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from report_fixtures import N_TEST

from cfnsr.report import TABLE_RULE, build_report, collect_runs, main, write_report
from cfnsr.report.build import NO_RECIPE_NOTE


def pct(correct: int) -> float:
    return 100.0 * correct / N_TEST


def test_one_fusion_with_two_configs_gives_two_labelled_rows(write_run) -> None:
    for fold in (1, 2):
        root = write_run("cfnsr", fold, 1, 180, settings={"fusion.model.num_layers": 5}).parents[1]
        write_run("cfnsr", fold, 1, 170, settings={"fusion.model.num_layers": 2})
        write_run("msaf", fold, 1, 160)
    report = build_report(collect_runs([root])[0])
    (table,) = report.groups  # fusion settings split rows, not tables
    rows = table.rows_for("cfnsr")
    assert [r.label for r in rows] == [
        "CFN-SR (fusion.model.num_layers=2)", "CFN-SR (fusion.model.num_layers=5)",
    ]  # fmt: skip
    assert [r.war_mean for r in rows] == pytest.approx([pct(170), pct(180)])
    assert all(r.variant == ["fusion.model.num_layers"] for r in rows)
    assert table.row("msaf").label == "MSAF"
    # Two CFN-SR rows with MSAF's initialisation: no single reference, so no paired test, and the notes say why.
    assert table.row("msaf").comparison is None
    assert any(n.startswith("MSAF: no paired test, several CFN-SR rows share its initialisation") for n in table.notes)
    assert not report.recipe_hint  # one table: nothing split


def test_paired_tests_only_against_cfnsr_with_the_same_initialisation(write_run) -> None:
    init = {"model.init.from_runs": "/runs/unimodal"}
    for fold in (1, 2, 3):
        root = write_run("cfnsr", fold, 1, 180 + fold, settings=init).parents[1]
        write_run("cfnsr", fold, 1, 150 + fold)
        write_run("msaf", fold, 1, 170, settings={"model.init.from_runs": f"/other/place/fold{fold}"})
        write_run("video_only", fold, 1, 140)
        write_run("audio_only", fold, 1, 120, settings={"model.init.kinetics": "/k.pth"})
    (table,) = build_report(collect_runs([root])[0]).groups
    labels = sorted(r.label for r in table.rows_for("cfnsr"))
    assert labels == ["CFN-SR (model.init.from_runs=false)", "CFN-SR (model.init.from_runs=true)"]
    cf_init = next(r for r in table.rows_for("cfnsr") if r.init["model.init.from_runs"])
    cf_plain = next(r for r in table.rows_for("cfnsr") if not r.init["model.init.from_runs"])
    msaf = table.row("msaf")
    assert msaf.comparison["reference"] == cf_init.label
    assert msaf.comparison["diffs"] == pytest.approx([pct(170) - pct(180 + f) for f in (1, 2, 3)])
    video = table.row("video_only")
    assert video.comparison["reference"] == cf_plain.label
    assert video.comparison["diffs"] == pytest.approx([pct(140) - pct(150 + f) for f in (1, 2, 3)])
    assert table.row("audio_only").comparison is None
    assert any("tiny backbone (audio only): no paired test" in n and "model.init.kinetics=true" in n for n in table.notes)


def test_records_without_a_recipe_get_their_own_table_with_a_note(write_run) -> None:
    root = write_run("cfnsr", 1, 1, 180).parents[1]
    write_run("cfnsr", 1, 1, 120, recipe=False)  # same fold and seed, but its recipe is unknown: not a duplicate
    write_run("msaf", 1, 1, 110, recipe=False)
    report = build_report(collect_runs([root])[0])
    assert not report.duplicates
    recorded, old = report.groups
    assert recorded.has_recipe and recorded.label == "" and recorded.row("cfnsr").war_mean == pytest.approx(pct(180))
    assert not old.has_recipe and old.title.endswith("| recipe not recorded")
    assert [r.fusion for r in old.rows] == ["msaf", "cfnsr"]
    assert old.row("msaf").comparison is not None  # compared by (protocol, dataset, backbone), as before
    assert NO_RECIPE_NOTE in old.notes
    assert report.recipe_split_unrecorded and "no recorded recipe" in report.recipe_hint
    assert report.notes == [f"Note: {report.recipe_hint}. {TABLE_RULE}"]


def test_mixing_protocols_still_needs_split_and_recipe_tables_pair_up_for_the_gap(write_run) -> None:
    root = write_run("cfnsr", 1, 1, 190, protocol="paper").parents[1]
    write_run("cfnsr", 1, 1, 170, protocol="clean")
    write_run("cfnsr", 1, 1, 100, protocol="clean", settings={"trainer.max_epochs": 1})
    runs = collect_runs([root])[0]
    with pytest.raises(Exception, match="--split"):
        build_report(runs)
    report = build_report(runs, split=True)
    assert [g.title for g in report.groups] == [
        "protocol=clean, dataset=synthetic, backbone=tiny | trainer.max_epochs=1",
        "protocol=clean, dataset=synthetic, backbone=tiny | trainer.max_epochs=12",
        "protocol=paper, dataset=synthetic, backbone=tiny",
    ]
    (gap,) = report.gaps  # only the 12-epoch clean table pairs with the (12-epoch) paper table
    (row,) = gap.rows
    assert row.paper_minus_clean == pytest.approx(pct(190) - pct(170))
    assert report.recipe_split_keys == ["trainer.max_epochs"]
    differs = [n for n in report.groups[2].notes if n.startswith("This table's recipe differs")]
    assert differs and "protocol.name=paper" in differs[0] and "trainer.max_epochs=12" in differs[0]


def test_outputs_name_tables_and_rows(write_run, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_run("cfnsr", 1, 1, 190).parents[1]
    write_run("cfnsr", 1, 1, 100, settings={"trainer.max_epochs": 1})
    write_run("msaf", 1, 1, 150, settings={"trainer.max_epochs": 1, "fusion.model.reduction": 4})
    write_run("msaf", 1, 1, 140, settings={"trainer.max_epochs": 1, "fusion.model.reduction": 8})
    report = build_report(collect_runs([root])[0])
    paths = write_report(report, tmp_path / "out")
    confusions = sorted(k for k in paths if k.startswith("confusion_"))
    assert len(confusions) == 4 and len(set(confusions)) == 4
    rows = list(csv.DictReader(paths["csv"].open()))
    assert {r["table"] for r in rows} == {g.title for g in report.groups}
    assert all(len(r["recipe_hash"]) == 12 for r in rows)
    msaf = sorted((r["row"], r["row_variant"]) for r in rows if r["fusion"] == "msaf")
    assert msaf == [
        ("MSAF (fusion.model.reduction=4)", "fusion.model.reduction"),
        ("MSAF (fusion.model.reduction=8)", "fusion.model.reduction"),
    ]
    assert main([str(root), "--out", str(tmp_path / "cli")]) == 0
    err = capsys.readouterr().err
    assert "note: runs with different training recipes are reported in separate tables" in err
    assert "trainer.max_epochs" in err


def test_duplicates_show_the_jobs_overrides(write_run) -> None:
    a = write_run("cfnsr", 1, 1, 150, finished_at="2024-05-01T10:00:00+00:00")
    b = write_run("cfnsr", 1, 1, 180, finished_at="2024-05-01T11:00:00+00:00")
    (a.parent / ".hydra").mkdir()
    (a.parent / ".hydra" / "overrides.yaml").write_text("- fold=1\n- fusion=cfnsr\n")
    os.utime(a, (2_000_000, 2_000_000))
    ((dropped, kept),) = build_report(collect_runs([a.parents[1]])[0]).duplicates
    assert dropped.path == a.resolve() and kept.path == b.resolve()
    assert dropped.overrides == ["fold=1", "fusion=cfnsr"] and kept.overrides is None
