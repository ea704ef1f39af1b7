"""Runs on different corpora (by corpus fingerprint, cfnsr.data.source_identity) never share a row of the report."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fixtures import N_TEST, make_record

from cfnsr.report import build_report, collect_runs
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
    assert all(r.variant == ["corpus"] for r in rows)
    assert any("they differ in the corpus they ran on (corpus_fingerprint)" in n for n in table.notes)


def test_records_without_a_fingerprint_keep_their_rows(tmp_path: Path) -> None:
    for fold in (1, 2):
        _write(tmp_path, f"a{fold}", "cfnsr", fold, 180, None)
        _write(tmp_path, f"m{fold}", "msaf", fold, 160, None)
    (table,) = build_report(collect_runs([tmp_path / "runs"])[0]).groups
    assert [r.label for r in table.rows_for("cfnsr")] == ["CFN-SR"] and table.row("msaf").comparison is not None


def test_the_fingerprint_ends_the_row_key_and_the_gap_never_pairs_across_corpora(tmp_path: Path) -> None:
    # paper runs on corpus a, clean runs on corpus a (fold 1) and b (fold 2): the gap pairs only the a rows.
    for protocol, fold, corpus, correct in (("paper", 1, "a" * 16, 190), ("clean", 1, "a" * 16, 170),
                                            ("clean", 2, "b" * 16, 150)):
        record = make_record("cfnsr", fold, 1, correct, protocol=protocol,
                             run_dir=str(tmp_path / "runs" / f"{protocol}{fold}"))
        record["corpus_fingerprint"], record["effective_batch"] = corpus, 8
        write_record(tmp_path / "runs" / f"{protocol}{fold}", record)
    runs = collect_runs([tmp_path / "runs"])[0]
    # (fusion, row recipe hash, effective batch, init provenance, corpus fingerprint): report.protocol_gap drops index 3
    assert {r.row_key[2:] for r in runs} == {(8, None, "a" * 16), (8, None, "b" * 16)}
    (gap,) = build_report(runs, split=True).gaps
    by_pair = sorted((r.paper_war is not None, r.clean_war is not None) for r in gap.rows)
    assert by_pair == [(False, True), (True, True)]  # a: paired; b: a clean row without a paper partner
    (paired,) = [r for r in gap.rows if r.paper_war is not None]
    assert paired.clean_war == pytest.approx(100 * 170 / N_TEST)
