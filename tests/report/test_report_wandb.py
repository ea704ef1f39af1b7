"""``python -m cfnsr.report <sweep> --wandb``: the same rows as report.csv, as wandb Tables in one offline run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from wandb_files import read_run

from cfnsr.report.cli import main


def test_report_run_holds_the_report_tables(sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    out = tmp_path / "report"
    assert main([str(sweep), "--out", str(out), "--wandb"]) == 0
    (run_dir,) = (out / "wandb").glob("offline-run-*")
    run = read_run(run_dir)
    assert run["job_type"] == "report" and run["name"] == "report-report"

    with (out / "report.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    tables = {p.name.split("_")[0]: json.loads(p.read_text())
              for p in (run_dir / "files" / "media" / "table").glob("*.table.json")}
    assert {"csv", "paired"} <= set(tables), sorted(tables)
    comparison = tables["csv"]
    assert len(comparison["data"]) == len(rows) == 3  # cfnsr, msaf, averaging
    col = comparison["columns"].index("war_mean")
    assert sorted(r[col] for r in comparison["data"]) == sorted(r["war_mean"] for r in rows)
    paired = tables["paired"]
    assert "vs_cfnsr_wilcoxon_p" in paired["columns"] and len(paired["data"]) == 3
    assert any(k.startswith("figures/") for row in run["history"] for k in row)
