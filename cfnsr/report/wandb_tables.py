"""``python -m cfnsr.report <sweep> --wandb``: the report's tables as wandb Tables in one report run, so the
dashboard shows the same same-recipe rows, paired tests and diagnostics as ``report.md``.

Every CSV the report wrote (``report.csv``: one row per fusion row of each table; ``protocol_gap.csv``; any further
tables such as the fusion diagnostics) becomes a Table of the same name; ``paired_tests`` holds the paired
comparison columns of ``report.csv``; the figures are logged as images. Offline unless ``WANDB_MODE`` says
otherwise (``wandb sync <out>/wandb/offline-run-*`` uploads it).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PAIRED = ("table", "recipe_hash", "row", "vs_cfnsr_reference", "vs_cfnsr_n", "vs_cfnsr_mean_diff", "vs_cfnsr_t_p",
          "vs_cfnsr_wilcoxon_p", "vs_cfnsr_min_wilcoxon_p")


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    return (rows[0], rows[1:]) if rows else ([], [])


def log_report(written: Mapping[str, Path], out_dir: Path, project: str, name: str) -> str:
    """Log the report files in ``written`` ({name: path}, from ``write_report``) as one wandb run; its run
    folder."""
    import wandb

    run = wandb.init(project=project, dir=str(out_dir), name=name, job_type="report", group="reports",
                     mode=os.environ.get("WANDB_MODE", "offline"), config={"report_dir": str(out_dir)})
    logged: dict[str, Any] = {}
    for key, path in written.items():
        path = Path(path)
        if path.suffix == ".csv":
            header, rows = _read_csv(path)
            logged[key] = wandb.Table(columns=header, data=rows)
            if key == "csv":
                cols = [header.index(c) for c in PAIRED if c in header]
                logged["paired_tests"] = wandb.Table(columns=[header[i] for i in cols],
                                                     data=[[r[i] for i in cols] for r in rows])
        elif path.suffix == ".png":
            logged[f"figures/{key}"] = wandb.Image(str(path))
    run.log(logged)
    folder = run.dir
    run.finish()
    wandb.teardown()  # the report command ends here: let wandb's service write the whole run file first
    return str(Path(folder).parent)
