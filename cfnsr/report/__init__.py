"""Rebuild the comparison table(s) of a sweep from its per-run ``metrics.json`` files.

API::

    runs, skipped = collect_runs([multirun_dir])          # finished runs + skipped files with reasons
    report = build_report(runs, split=False, skipped=skipped)  # ReportError on mixed protocol/dataset/backbone
    report.recipe_hint                                    # one line when differing recipes split a triple's tables
    paths = write_report(report, out_dir)                 # report.md, report.csv, war_by_method.png, confusion_*.png
    print(format_markdown(report))
    paired_comparison({fold: war}, {fold: war})           # method vs reference over shared folds

CLI: ``python -m cfnsr.report <dir> [<dir> ...] [--out DIR] [--split]``.

Tables and rows come from each record's ``recipe`` (``cfnsr.runs.recipe.training_recipe`` of the run's config), never from
folder names: one table = runs whose recipes agree on every key but ``fusion.*`` and ``model.init.*``; one row = one
fusion with one fusion config and one initialisation (``TABLE_RULE``). Differing recipes always give separate,
labelled tables; mixing protocols, datasets or backbones additionally needs ``--split``. Records without a recipe
(older files) are grouped by (protocol, dataset, backbone) in tables labelled "recipe not recorded". Duplicates
(same table, row, fold and seed) are resolved by ``DUPLICATE_RULE``: latest ``finished_at``, then ``run_id``, then
path; file mtimes only for records without ``finished_at``. Hyperparameter-search trials (records with a ``search``
block) are never in the tables: they come back among the skipped files as ``SearchTrial`` entries and get their own
section; runs trained with a search's chosen settings (records with ``hparams``) are ordinary rows with a note.
"""

from cfnsr.report.build import TABLE_RULE, GroupTable, Report, ReportError, build_report
from cfnsr.report.cli import main
from cfnsr.report.collect import DUPLICATE_RULE, Run, SearchTrial, Skipped, collect_runs
from cfnsr.report.markdown import format_markdown
from cfnsr.report.protocol_gap import GapRow, GapTable
from cfnsr.report.rows import FusionRow, fusion_order, model_name
from cfnsr.report.stats import paired_comparison
from cfnsr.report.write import write_report

__all__ = [
    "DUPLICATE_RULE",
    "FusionRow",
    "GapRow",
    "GapTable",
    "GroupTable",
    "Report",
    "ReportError",
    "Run",
    "SearchTrial",
    "Skipped",
    "TABLE_RULE",
    "build_report",
    "collect_runs",
    "format_markdown",
    "fusion_order",
    "main",
    "model_name",
    "paired_comparison",
    "write_report",
]
