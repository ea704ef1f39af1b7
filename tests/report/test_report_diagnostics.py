"""The fusion diagnostics table and figure: per fusion, mean ± std over runs of the test accuracy per interaction
type, only for runs that recorded ``by_interaction``."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from report_fixtures import make_record

from cfnsr.report import build_report, collect_runs, write_report
from cfnsr.report.diagnostics import diagnostics_rows
from cfnsr.runs.record import write_record

# Synergy accuracy per (fusion, fold): the known numbers.
SYNERGY = {("averaging", 1): 0.5, ("averaging", 2): 0.75, ("averaging", 3): 0.625,
           ("cfnsr", 1): 1.0, ("cfnsr", 2): 0.9375, ("cfnsr", 3): 1.0}  # fmt: skip


def _write(tmp_path: Path, with_types: bool = True) -> Path:
    for (fusion, fold), syn in SYNERGY.items():
        record = make_record(fusion, fold, 1, 200, protocol="clean")
        if with_types:
            record["test"]["by_interaction"] = {
                "redundant": {"acc": 1.0, "n": 16}, "video_unique": {"acc": 0.875, "n": 16},
                "audio_unique": {"acc": 0.9375, "n": 16}, "synergy": {"acc": syn, "n": 16}}  # fmt: skip
        write_record(tmp_path / "sweep" / f"{fusion}-{fold}", record)
    return tmp_path / "sweep"


def test_table_has_mean_and_std_per_type(tmp_path: Path):
    runs, skipped = collect_runs([_write(tmp_path)])
    (group,) = build_report(runs, skipped=skipped).groups
    rows = {r.fusion: r for r in diagnostics_rows(group)}
    assert list(rows) == ["averaging", "cfnsr"] and rows["cfnsr"].n == 3
    late = [100 * SYNERGY[("averaging", f)] for f in (1, 2, 3)]
    assert rows["averaging"].mean["synergy"] == pytest.approx(statistics.mean(late))
    assert rows["averaging"].std["synergy"] == pytest.approx(statistics.stdev(late))
    assert rows["cfnsr"].mean["redundant"] == 100.0 and rows["cfnsr"].std["redundant"] == 0.0
    cfnsr = rows["cfnsr"]
    assert (cfnsr.mean["video_unique"], cfnsr.mean["audio_unique"]) == (87.5, 93.75)
    assert cfnsr.mean["synergy"] == pytest.approx(statistics.mean([100, 93.75, 100]))
    assert cfnsr.std["synergy"] == pytest.approx(statistics.stdev([100, 93.75, 100]))


def test_report_writes_the_section_and_figure_only_with_types(tmp_path: Path):
    runs, skipped = collect_runs([_write(tmp_path)])
    paths = write_report(build_report(runs, skipped=skipped), tmp_path / "out")
    assert paths["fusion_diagnostics"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plain, skipped = collect_runs([_write(tmp_path / "plain", with_types=False)])
    report = build_report(plain, skipped=skipped)
    assert diagnostics_rows(report.groups[0]) == []  # no section, no figure
    assert "fusion_diagnostics" not in write_report(report, tmp_path / "out2")
