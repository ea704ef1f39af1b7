"""Runs on different corpora (by corpus fingerprint, cfnsr.data.source_identity) never share a row of the report."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fixtures import N_TEST, make_record

from cfnsr.report import build_report, collect_runs, format_markdown
from cfnsr.runs.record import write_record


def _write(tmp_path: Path, name: str, fusion: str, fold: int, correct: int, corpus: str | None) -> None:
    record = make_record(fusion, fold, 1, correct, run_dir=str(tmp_path / "runs" / name))
    if corpus is not None:
        record["corpus_fingerprint"] = corpus
    write_record(tmp_path / "runs" / name, record)


def test_the_same_recipe_on_two_corpora_gives_two_rows_never_paired_across(tmp_path: Path) -> None:
    for fold in (1, 2):
        _write(tmp_path, f"a{fold}", "cfnsr", fold, 180, "aaaaaaaaaaaaaaaa")
        _write(tmp_path, f"b{fold}", "cfnsr", fold, 120, "bbbbbbbbbbbbbbbb")
        _write(tmp_path, f"m{fold}", "msaf", fold, 160, "bbbbbbbbbbbbbbbb")
    report = build_report(collect_runs([tmp_path / "runs"])[0])
    (table,) = report.groups
    rows = table.rows_for("cfnsr")
    assert sorted(r.corpus for r in rows) == ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"]
    assert sorted(r.war_mean for r in rows) == pytest.approx([100 * 120 / N_TEST, 100 * 180 / N_TEST])
    assert sorted(r.label for r in rows) == ["CFN-SR (corpus aaaaaaaaaaaaaaaa)", "CFN-SR (corpus bbbbbbbbbbbbbbbb)"]
    # MSAF ran on corpus b: its paired test is against CFN-SR on corpus b, never a
    comparison = table.row("msaf").comparison
    assert comparison is not None and comparison["reference"] == "CFN-SR (corpus bbbbbbbbbbbbbbbb)"
    assert "the corpus they ran on (corpus_fingerprint)" in format_markdown(report)


def test_records_without_a_fingerprint_keep_their_rows(tmp_path: Path) -> None:
    for fold in (1, 2):
        _write(tmp_path, f"a{fold}", "cfnsr", fold, 180, None)
        _write(tmp_path, f"m{fold}", "msaf", fold, 160, None)
    (table,) = build_report(collect_runs([tmp_path / "runs"])[0]).groups
    assert [r.label for r in table.rows_for("cfnsr")] == ["CFN-SR"] and table.row("msaf").comparison is not None
