"""Aggregation, ordering, skipping, mixing, duplicates and the protocol gap, against hand-computed numbers (on the
report's data; the Markdown rendering of it is tested once, in test_report_output.py)."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import pytest
from report_fixtures import CORRECT, N_TEST, make_record

from cfnsr.models.fusion.registry import fusion_facts
from cfnsr.report import ReportError, build_report, collect_runs
from cfnsr.report.collect import decision_time, duplicate_basis
from cfnsr.runs.record import write_record


def pct(correct: int) -> float:
    return 100.0 * correct / N_TEST


def wars(fusion: str) -> list[float]:
    return [pct(c) for (f, _, _), c in CORRECT.items() if f == fusion]


def test_table_numbers_match_hand_computation(sweep: Path) -> None:
    runs, _ = collect_runs([sweep])
    report = build_report(runs)
    (group,) = report.groups
    cfnsr = group.row("cfnsr")
    assert cfnsr.n_runs == 6 and cfnsr.folds == [1, 2, 3] and cfnsr.seeds == [1, 2]
    assert cfnsr.war_mean == pytest.approx(statistics.mean(wars("cfnsr")))
    assert cfnsr.war_std == pytest.approx(statistics.stdev(wars("cfnsr")))  # sample std, ddof=1
    # per-fold WAR = mean over the two seeds: (180+184)/2, (170+172)/2, (190+186)/2 clips of 240
    assert cfnsr.per_fold_war == pytest.approx({1: 182 / 2.4, 2: 171 / 2.4, 3: 188 / 2.4})
    assert cfnsr.uar_mean == pytest.approx(statistics.mean(wars("cfnsr")) - 1.0)
    assert cfnsr.f1_mean == pytest.approx(statistics.mean(wars("cfnsr")) - 2.0)
    assert cfnsr.last_war_mean == pytest.approx(statistics.mean(wars("cfnsr")) - 5.0)  # 12 clips = 5 points
    assert cfnsr.params == [26_301_417] and cfnsr.paper_accuracy == 75.76 and cfnsr.paper_params == "26.30M"
    assert cfnsr.confusion.sum() == 6 * N_TEST and cfnsr.confusion.trace() == sum(
        c for (f, _, _), c in CORRECT.items() if f == "cfnsr"
    )
    msaf = group.row("msaf")
    assert msaf.war_mean == pytest.approx(statistics.mean(wars("msaf")))
    assert msaf.war_std == pytest.approx(statistics.stdev(wars("msaf")))
    assert msaf.per_fold_war == pytest.approx({1: pct(176), 2: pct(168), 3: pct(185)})
    assert list(cfnsr.per_fold_war) == [1, 2, 3] and cfnsr.stage == "Model" and cfnsr.label == "CFN-SR"
    assert group.selection == "best test epoch (paper protocol)"  # the WAR column's label


def test_rows_follow_the_yaml_order_then_alphabetical(write_run) -> None:
    shipped = ["cfnsr", "msaf", "averaging", "video_only", "audio_only", "mmtm", "mcbp"]
    for fusion in ["zeta_custom", "alpha_custom", *shipped[:-1]]:
        write_run(fusion, 1, 1, 150)
    runs, _ = collect_runs([write_run(fusion="mcbp", fold=1, seed=1, correct=150).parents[1]])
    report = build_report(runs)
    order = [r.fusion for r in report.groups[0].rows]
    assert order == sorted(shipped, key=lambda f: fusion_facts(f).order) + ["alpha_custom", "zeta_custom"]
    assert order[:2] == ["video_only", "audio_only"] and order[6] == "cfnsr"  # the paper's table order
    models = [r.model for r in report.groups[0].rows]
    assert models[2:] == [fusion_facts(f).display for f in order[2:7]] + ["alpha_custom", "zeta_custom"]
    # These runs used backbone=tiny: the unimodal rows must not claim the paper's networks.
    assert models[:2] == ["tiny backbone (video only)", "tiny backbone (audio only)"]
    # A single run per fusion has no sample std (the table shows its n instead of a made-up number).
    mcbp = report.groups[0].row("mcbp")
    assert (mcbp.n_runs, mcbp.war_mean, mcbp.war_std) == (1, pytest.approx(62.5), None)


def test_a_fusion_outside_conf_takes_its_label_and_place_from_its_records(write_run, tmp_path: Path) -> None:
    """A fusion from an extra config folder: its YAML's display and order travel in the run records."""
    for fusion in ("averaging", "mcbp"):
        write_run(fusion, 1, 1, 150)
    gated = write_run("gated_sum", 1, 1, 160)
    record = json.loads(gated.read_text())
    gated.write_text(json.dumps({**record, "fusion_display": "Gated sum", "fusion_order": 35}))
    runs, _ = collect_runs([gated.parents[1]])
    rows = build_report(runs).groups[0].rows
    assert [(r.fusion, r.label, r.stage) for r in rows] == [
        ("averaging", "Averaging", "Late"), ("gated_sum", "Gated sum", "Early"), ("mcbp", "MCBP", "Early")]


def test_unimodal_rows_name_the_backbone_the_runs_used(write_run) -> None:
    expected = {"paper": ["3D ResNeXt-50 (video only)", "1D CNN (audio only)", "CFN-SR"],
                "tiny": ["tiny backbone (video only)", "tiny backbone (audio only)", "CFN-SR"]}
    for backbone, names in expected.items():
        paths = [write_run(f, 1, 1, 150, backbone=backbone, root=backbone) for f in ("video_only", "audio_only", "cfnsr")]
        runs, _ = collect_runs([paths[0].parents[1]])
        report = build_report(runs)
        assert [r.model for r in report.groups[0].rows] == [r.label for r in report.groups[0].rows] == names


def test_skipped_runs_are_listed_with_reasons(sweep: Path) -> None:
    (sweep / "garbage").mkdir()
    (sweep / "garbage" / "metrics.json").write_text("{not json")
    incomplete = make_record("msaf", 5, 1, 100)
    del incomplete["test"]
    write_record(sweep / "incomplete", incomplete)
    runs, skipped = collect_runs([sweep])
    assert len(runs) == len(CORRECT)
    reasons = {s.path.parent.name: s.reason for s in skipped}
    assert reasons["failed"] == "failed: CUDA out of memory"
    assert reasons["running"].startswith("running / unfinished")
    assert reasons["garbage"].startswith("unreadable")
    assert reasons["incomplete"] == "incomplete record: missing test"
    assert [s.reason for s in build_report(runs, skipped=skipped).skipped] == [s.reason for s in skipped]


@pytest.mark.parametrize(("field", "other"), [("protocol", "clean"), ("dataset", "ravdess"), ("backbone", "paper")])
def test_mixing_groups_raises_naming_values_and_runs(write_run, field: str, other: str) -> None:
    a = write_run("cfnsr", 1, 1, 180)
    b = write_run("cfnsr", 2, 1, 180, **{field: other})
    runs, _ = collect_runs([a.parents[1]])
    with pytest.raises(ReportError) as err:
        build_report(runs)
    msg = str(err.value)
    default = {"protocol": "paper", "dataset": "synthetic", "backbone": "tiny"}[field]
    assert f"different {field} values" in msg
    assert repr(default) in msg and repr(other) in msg
    assert str(a.parent) in msg and str(b.parent) in msg
    assert "--split" in msg
    # With split there is one table per group instead.
    report = build_report(runs, split=True)
    assert sorted(getattr(g, field) for g in report.groups) == sorted([default, other])


def test_split_gives_tables_and_protocol_gap(write_run) -> None:
    # paper protocol: best test epoch; clean: best val epoch. last epoch = 12 clips (5 points) under each run.
    paper = {("cfnsr", 1): 190, ("cfnsr", 2): 180, ("msaf", 1): 186, ("msaf", 2): 176}
    clean = {("cfnsr", 1): 170, ("cfnsr", 2): 166, ("msaf", 1): 168}  # msaf fold 2 missing under clean
    for (fusion, fold), c in paper.items():
        root = write_run(fusion, fold, 1, c, protocol="paper").parents[1]
    for (fusion, fold), c in clean.items():
        write_run(fusion, fold, 1, c, protocol="clean")
    write_run("cfnsr", 1, 1, 150, dataset="ravdess")  # a third group, with no gap partner
    runs, _ = collect_runs([root])
    with pytest.raises(ReportError):
        build_report(runs)
    report = build_report(runs, split=True)
    assert [g.key for g in report.groups] == [
        ("clean", "synthetic", "tiny"), ("paper", "ravdess", "tiny"), ("paper", "synthetic", "tiny"),
    ]  # fmt: skip
    assert report.groups[0].selection == "best validation epoch (clean protocol)"
    (gap,) = report.gaps
    assert (gap.dataset, gap.backbone) == ("synthetic", "tiny")
    rows = {r.fusion: r for r in gap.rows}
    assert list(rows) == ["msaf", "cfnsr"]
    cf = rows["cfnsr"]
    assert cf.paper_war == pytest.approx(pct(185))  # (190 + 180) / 2 clips
    assert cf.clean_war == pytest.approx(pct(168))
    assert cf.last_war == pytest.approx(pct(185) - 5.0)
    assert cf.paper_minus_clean == pytest.approx(pct(185) - pct(168))
    assert cf.paper_minus_last == pytest.approx(5.0)
    ms = rows["msaf"]
    assert ms.paper_minus_clean == pytest.approx(pct(181) - pct(168)) and (ms.n_paper, ms.n_clean) == (2, 1)
    assert gap.title == "dataset=synthetic, backbone=tiny" and cf.label == "CFN-SR" and (cf.n_paper, cf.n_clean) == (2, 2)
    # the clean table's msaf has fold 1 only
    assert any(n.startswith("Methods cover different folds") for n in report.groups[0].notes)


def test_duplicates_keep_the_latest_finished_at_not_the_newest_file(write_run) -> None:
    old = write_run("cfnsr", 1, 1, 150, finished_at="2024-05-01T10:00:00+00:00")
    new = write_run("cfnsr", 1, 1, 180, finished_at="2024-05-01T11:00:00Z")
    other_seed = write_run("cfnsr", 1, 2, 170)
    os.utime(old, (2_000_000, 2_000_000))  # the older run's file is the newer one on disk
    os.utime(new, (1_000_000, 1_000_000))
    runs, _ = collect_runs([old.parents[1]])
    report = build_report(runs)
    row = report.groups[0].row("cfnsr")
    assert row.n_runs == 2 and row.war_mean == pytest.approx((pct(180) + pct(170)) / 2)
    ((dropped, kept),) = report.duplicates  # a different seed (other_seed) is not a duplicate
    assert dropped.path == old.resolve() and kept.path == new.resolve() != other_seed.resolve()
    assert (dropped.finished_at, kept.finished_at) == ("2024-05-01T10:00:00+00:00", "2024-05-01T11:00:00Z")
    assert duplicate_basis(dropped, kept) == "finished_at"


def test_duplicates_with_equal_finished_at_break_ties_by_run_id(write_run) -> None:
    a = write_run("cfnsr", 1, 1, 150, run_id="00000000-0000-4000-8000-00000000000b")
    b = write_run("cfnsr", 1, 1, 180, run_id="00000000-0000-4000-8000-00000000000a")
    os.utime(a, (1_000_000, 1_000_000))
    os.utime(b, (2_000_000, 2_000_000))
    ((dropped, kept),) = build_report(collect_runs([a.parents[1]])[0]).duplicates
    assert kept.path == a.resolve() and dropped.path == b.resolve()


def test_old_duplicates_without_finished_at_fall_back_to_mtime_and_say_so(write_run) -> None:
    old = write_run("cfnsr", 1, 1, 150, recipe=False)
    new = write_run("cfnsr", 1, 1, 180, recipe=False)
    os.utime(old, (1_000_000, 1_000_000))
    os.utime(new, (2_000_000, 2_000_000))
    report = build_report(collect_runs([old.parents[1]])[0])
    ((dropped, kept),) = report.duplicates
    assert dropped.path == old.resolve() and kept.path == new.resolve()
    assert decision_time(dropped) == (1_000_000, "file mtime") and decision_time(kept) == (2_000_000, "file mtime")
    assert duplicate_basis(dropped, kept) == "file mtime"


def test_comparison_against_cfnsr_in_report(sweep: Path) -> None:
    runs, _ = collect_runs([sweep])
    group = build_report(runs).groups[0]
    comp = group.row("msaf").comparison
    # msaf - cfnsr per fold, cfnsr averaged over its 2 seeds: (176-182), (168-171), (185-188) clips
    assert comp["folds"] == [1, 2, 3]
    assert comp["diffs"] == pytest.approx([-6 / 2.4, -3 / 2.4, -3 / 2.4])
    assert comp["mean_diff"] == pytest.approx(-12 / 2.4 / 3)
    assert group.row("cfnsr").comparison is None and group.has_comparison
    # every difference negative: the exact two-sided Wilcoxon p is its floor for n=3, 2/2^3
    assert comp["n"] == 3 and comp["wilcoxon_p"] == pytest.approx(0.25) and comp["reference"] == "CFN-SR"


def test_no_comparison_without_cfnsr(write_run) -> None:
    write_run("msaf", 1, 1, 170)
    runs, _ = collect_runs([write_run("averaging", 1, 1, 160).parents[1]])
    report = build_report(runs)
    assert not report.groups[0].has_comparison
    assert all(r.comparison is None for r in report.groups[0].rows)
