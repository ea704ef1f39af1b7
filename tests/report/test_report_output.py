"""Files on disk and the command line, and the one test of the Markdown rendering (every other report test checks
the report's data: rows, tables, notes, duplicates, skipped runs)."""

from __future__ import annotations

import csv
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from report_fixtures import CORRECT, N_TEST, RunWriter, make_record

from cfnsr.report import SearchTrial, build_report, collect_runs, format_markdown, main, write_report
from cfnsr.report.collect import DUPLICATE_RULE
from cfnsr.report.diagnostics import diagnostics_rows
from cfnsr.runs.record import write_record


def test_write_report_outputs(sweep: Path, tmp_path: Path) -> None:
    runs, skipped = collect_runs([sweep])
    out = tmp_path / "out"
    paths = write_report(build_report(runs, skipped=skipped), out)
    assert set(paths) == {
        "markdown", "csv", "war_by_method", "confusion_averaging", "confusion_msaf", "confusion_cfnsr",
    }  # fmt: skip
    for p in paths.values():
        assert p.parent == out and p.stat().st_size > 0
    assert paths["war_by_method"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["markdown"].read_text() == format_markdown(build_report(runs, skipped=skipped))
    rows = {r["fusion"]: r for r in csv.DictReader(paths["csv"].open())}
    assert list(rows) == ["averaging", "msaf", "cfnsr"]
    cf = rows["cfnsr"]
    cf_wars = [100 * c / N_TEST for (f, _, _), c in CORRECT.items() if f == "cfnsr"]
    assert float(cf["war_mean"]) == pytest.approx(statistics.mean(cf_wars), abs=1e-4)
    assert float(cf["war_std"]) == pytest.approx(statistics.stdev(cf_wars), abs=1e-4)
    assert float(cf["war_fold_2"]) == pytest.approx(171 / 2.4, abs=1e-4)
    assert (cf["n_runs"], cf["n_folds"], cf["n_seeds"], cf["params"]) == ("6", "3", "2", "26301417")
    assert cf["vs_cfnsr_n"] == "" and rows["msaf"]["vs_cfnsr_n"] == "3"
    assert float(rows["msaf"]["vs_cfnsr_mean_diff"]) == pytest.approx(-12 / 2.4 / 3, abs=1e-4)


def test_split_writes_gap_csv_and_per_group_confusions(write_run, tmp_path: Path) -> None:
    root = write_run("cfnsr", 1, 1, 190, protocol="paper").parents[1]
    write_run("cfnsr", 1, 1, 170, protocol="clean")
    paths = write_report(build_report(collect_runs([root])[0], split=True), tmp_path / "o")
    assert {"protocol_gap_csv", "confusion_cfnsr_paper_synthetic_tiny", "confusion_cfnsr_clean_synthetic_tiny"} <= set(
        paths
    )
    (gap,) = list(csv.DictReader(paths["protocol_gap_csv"].open()))
    assert float(gap["paper_minus_clean"]) == pytest.approx(20 / 2.4, abs=1e-4)


def test_cli_prints_table_and_writes_into_first_dir(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(sweep)]) == 0
    assert capsys.readouterr().out.strip() == (sweep / "report.md").read_text().strip()  # the report it wrote
    assert (sweep / "war_by_method.png").stat().st_size > 0


def test_cli_mixing_fails_and_split_succeeds(write_run, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_run("cfnsr", 1, 1, 190, protocol="paper").parents[1]
    write_run("cfnsr", 1, 1, 170, protocol="clean")
    out = tmp_path / "out"
    assert main([str(root), "--out", str(out)]) == 2
    assert "different protocol values" in capsys.readouterr().err
    assert not out.exists()
    assert main([str(root), "--out", str(out), "--split"]) == 0
    (gap,) = list(csv.DictReader((out / "protocol_gap.csv").open()))
    assert float(gap["paper_minus_clean"]) == pytest.approx(20 / 2.4, abs=1e-4)


def test_cli_nothing_finished_returns_1(tmp_path: Path, write_run, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_run("cfnsr", 1, 1, 100, status="running").parents[1]
    assert main([str(root), "--out", str(tmp_path / "o")]) == 1
    runs, skipped = collect_runs([root])
    report = build_report(runs, skipped=skipped)
    assert report.groups == [] and report.notes == ["No finished runs found."] and len(report.skipped) == 1
    assert (tmp_path / "o" / "report.md").read_text() == format_markdown(report)


def test_python_dash_m(sweep: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cfnsr.report", str(sweep), "--out", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader((tmp_path / "m" / "report.csv").open()))
    assert [r["fusion"] for r in rows] == ["averaging", "msaf", "cfnsr"]


def test_cli_missing_input_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def _trial(root: Path, number: int, value: float) -> None:
    rec = make_record("cfnsr", 1, 1, 200, protocol="clean")
    rec.update(protocol="search", test=None, test_last=None, val_actors=[9, 10, 11, 12],
               objective={"name": "val/war", "value": value, "epoch": 2},
               search={"study": "demo-cfnsr-paper-fold1", "trial": number, "outer_fold": 1, "objective": "val/war"})
    write_record(root / f"{number}_trial", rec)


def test_markdown_renders_every_section(sweep: Path, write_run: RunWriter) -> None:
    """The Markdown of one report holding each section: the tables, a one-run row, paired tests with their limits,
    fusion diagnostics, the protocol gap, a duplicate with its overrides, search trials and skipped runs. Each
    rendered line is checked against the report's data."""
    dup = write_run("cfnsr", 1, 1, 150, finished_at="2024-05-01T10:00:00+00:00")  # dropped for the sweep's run
    (dup.parent / ".hydra").mkdir()
    (dup.parent / ".hydra" / "overrides.yaml").write_text("- fold=1\n- fusion=cfnsr\n")
    write_run("mcbp", 1, 1, 150)  # one run: no std
    clean = make_record("cfnsr", 1, 1, 170, protocol="clean")
    clean["test"]["by_interaction"] = {"redundant": {"acc": 1.0, "n": 16}, "video_unique": {"acc": 0.875, "n": 16},
                                       "audio_unique": {"acc": 0.9375, "n": 16}, "synergy": {"acc": 0.5, "n": 16}}
    write_record(sweep / "clean", clean)
    for number, value in ((0, 0.4), (1, 0.55)):
        _trial(sweep, number, value)
    runs, skipped = collect_runs([sweep])
    report = build_report(runs, split=True, skipped=skipped)
    md = format_markdown(report)
    clean_table, paper = report.groups
    cf = paper.row("cfnsr")
    assert md.startswith("# cfnsr report\n")
    assert f"## Results: {paper.title}" in md and f"## Results: {clean_table.title}" in md
    assert f"| Model | Fusion stage | Runs | WAR (%), {paper.selection}: mean ± std | UAR (%) |" in md
    assert (f"| CFN-SR | Model | 6 (3 folds × 2 seeds) | {cf.war_mean:.2f} ± {cf.war_std:.2f} | "
            f"{cf.uar_mean:.2f} ± {cf.uar_std:.2f} | {cf.f1_mean:.2f} ± {cf.f1_std:.2f} | 1: 75.83, 2: 71.25, 3: 78.33 | "
            f"{cf.last_war_mean:.2f} ± {cf.last_war_std:.2f} | 26.30M | 1.50 | 75.76 | 26.30M |") in md
    assert "| MCBP | Early | 1 (1 fold × 1 seed) | 62.50 (n=1) |" in md
    msaf = paper.row("msaf").comparison
    assert (f"| MSAF | CFN-SR | 1, 2, 3 (3) | {msaf['mean_diff']:+.2f} | "
            + ", ".join(f"{d:+.2f}" for d in msaf["diffs"]) + " |") in md
    assert "### Paired comparison against CFN-SR" in md and "2/8 = 0.25 for n=3" in md
    assert all(f"- {note}" in md for g in report.groups for note in g.notes)
    (diag,) = diagnostics_rows(clean_table)
    assert "### Fusion diagnostics" in md and f"| CFN-SR | Model | 1 | {diag.mean['redundant']:.1f} |" in md
    (gap,) = report.gaps
    g = next(r for r in gap.rows if r.fusion == "cfnsr")  # the other rows: paper-protocol only
    assert f"## Protocol gap: {gap.title}" in md
    assert (f"| CFN-SR | {g.paper_war:.2f} | {g.clean_war:.2f} | {g.last_war:.2f} | {g.paper_minus_clean:+.2f} | "
            f"{g.paper_minus_last:+.2f} | {g.n_paper} / {g.n_clean} |") in md
    ((dropped, kept),) = report.duplicates
    assert "## Duplicate runs (same table, row, fold and seed)" in md and DUPLICATE_RULE in md
    assert (f"- dropped `{dropped.path}` (finished_at 2024-05-01T10:00:00+00:00, run_id {dropped.run_id}, overrides: "
            f"fold=1 fusion=cfnsr); kept `{kept.path}` (finished_at {kept.finished_at}, run_id {kept.run_id}): CFN-SR, "
            f"fold 1, seed 1; decided by finished_at") in md
    trials = [t for t in report.skipped if isinstance(t, SearchTrial)]
    assert f"## Hyperparameter-search trials ({len(trials)}, not in the comparison)" in md
    assert "| 1 | finished | 55.00 | [9, 10, 11, 12] | `1_trial` |" in md
    assert md.endswith("## Skipped runs (2)\n\n"
                       f"- `{sweep / 'failed' / 'metrics.json'}`: failed: CUDA out of memory\n"
                       f"- `{sweep / 'running' / 'metrics.json'}`: running / unfinished (status 'running')\n")
