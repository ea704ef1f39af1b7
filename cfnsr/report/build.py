"""Turn finished runs into the comparison table(s): aggregation, grouping, paired tests and the protocol gap.

Everything here is pure data (no files, no plotting), so tests can check the numbers against hand computation.
Accuracies are stored in percent from here on: the records hold fractions, the tables show percent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cfnsr.report.collect import Run, Skipped, deduplicate
from cfnsr.report.stats import paired_comparison

# The paper's table order (paper-spec §6); anything else follows alphabetically.
FUSION_ORDER = (
    "video_only",
    "audio_only",
    "averaging",
    "multiplicative",
    "multiplication",
    "concat_fc",
    "mcbp",
    "mmtm",
    "msaf",
    "cfnsr",
)
MODEL_NAMES = {
    "video_only": "3D ResNeXt-50 (video only)",
    "audio_only": "1D CNN (audio only)",
    "averaging": "Averaging",
    "multiplicative": "Multiplicative",
    "multiplication": "Multiplication",
    "concat_fc": "Concat + FC",
    "mcbp": "MCBP",
    "mmtm": "MMTM",
    "msaf": "MSAF",
    "cfnsr": "CFN-SR",
}
REFERENCE_FUSION = "cfnsr"
DEFAULT_SELECTION = {
    "paper": "best test epoch (paper protocol)",
    "clean": "best validation epoch (clean protocol)",
}
GROUP_FIELDS = ("protocol", "dataset", "backbone")


class ReportError(ValueError):
    """The runs cannot go into one table as asked (e.g. mixed protocols without ``--split``)."""


def fusion_sort_key(name: str) -> tuple[int, str]:
    """Paper order first, then other fusion names alphabetically."""
    return (FUSION_ORDER.index(name), "") if name in FUSION_ORDER else (len(FUSION_ORDER), name)


def model_name(fusion: str) -> str:
    return MODEL_NAMES.get(fusion, fusion)


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample std (ddof=1); std is None for a single value, both None for none."""
    if not values:
        return None, None
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), (float(arr.std(ddof=1)) if arr.size > 1 else None)


def _pct(metrics: dict[str, Any] | None, key: str) -> float | None:
    if not isinstance(metrics, dict) or metrics.get(key) is None:
        return None
    return 100.0 * float(metrics[key])


@dataclass
class FusionRow:
    """One table row: a fusion strategy aggregated over all its (fold, seed) runs in one group."""

    fusion: str
    model: str
    stage: str
    runs: list[Run] = field(repr=False)
    n_runs: int
    folds: list[int]
    seeds: list[int]
    war_mean: float | None
    war_std: float | None
    uar_mean: float | None
    uar_std: float | None
    f1_mean: float | None
    f1_std: float | None
    last_war_mean: float | None
    last_war_std: float | None
    n_last: int
    per_fold_war: dict[int, float]  # fold -> mean WAR over that fold's seeds, in fold order
    per_fold_n: dict[int, int]
    params: list[int]  # distinct counts seen (normally one)
    gflops: list[float]
    paper_accuracy: float | None
    paper_params: str | None
    confusion: np.ndarray | None = field(default=None, repr=False)
    comparison: dict[str, Any] | None = None  # paired comparison against CFN-SR


@dataclass
class GroupTable:
    """All rows sharing one (protocol, dataset, backbone)."""

    protocol: str
    dataset: str
    backbone: str
    selection: str
    rows: list[FusionRow]
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.protocol, self.dataset, self.backbone)

    @property
    def title(self) -> str:
        return f"protocol={self.protocol}, dataset={self.dataset}, backbone={self.backbone}"

    @property
    def has_comparison(self) -> bool:
        return any(r.comparison is not None for r in self.rows)

    def row(self, fusion: str) -> FusionRow | None:
        return next((r for r in self.rows if r.fusion == fusion), None)


@dataclass
class GapRow:
    """Paper-protocol vs clean-protocol WAR for one fusion (percent; None where a side has no runs)."""

    fusion: str
    model: str
    paper_war: float | None  # best test epoch, paper-protocol runs
    clean_war: float | None  # best validation epoch, tested once, clean-protocol runs
    last_war: float | None  # last epoch on the test fold, paper-protocol runs (same training as paper_war)
    clean_last_war: float | None  # last epoch on the test fold, clean-protocol runs
    n_paper: int
    n_clean: int

    @property
    def paper_minus_clean(self) -> float | None:
        return None if self.paper_war is None or self.clean_war is None else self.paper_war - self.clean_war

    @property
    def paper_minus_last(self) -> float | None:
        return None if self.paper_war is None or self.last_war is None else self.paper_war - self.last_war


@dataclass
class GapTable:
    dataset: str
    backbone: str
    rows: list[GapRow]

    @property
    def title(self) -> str:
        return f"dataset={self.dataset}, backbone={self.backbone}"


@dataclass
class Report:
    groups: list[GroupTable]
    gaps: list[GapTable]
    skipped: list[Skipped]
    duplicates: list[tuple[Run, Run]]  # (dropped, kept instead)
    split: bool
    notes: list[str] = field(default_factory=list)


def _describe_runs(runs: Sequence[Run], limit: int = 4) -> str:
    names = [str(r.run_dir) for r in runs[:limit]]
    more = f", ... and {len(runs) - limit} more" if len(runs) > limit else ""
    return ", ".join(names) + more


def check_homogeneous(runs: Sequence[Run]) -> None:
    """Raise :class:`ReportError` naming every conflicting field, its values and example runs of each."""
    problems: list[str] = []
    for fld in GROUP_FIELDS:
        by_value: dict[str, list[Run]] = defaultdict(list)
        for r in runs:
            by_value[str(r.record[fld])].append(r)
        if len(by_value) > 1:
            parts = [f"{v!r} ({len(rs)} run(s): {_describe_runs(rs)})" for v, rs in sorted(by_value.items())]
            problems.append(f"different {fld} values: " + "; ".join(parts))
    if problems:
        raise ReportError(
            "refusing to put runs of different protocol/dataset/backbone in one table:\n  - "
            + "\n  - ".join(problems)
            + "\nPass --split (build_report(..., split=True)) for one table per (protocol, dataset, backbone)."
        )


def _first(runs: Iterable[Run], key: str) -> Any:
    return next((r.record[key] for r in runs if r.record.get(key) is not None), None)


def _sum_confusion(runs: Sequence[Run]) -> np.ndarray | None:
    mats = [
        np.asarray(r.record["test"]["confusion"], dtype=np.int64) for r in runs if r.record["test"].get("confusion")
    ]
    shapes = {m.shape for m in mats}
    if not mats or len(shapes) != 1:
        return None
    return np.sum(mats, axis=0)


def aggregate_fusion(fusion: str, runs: Sequence[Run]) -> FusionRow:
    """Mean ± sample std over all (fold, seed) runs; per-fold WAR as the mean over that fold's seeds."""
    runs = sorted(runs, key=lambda r: (r.fold, r.seed))
    war = [_pct(r.record["test"], "war") for r in runs]
    by_fold: dict[int, list[float]] = defaultdict(list)
    for r, w in zip(runs, war, strict=True):
        by_fold[r.fold].append(w)
    last = [v for v in (_pct(r.record.get("test_last"), "war") for r in runs) if v is not None]
    war_mean, war_std = _mean_std(war)
    uar_mean, uar_std = _mean_std([_pct(r.record["test"], "uar") for r in runs])
    f1_mean, f1_std = _mean_std([_pct(r.record["test"], "f1") for r in runs])
    last_mean, last_std = _mean_std(last)
    paper = _first(runs, "paper") or {}
    return FusionRow(
        fusion=fusion,
        model=model_name(fusion),
        stage=str(_first(runs, "fusion_stage") or "–"),
        runs=list(runs),
        n_runs=len(runs),
        folds=sorted(by_fold),
        seeds=sorted({r.seed for r in runs}),
        war_mean=war_mean,
        war_std=war_std,
        uar_mean=uar_mean,
        uar_std=uar_std,
        f1_mean=f1_mean,
        f1_std=f1_std,
        last_war_mean=last_mean,
        last_war_std=last_std,
        n_last=len(last),
        per_fold_war={f: float(np.mean(v)) for f, v in sorted(by_fold.items())},
        per_fold_n={f: len(v) for f, v in sorted(by_fold.items())},
        params=sorted({int(r.record["params"]) for r in runs if r.record.get("params") is not None}),
        gflops=sorted({float(r.record["gflops"]) for r in runs if r.record.get("gflops") is not None}),
        paper_accuracy=paper.get("accuracy"),
        paper_params=paper.get("params"),
        confusion=_sum_confusion(runs),
    )


def _group_notes(rows: Sequence[FusionRow], runs: Sequence[Run]) -> list[str]:
    """Warnings about things that make the rows not directly comparable."""
    notes: list[str] = []
    fold_sets = {tuple(r.folds) for r in rows}
    if len(fold_sets) > 1:
        desc = "; ".join(f"{r.model}: {', '.join(map(str, r.folds))}" for r in rows)
        notes.append(f"Methods cover different folds, so their means are over different test actors ({desc}).")
    for r in rows:
        if len(set(r.per_fold_n.values())) > 1:
            counts = ", ".join(f"fold {f}: {n}" for f, n in r.per_fold_n.items())
            notes.append(f"{r.model}: unequal runs per fold ({counts}); the overall mean weights folds unequally.")
        if len(r.params) > 1:
            notes.append(f"{r.model}: runs report different #Params {r.params}.")
        if r.n_last and r.n_last < r.n_runs:
            notes.append(f"{r.model}: last-epoch WAR from {r.n_last} of {r.n_runs} runs (others lack test_last).")
    schemes = sorted({str(r.record.get("folds")) for r in runs})
    if len(schemes) > 1:
        notes.append(f"Runs use different fold schemes ({', '.join(schemes)}); same fold numbers may differ in actors.")
    actors: dict[int, set[tuple]] = defaultdict(set)
    for r in runs:
        if r.record.get("test_actors") is not None:
            actors[r.fold].add(tuple(r.record["test_actors"]))
    clash = sorted(f for f, s in actors.items() if len(s) > 1)
    if clash:
        notes.append(f"Fold(s) {clash} have different test actors across runs; paired comparisons mix test sets.")
    return notes


def build_group(runs: Sequence[Run]) -> GroupTable:
    """One table from runs already known to share (protocol, dataset, backbone)."""
    check_homogeneous(runs)
    by_fusion: dict[str, list[Run]] = defaultdict(list)
    for r in runs:
        by_fusion[r.fusion].append(r)
    rows = [aggregate_fusion(f, by_fusion[f]) for f in sorted(by_fusion, key=fusion_sort_key)]
    ref = next((r for r in rows if r.fusion == REFERENCE_FUSION), None)
    if ref is not None:
        for row in rows:
            if row is not ref:
                row.comparison = paired_comparison(row.per_fold_war, ref.per_fold_war)
    protocol, dataset, backbone = runs[0].group_key
    selections = sorted({str(r.record.get("selection") or DEFAULT_SELECTION.get(protocol, protocol)) for r in runs})
    return GroupTable(
        protocol=protocol,
        dataset=dataset,
        backbone=backbone,
        selection=" / ".join(selections),
        rows=rows,
        notes=_group_notes(rows, runs),
    )


def build_gap(paper: GroupTable, clean: GroupTable) -> GapTable:
    """Per fusion: paper-protocol WAR vs clean-protocol WAR vs last-epoch test WAR."""
    fusions = sorted({r.fusion for r in paper.rows} | {r.fusion for r in clean.rows}, key=fusion_sort_key)
    rows = []
    for f in fusions:
        p, c = paper.row(f), clean.row(f)
        rows.append(
            GapRow(
                fusion=f,
                model=model_name(f),
                paper_war=p.war_mean if p else None,
                clean_war=c.war_mean if c else None,
                last_war=p.last_war_mean if p else None,
                clean_last_war=c.last_war_mean if c else None,
                n_paper=p.n_runs if p else 0,
                n_clean=c.n_runs if c else 0,
            )
        )
    return GapTable(dataset=paper.dataset, backbone=paper.backbone, rows=rows)


def build_report(runs: Sequence[Run], split: bool = False, skipped: Sequence[Skipped] = ()) -> Report:
    """Build the table(s) from finished runs.

    Duplicates (same protocol, dataset, backbone, fusion, fold, seed) keep the newest file by mtime. Without
    ``split``, runs of different protocol/dataset/backbone raise :class:`ReportError`; with it, there is one table
    per group, plus a protocol-gap table for every (dataset, backbone) that has both the paper and clean protocols.
    """
    kept, dropped = deduplicate(runs)
    notes: list[str] = []
    if not kept:
        notes.append("No finished runs found.")
        return Report(groups=[], gaps=[], skipped=list(skipped), duplicates=dropped, split=split, notes=notes)
    if not split:
        check_homogeneous(kept)
    by_group: dict[tuple[str, str, str], list[Run]] = defaultdict(list)
    for r in kept:
        by_group[r.group_key].append(r)
    groups = [build_group(by_group[k]) for k in sorted(by_group)]
    gaps = []
    by_key = {g.key: g for g in groups}
    for dataset, backbone in sorted({(g.dataset, g.backbone) for g in groups}):
        paper, clean = by_key.get(("paper", dataset, backbone)), by_key.get(("clean", dataset, backbone))
        if paper and clean:
            gaps.append(build_gap(paper, clean))
    return Report(groups=groups, gaps=gaps, skipped=list(skipped), duplicates=dropped, split=split, notes=notes)
