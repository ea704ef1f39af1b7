"""Render a :class:`~cfnsr.report.build.Report` as Markdown (tables, paired tests, protocol gap, skipped runs)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from cfnsr.report.build import GroupTable, Report
from cfnsr.report.collect import DUPLICATE_RULE, Run, SearchTrial, decision_time, duplicate_basis
from cfnsr.report.diagnostics import format_diagnostics
from cfnsr.report.protocol_gap import GapTable
from cfnsr.report.rows import FusionRow, model_name
from cfnsr.report.stats import limits_note

DASH = "–"


def fmt_pct(x: float | None) -> str:
    return DASH if x is None else f"{x:.2f}"


def fmt_signed(x: float | None) -> str:
    return DASH if x is None else f"{x:+.2f}"


def fmt_mean_std(mean: float | None, std: float | None, n: int | None = None) -> str:
    if mean is None:
        return DASH
    if std is None:
        return f"{mean:.2f} (n={n})" if n is not None else f"{mean:.2f}"
    return f"{mean:.2f} ± {std:.2f}"


def fmt_p(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.4g}"


def fmt_params(params: Sequence[int]) -> str:
    """Millions with 2 decimals, like the paper's table (26.30M)."""
    if not params:
        return DASH
    vals = [f"{p / 1e6:.2f}M" for p in (params[0], params[-1])]
    return vals[0] if vals[0] == vals[1] else f"{vals[0]}–{vals[1]}"


def fmt_gflops(gflops: Sequence[float]) -> str:
    if not gflops:
        return DASH
    return f"{gflops[0]:.2f}" if len(gflops) == 1 else f"{gflops[0]:.2f}–{gflops[-1]:.2f}"


def fmt_per_fold(per_fold: dict[int, float]) -> str:
    return ", ".join(f"{f}: {w:.2f}" for f, w in per_fold.items()) or DASH


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "|" + "|".join("---" for _ in header) + "|", *(line(r) for r in rows)])


def war_label(group: GroupTable) -> str:
    return f"WAR (%), {group.selection}: mean ± std"


def main_table(group: GroupTable) -> str:
    """The comparison table of one group, one row per (fusion, fusion config, initialisation) in paper order."""
    header = [
        "Model",
        "Fusion stage",
        "Runs",
        war_label(group),
        "UAR (%)",
        "macro-F1 (%)",
        "per-fold WAR (%)",
        "last-epoch WAR (%)",
        "#Params",
        "GFLOPs",
        "paper's accuracy (%)",
        "paper's #Params",
    ]
    rows = [_row_cells(r) for r in group.rows]
    return _table(header, rows)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# Marks a row whose runs were made by more than one code version (explained in the table's notes).
MIXED_CODE_MARK = " [mixed code versions]"


def _row_cells(r: FusionRow) -> list[str]:
    return [
        r.label + (MIXED_CODE_MARK if r.mixed_code_versions else ""),
        r.stage,
        f"{r.n_runs} ({_plural(len(r.folds), 'fold')} × {_plural(len(r.seeds), 'seed')})",
        fmt_mean_std(r.war_mean, r.war_std, r.n_runs),
        fmt_mean_std(r.uar_mean, r.uar_std, r.n_runs),
        fmt_mean_std(r.f1_mean, r.f1_std, r.n_runs),
        fmt_per_fold(r.per_fold_war),
        fmt_mean_std(r.last_war_mean, r.last_war_std, r.n_last),
        fmt_params(r.params),
        fmt_gflops(r.gflops),
        fmt_pct(r.paper_accuracy),
        r.paper_params or DASH,
    ]


def comparison_table(group: GroupTable) -> str:
    header = [
        "Method",
        "against",
        "shared folds (n)",
        "mean ΔWAR vs CFN-SR (points)",
        "per-fold Δ",
        "paired t-test p",
        "Wilcoxon exact p",
        "note",
    ]
    rows = []
    for r in group.rows:
        c = r.comparison
        if c is None:
            continue
        rows.append(
            [
                r.label,
                c.get("reference", "CFN-SR"),
                f"{', '.join(map(str, c['folds'])) or DASH} ({c['n']})",
                fmt_signed(c["mean_diff"]),
                ", ".join(f"{d:+.2f}" for d in c["diffs"]) or DASH,
                fmt_p(c["t_p"]),
                fmt_p(c["wilcoxon_p"]),
                c["note"] or "",
            ]
        )
    return _table(header, rows)


def gap_table(gap: GapTable) -> str:
    header = [
        "Model",
        "paper protocol WAR (best test epoch)",
        "clean protocol WAR (best val epoch, tested once)",
        "last-epoch test WAR (paper-protocol runs)",
        "paper − clean",
        "paper − last",
        "runs (paper / clean)",
    ]
    rows = [
        [
            g.label,
            fmt_pct(g.paper_war),
            fmt_pct(g.clean_war),
            fmt_pct(g.last_war),
            fmt_signed(g.paper_minus_clean),
            fmt_signed(g.paper_minus_last),
            f"{g.n_paper} / {g.n_clean}",
        ]
        for g in gap.rows
    ]
    return _table(header, rows)


PAPER_NOTE = (
    "paper's accuracy / #Params come from the runs' records (docs/paper-facts.md#comparison-table). They are best-test-epoch numbers: "
    "Averaging to MSAF are MSAF's 6-fold results, CFN-SR's is 5-fold (actors 21–24 never tested), the unimodal "
    "accuracies are recollections."
)
GAP_NOTE = (
    "All values are WAR in %, differences in points. Choosing the epoch on the test fold (paper protocol) inflates "
    "the score: 'paper − last' is the gain from picking the best test epoch over just taking the last epoch of the "
    "same runs; 'paper − clean' is the gap to choosing the epoch on a validation split and testing once."
)


def format_group(group: GroupTable, heading: str = "##") -> str:
    parts = [
        f"{heading} Results: {group.title}",
        "",
        f"WAR = test-fold accuracy (weighted average recall) at the {group.selection}. "
        "Mean ± sample std (ddof=1) over all (fold, seed) runs; per-fold WAR = mean over seeds. "
        "UAR = unweighted average recall; last-epoch WAR = the last epoch's weights on the test fold.",
        "",
        main_table(group),
    ]
    if any(r.paper_accuracy is not None or r.paper_params for r in group.rows):
        parts += ["", PAPER_NOTE]
    if group.has_comparison:
        ns = [r.comparison["n"] for r in group.rows if r.comparison is not None]
        parts += ["", f"{heading}# Paired comparison against CFN-SR", "", comparison_table(group), "", limits_note(ns)]
    diagnostics = format_diagnostics(group, heading)
    if diagnostics:
        parts += ["", diagnostics]
    if group.notes:
        parts += ["", "Notes:", *(f"- {n}" for n in group.notes)]
    return "\n".join(parts)


def _when(run: Run) -> str:
    if run.finished_at is not None and decision_time(run)[1] == "finished_at":
        text = f"finished_at {run.finished_at}"
    else:
        stamp = datetime.fromtimestamp(run.mtime, tz=timezone.utc).isoformat(timespec="seconds")
        text = f"no finished_at, file mtime {stamp}"
    if run.run_id:
        text += f", run_id {run.run_id}"
    if run.overrides is not None:
        text += f", overrides: {' '.join(run.overrides) or '(none)'}"
    return text


def format_duplicate(dropped: Run, kept: Run) -> str:
    """One line per dropped duplicate: which run, which was kept instead, and what decided it."""
    basis = duplicate_basis(dropped, kept)
    decided = (
        "decided by finished_at"
        if basis == "finished_at"
        else "decided by file mtime, because a record lacks finished_at: copying or touching files changes this"
    )
    return (
        f"- dropped `{dropped.path}` ({_when(dropped)}); kept `{kept.path}` ({_when(kept)}): {model_name(kept.fusion, kept.record.get('fusion_display'), kept.record.get('backbone'), kept.record.get('fusion_stage'))}, "
        f"fold {kept.fold}, seed {kept.seed}; {decided}"
    )


def format_markdown(report: Report) -> str:
    """The whole report: one section per group, protocol-gap tables, skipped and duplicate runs, notes."""
    parts = ["# cfnsr report", ""]
    parts += [f"- {n}" for n in report.notes]
    if report.notes:
        parts.append("")
    for g in report.groups:
        parts += [format_group(g), ""]
    for gap in report.gaps:
        parts += [f"## Protocol gap: {gap.title}", "", gap_table(gap), "", GAP_NOTE, ""]
    if report.duplicates:
        parts += ["## Duplicate runs (same table, row, fold and seed)", "", DUPLICATE_RULE, ""]
        parts += [format_duplicate(dropped, kept) for dropped, kept in report.duplicates]
        parts.append("")
    trials = [s for s in report.skipped if isinstance(s, SearchTrial)]
    if trials:
        parts += [format_trials(trials), ""]
    skipped = [s for s in report.skipped if not isinstance(s, SearchTrial)]
    parts += [f"## Skipped runs ({len(skipped)})", ""]
    parts += [f"- `{s.path}`: {s.reason}" for s in skipped] or ["- none"]
    return "\n".join(parts).rstrip() + "\n"


TRIALS_NOTE = (
    "Hyperparameter-search trials are not in the comparison: each validated on a block of its outer fold's training "
    "actors (protocol=search) and never tested. Runs trained with a search's chosen settings are in the tables, "
    "with a note saying how their hyperparameters were chosen."
)


def format_trials(trials: Sequence[SearchTrial]) -> str:
    """One table per study: trial, status, objective, validation actors, folder."""
    parts = [f"## Hyperparameter-search trials ({len(trials)}, not in the comparison)", "", TRIALS_NOTE]
    by_study: dict[str, list[SearchTrial]] = {}
    for t in trials:
        by_study.setdefault(t.study, []).append(t)
    for study, items in sorted(by_study.items()):
        items = sorted(items, key=lambda t: (t.trial is None, t.trial or 0))
        first = items[0].record
        parts += ["", f"Study `{study}` (fusion {first.get('fusion')}, outer fold {first.get('fold')}, test actors "
                      f"{first.get('test_actors')} unused):", ""]
        rows = [[str(t.trial), str(t.record.get("status")),
                 "–" if t.objective is None else f"{100 * float(t.objective):.2f}",
                 str(t.record.get("val_actors")), f"`{t.path.parent.name}`"] for t in items]
        parts.append(_table(["trial", "status", "objective (val WAR %)", "validation actors", "folder"], rows))
    return "\n".join(parts)
