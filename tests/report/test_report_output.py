"""Files on disk and the command line."""

from __future__ import annotations

import csv
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from report_fixtures import CORRECT, N_TEST

from cfnsr.report import build_report, collect_runs, main, write_report


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
    md = paths["markdown"].read_text()
    assert "| CFN-SR |" in md and "failed: CUDA out of memory" in md
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
    printed = capsys.readouterr().out
    assert "| Model | Fusion stage |" in printed and "| CFN-SR | Model |" in printed
    assert (sweep / "report.md").stat().st_size > 0 and (sweep / "war_by_method.png").stat().st_size > 0


def test_cli_mixing_fails_and_split_succeeds(write_run, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_run("cfnsr", 1, 1, 190, protocol="paper").parents[1]
    write_run("cfnsr", 1, 1, 170, protocol="clean")
    out = tmp_path / "out"
    assert main([str(root), "--out", str(out)]) == 2
    assert "different protocol values" in capsys.readouterr().err
    assert not out.exists()
    assert main([str(root), "--out", str(out), "--split"]) == 0
    assert "## Protocol gap" in capsys.readouterr().out
    assert (out / "protocol_gap.csv").exists()


def test_cli_nothing_finished_returns_1(tmp_path: Path, write_run, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_run("cfnsr", 1, 1, 100, status="running").parents[1]
    assert main([str(root), "--out", str(tmp_path / "o")]) == 1
    assert "No finished runs" in capsys.readouterr().out
    assert "running" in (tmp_path / "o" / "report.md").read_text()


def test_python_dash_m(sweep: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cfnsr.report", str(sweep), "--out", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "| CFN-SR |" in proc.stdout and (tmp_path / "m" / "report.csv").exists()


def test_cli_missing_input_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
