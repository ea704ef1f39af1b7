"""Write a report to disk: ``report.md``, ``report.csv`` (+ ``protocol_gap.csv``) and the PNG figures."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from cfnsr.report.build import GroupTable, Report
from cfnsr.report.figures import plot_confusion, plot_diagnostics, plot_war_by_method
from cfnsr.report.markdown import format_markdown
from cfnsr.report.rows import FusionRow


def _num(x: float | None, digits: int = 4) -> str:
    # Empty cell, not "nan", so spreadsheets and pandas read a missing value.
    return "" if x is None else f"{x:.{digits}f}"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)


def csv_rows(report: Report) -> tuple[list[str], list[dict[str, Any]]]:
    """One row per table row (fusion, fusion config, initialisation) per table; accuracies in percent; per-fold WAR
    as ``war_fold_<k>`` columns. ``table`` is the table's title, ``recipe_hash`` the hash of the recipe its runs share
    (empty: not recorded), ``row`` the row's label and ``row_variant`` the keys naming it among rows of its fusion."""
    folds = sorted({f for g in report.groups for r in g.rows for f in r.per_fold_war})
    header = [
        "table", "recipe_hash", "protocol", "dataset", "backbone", "selection", "fusion", "model", "row", "row_variant",
        "fusion_stage", "effective_batch", "init_provenance", "init_runs", "code_versions", "mixed_code_versions",
        "n_runs", "n_folds", "n_seeds", "folds", "seeds",
        "war_mean", "war_std", "uar_mean", "uar_std", "f1_mean", "f1_std",
        "last_war_mean", "last_war_std", "n_last",
        "params", "gflops", "paper_accuracy", "paper_params",
        "vs_cfnsr_reference", "vs_cfnsr_n", "vs_cfnsr_mean_diff", "vs_cfnsr_t_p", "vs_cfnsr_wilcoxon_p", "vs_cfnsr_min_wilcoxon_p",
        *(f"war_fold_{f}" for f in folds),
    ]  # fmt: skip
    rows = []
    for g in report.groups:
        for r in g.rows:
            row = _csv_row(g, r)
            for f in folds:
                row[f"war_fold_{f}"] = _num(r.per_fold_war.get(f))
            rows.append(row)
    return header, rows


def _csv_row(g: GroupTable, r: FusionRow) -> dict[str, Any]:
    """The columns of one table row, without the per-fold WAR (see csv_rows)."""
    c = r.comparison or {}
    return {
        "table": g.title,
        "recipe_hash": g.recipe_hash or "",
        "protocol": g.protocol,
        "dataset": g.dataset,
        "backbone": g.backbone,
        "selection": g.selection,
        "fusion": r.fusion,
        "model": r.model,
        "row": r.label,
        "row_variant": " ".join(r.variant),
        "fusion_stage": r.stage,
        "effective_batch": "" if r.effective_batch is None else r.effective_batch,
        "init_provenance": r.init_provenance or "",
        "init_runs": " ".join(r.init_runs),
        "code_versions": " ".join(r.code_versions),
        "mixed_code_versions": r.mixed_code_versions,
        "n_runs": r.n_runs,
        "n_folds": len(r.folds),
        "n_seeds": len(r.seeds),
        "folds": " ".join(map(str, r.folds)),
        "seeds": " ".join(map(str, r.seeds)),
        "war_mean": _num(r.war_mean),
        "war_std": _num(r.war_std),
        "uar_mean": _num(r.uar_mean),
        "uar_std": _num(r.uar_std),
        "f1_mean": _num(r.f1_mean),
        "f1_std": _num(r.f1_std),
        "last_war_mean": _num(r.last_war_mean),
        "last_war_std": _num(r.last_war_std),
        "n_last": r.n_last,
        "params": " ".join(map(str, r.params)),
        "gflops": " ".join(f"{x:g}" for x in r.gflops),
        "paper_accuracy": "" if r.paper_accuracy is None else r.paper_accuracy,
        "paper_params": r.paper_params or "",
        "vs_cfnsr_reference": c.get("reference", ""),
        "vs_cfnsr_n": c.get("n", ""),
        "vs_cfnsr_mean_diff": _num(c.get("mean_diff")),
        "vs_cfnsr_t_p": _num(c.get("t_p"), 6),
        "vs_cfnsr_wilcoxon_p": _num(c.get("wilcoxon_p"), 6),
        "vs_cfnsr_min_wilcoxon_p": _num(c.get("min_wilcoxon_p"), 6),
    }


def _write_csv(path: Path, header: list[str], rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    return path


def _gap_rows(report: Report) -> tuple[list[str], list[dict[str, Any]]]:
    header = ["table", "dataset", "backbone", "fusion", "model", "row", "paper_war", "clean_war", "last_war_paper_runs",
              "last_war_clean_runs", "paper_minus_clean", "paper_minus_last", "n_paper", "n_clean"]  # fmt: skip
    rows = [
        {
            "table": gap.title,
            "dataset": gap.dataset,
            "backbone": gap.backbone,
            "fusion": g.fusion,
            "model": g.model,
            "row": g.label,
            "paper_war": _num(g.paper_war),
            "clean_war": _num(g.clean_war),
            "last_war_paper_runs": _num(g.last_war),
            "last_war_clean_runs": _num(g.clean_last_war),
            "paper_minus_clean": _num(g.paper_minus_clean),
            "paper_minus_last": _num(g.paper_minus_last),
            "n_paper": g.n_paper,
            "n_clean": g.n_clean,
        }
        for gap in report.gaps
        for g in gap.rows
    ]
    return header, rows


def confusion_names(groups: list[GroupTable]) -> dict[tuple[int, int], str]:
    """File stem per (group index, row index): ``confusion_<fusion>``, plus ``_<protocol>_<dataset>_<backbone>`` with
    several groups, plus the table's recipe hash (or ``norecipe``) when groups share that triple, plus the row
    recipe's hash when a fusion has several rows in one table; a counter only if a name would still repeat."""
    several = len(groups) > 1
    triples: dict[tuple, int] = {}
    for g in groups:
        triples[g.key] = triples.get(g.key, 0) + 1
    names: dict[tuple[int, int], str] = {}
    used: set[str] = set()
    for gi, g in enumerate(groups):
        for ri, r in enumerate(g.rows):
            name = f"confusion_{r.fusion}"
            if several:
                name += f"_{g.protocol}_{g.dataset}_{g.backbone}"
            if triples[g.key] > 1:
                name += f"_{g.recipe_hash or 'norecipe'}"
            if len(g.rows_for(r.fusion)) > 1 and len(r.row_key) > 1 and r.row_key[1]:
                name += f"_{r.row_key[1]}"
            name = _safe(name)
            base, k = name, 2
            while name in used:
                name, k = f"{base}_{k}", k + 1
            used.add(name)
            names[(gi, ri)] = name
    return names


def write_report(report: Report, out_dir: str | Path) -> dict[str, Path]:
    """Write every output into ``out_dir``; return {name: path}.

    Names: ``markdown``, ``csv``, ``protocol_gap_csv`` (split reports with both protocols), ``war_by_method``,
    ``fusion_diagnostics`` (``_<k>`` per table when there are several; only tables with ``by_interaction``) and
    one confusion matrix per row, named by :func:`confusion_names` (``confusion_<fusion>``, with the table's
    protocol, dataset and backbone appended when there are several tables)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    md = out / "report.md"
    md.write_text(format_markdown(report))
    written["markdown"] = md
    written["csv"] = _write_csv(out / "report.csv", *csv_rows(report))
    if report.gaps:
        written["protocol_gap_csv"] = _write_csv(out / "protocol_gap.csv", *_gap_rows(report))
    written["war_by_method"] = plot_war_by_method(report.groups, out / "war_by_method.png")
    several = len(report.groups) > 1
    for gi, g in enumerate(report.groups):  # only tables whose runs recorded per-interaction accuracy
        name = "fusion_diagnostics" + (f"_{gi + 1}" if several else "")
        figure = plot_diagnostics(g, out / f"{name}.png")
        if figure is not None:
            written[name] = figure
    names = confusion_names(report.groups)
    for gi, g in enumerate(report.groups):
        for ri, r in enumerate(g.rows):
            if r.confusion is None:
                continue
            name = names[(gi, ri)]
            title = f"{r.label}: {r.n_runs} run(s) summed" + (f"\n{g.title}" if several else "")
            written[name] = plot_confusion(r.confusion, title, out / f"{name}.png", g.class_names)
    return written
