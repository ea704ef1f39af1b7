"""Rebuild the comparison table(s) of a sweep from its per-run ``metrics.json`` files.

API::

    runs, skipped = collect_runs([multirun_dir])          # finished runs + skipped files with reasons
    report = build_report(runs, split=False, skipped=skipped)  # ReportError on mixed protocol/dataset/backbone
    paths = write_report(report, out_dir)                 # report.md, report.csv, war_by_method.png, confusion_*.png
    print(format_markdown(report))
    paired_comparison({fold: war}, {fold: war})           # method vs reference over shared folds

CLI: ``python -m cfnsr.report <dir> [<dir> ...] [--out DIR] [--split]``.
"""

from cfnsr.report.build import (
    FUSION_ORDER,
    MODEL_NAMES,
    FusionRow,
    GapRow,
    GapTable,
    GroupTable,
    Report,
    ReportError,
    build_report,
)
from cfnsr.report.cli import main
from cfnsr.report.collect import Run, Skipped, collect_runs
from cfnsr.report.markdown import format_markdown
from cfnsr.report.stats import paired_comparison
from cfnsr.report.write import write_report

__all__ = [
    "FUSION_ORDER",
    "MODEL_NAMES",
    "FusionRow",
    "GapRow",
    "GapTable",
    "GroupTable",
    "Report",
    "ReportError",
    "Run",
    "Skipped",
    "build_report",
    "collect_runs",
    "format_markdown",
    "main",
    "paired_comparison",
    "write_report",
]
