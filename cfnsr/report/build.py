"""Turn finished runs into the comparison table(s): aggregation, grouping, paired tests and the protocol gap.

Tables and rows are formed from each record's training recipe (:mod:`cfnsr.runs.recipe`), see :data:`TABLE_RULE`; records
written without a recipe are grouped by (protocol, dataset, backbone) in their own tables. Nothing here looks at
folder names. Everything is pure data (no files, no plotting), so tests can check the numbers against hand
computation. Accuracies are stored in percent from here on: the records hold fractions, the tables show percent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cfnsr.models.fusion.registry import fusion_registry
from cfnsr.report.collect import Run, Skipped, deduplicate
from cfnsr.report.stats import paired_comparison
from cfnsr.runs.recipe import canonical_json, format_value, matches_prefix, recipe_hash

REFERENCE_FUSION = "cfnsr"
DEFAULT_SELECTION = {
    "paper": "best test epoch (paper protocol)",
    "clean": "best validation epoch (clean protocol)",
}
GROUP_FIELDS = ("protocol", "dataset", "backbone")
# Recipe settings summarised under every table (when recorded); the full recipe is in each run's metrics.json.
HEADLINE_KEYS = (
    "trainer.max_epochs",
    "optimizer._target_",
    "optimizer.lr",
    "optimizer.weight_decay",
    "data.batch_size",
    "trainer.precision",
)
NO_RECIPE_LABEL = "recipe not recorded"
NO_RECIPE_NOTE = (
    "Recipe not recorded: these runs' metrics.json files were written before the training recipe was stored, so "
    "they are grouped by (protocol, dataset, backbone) alone, as reports used to do; runs trained with different "
    "epochs, optimiser, batch size, augmentation, ... cannot be told apart here and may share a row."
)
TABLE_RULE = (
    "One table = runs whose training recipes (cfnsr.runs.recipe) agree on every key except fusion.* and model.init.*; "
    "within a table one row = one fusion strategy with one fusion config and one initialisation. Runs whose "
    "recipes differ in any other key are in separate tables, labelled with the differing keys."
)


class ReportError(ValueError):
    """The runs cannot go into one table as asked (e.g. mixed protocols without ``--split``)."""


# A fusion's display name and table position come from its YAML (``display``, ``order``): from its run records,
# which copy them at training time (so a fusion from an extra config folder keeps them), else from conf/fusion.


def fusion_order() -> tuple[str, ...]:
    """The fusions of ``conf/fusion`` in table order."""
    return tuple(fusion_registry())


def fusion_sort_key(name: str, order: float | None = None) -> tuple[float, str]:
    """``order`` (else the YAML's), then the name; fusions without an order follow the ordered ones."""
    if order is None:
        facts = fusion_registry().get(name)
        order = facts.order if facts else float("inf")
    return (order, name)


# A unimodal row is named after its network; the YAML's display name ("3D ResNeXt-50 (video only)") is the paper's
# backbone, so a run on another backbone config says which one instead.
PAPER_BACKBONE = "paper"


def model_name(fusion: str, display: str | None = None, backbone: str | None = None,
               stage: str | None = None) -> str:
    """The row label of a fusion: ``display`` (else the YAML's ``display``), else its name; for a unimodal run
    on a backbone other than the paper's, e.g. "tiny backbone (video only)"."""
    facts = fusion_registry().get(fusion)
    stage = stage or (facts.stage if facts else None)
    if stage == "Unimodal" and backbone is not None and backbone != PAPER_BACKBONE:
        return f"{backbone} backbone ({fusion.replace('_', ' ')})"
    if display:
        return display
    facts = fusion_registry().get(fusion)
    return facts.display if facts else fusion


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


def differing_keys(recipes: Sequence[dict[str, Any] | None]) -> list[str]:
    """Keys whose value is not the same in every given recipe (a missing key differs from any value); None entries
    (no recorded recipe) are skipped."""
    present = [r for r in recipes if r is not None]
    if len(present) < 2:
        return []
    keys = sorted(set().union(*present))
    return [k for k in keys if len({canonical_json({"v": r[k]}) if k in r else None for r in present}) > 1]


def describe(recipe: dict[str, Any] | None, keys: Sequence[str]) -> str:
    """``"k1=v1, k2=v2"`` for the given keys of a recipe, ``k=(absent)`` for keys it lacks."""
    recipe = recipe or {}
    return ", ".join(f"{k}={format_value(recipe[k]) if k in recipe else '(absent)'}" for k in keys)


@dataclass
class FusionRow:
    """One table row: one fusion strategy with one fusion config and one initialisation, aggregated over all its
    (fold, seed) runs in one table."""

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
    comparison: dict[str, Any] | None = None  # paired comparison against CFN-SR ("reference": its row label)
    row_key: tuple = ()  # (fusion, hash of the row recipe or None without a recorded recipe)
    recipe: dict[str, Any] = field(default_factory=dict, repr=False)  # fusion.* and model.init.* recipe keys
    variant: list[str] = field(default_factory=list)  # keys that tell this row from other rows of the same fusion
    label: str = ""  # the row's name in the tables: the model name, plus the variant keys when the fusion repeats
    order: float | None = None  # table position from the runs' records (``fusion.order``), None: from conf/fusion

    def __post_init__(self) -> None:
        if not self.label:
            self.label = self.model

    @property
    def init(self) -> dict[str, Any]:
        return {k: v for k, v in self.recipe.items() if matches_prefix(k, ("model.init",))}


@dataclass
class GroupTable:
    """One table: runs of one (protocol, dataset, backbone) that share the whole training recipe but for fusion.*
    and model.init.* (or, for records without a recipe, just the triple)."""

    protocol: str
    dataset: str
    backbone: str
    selection: str
    rows: list[FusionRow]
    notes: list[str] = field(default_factory=list)
    recipe: dict[str, Any] | None = field(default=None, repr=False)  # shared recipe; None: not recorded
    label: str = ""  # the keys (k=v) telling this table from others of the same triple; "recipe not recorded"

    @property
    def key(self) -> tuple[str, str, str]:
        """The (protocol, dataset, backbone) triple; several tables may share it when their recipes differ."""
        return (self.protocol, self.dataset, self.backbone)

    @property
    def has_recipe(self) -> bool:
        return self.recipe is not None

    @property
    def recipe_hash(self) -> str | None:
        return None if self.recipe is None else recipe_hash(self.recipe)

    @property
    def table_key(self) -> tuple[str, str, str, str | None]:
        return (*self.key, self.recipe_hash)

    @property
    def title(self) -> str:
        base = f"protocol={self.protocol}, dataset={self.dataset}, backbone={self.backbone}"
        return f"{base} | {self.label}" if self.label else base

    @property
    def has_comparison(self) -> bool:
        return any(r.comparison is not None for r in self.rows)

    def row(self, fusion: str) -> FusionRow | None:
        """The first row of a fusion (the only one unless the fusion appears with different settings)."""
        return next((r for r in self.rows if r.fusion == fusion), None)

    def rows_for(self, fusion: str) -> list[FusionRow]:
        return [r for r in self.rows if r.fusion == fusion]


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
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:
            self.label = self.model

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
    label: str = ""

    @property
    def title(self) -> str:
        base = f"dataset={self.dataset}, backbone={self.backbone}"
        return f"{base} | {self.label}" if self.label else base


@dataclass
class Report:
    groups: list[GroupTable]
    gaps: list[GapTable]
    skipped: list[Skipped]
    duplicates: list[tuple[Run, Run]]  # (dropped, kept instead), chosen by DUPLICATE_RULE
    split: bool
    notes: list[str] = field(default_factory=list)
    recipe_split_keys: list[str] = field(default_factory=list)  # keys that split runs of one triple into tables
    recipe_split_unrecorded: bool = False  # a triple has both runs with and without a recorded recipe

    @property
    def recipe_hint(self) -> str | None:
        """One line for the CLI when runs of one (protocol, dataset, backbone) went into several tables."""
        if not self.recipe_split_keys and not self.recipe_split_unrecorded:
            return None
        parts = []
        if self.recipe_split_keys:
            parts.append(f"they differ in {', '.join(self.recipe_split_keys)}")
        if self.recipe_split_unrecorded:
            parts.append("some records have no recorded recipe")
        return (
            "runs with different training recipes are reported in separate tables ("
            + "; ".join(parts)
            + "); each table's heading names its values"
        )


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
    """Mean ± sample std over all (fold, seed) runs of one row; per-fold WAR as the mean over that fold's seeds."""
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
        model=model_name(fusion, _first(runs, "fusion_display"), _first(runs, "backbone"),
                         _first(runs, "fusion_stage")),
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
        row_key=runs[0].row_key if runs else (fusion, None),
        recipe=dict(runs[0].row_recipe) if runs else {},
        order=_first(runs, "fusion_order"),
    )


def _group_notes(rows: Sequence[FusionRow], runs: Sequence[Run]) -> list[str]:
    """Warnings about things that make the rows not directly comparable."""
    notes: list[str] = []
    fold_sets = {tuple(r.folds) for r in rows}
    if len(fold_sets) > 1:
        desc = "; ".join(f"{r.label}: {', '.join(map(str, r.folds))}" for r in rows)
        notes.append(f"Methods cover different folds, so their means are over different test actors ({desc}).")
    for r in rows:
        if len(set(r.per_fold_n.values())) > 1:
            counts = ", ".join(f"fold {f}: {n}" for f, n in r.per_fold_n.items())
            notes.append(f"{r.label}: unequal runs per fold ({counts}); the overall mean weights folds unequally.")
        if len(r.params) > 1:
            notes.append(f"{r.label}: runs report different #Params {r.params}.")
        if r.n_last and r.n_last < r.n_runs:
            notes.append(f"{r.label}: last-epoch WAR from {r.n_last} of {r.n_runs} runs (others lack test_last).")
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


def _label_variants(rows: list[FusionRow]) -> list[str]:
    """Name the differing row-recipe keys in the labels of rows that share a fusion; return notes saying so."""
    notes = []
    by_fusion: dict[str, list[FusionRow]] = defaultdict(list)
    for r in rows:
        by_fusion[r.fusion].append(r)
    for same in by_fusion.values():
        if len(same) < 2:
            continue
        keys = differing_keys([r.recipe for r in same])
        for r in same:
            r.variant = keys
            r.label = f"{r.model} ({describe(r.recipe, keys)})"
        notes.append(
            f"{same[0].model} appears with different settings, one row each; they differ in {', '.join(keys)}."
        )
    return notes


def _init_text(init: dict[str, Any]) -> str:
    used = [k for k, v in sorted(init.items()) if v]
    return describe(init, used) if used else "no model.init.* checkpoint"


def _compare_rows(rows: list[FusionRow]) -> list[str]:
    """Paired tests against the CFN-SR row with the same initialisation (its non-fusion recipe is then identical,
    since the table shares everything else); notes for rows that get none although CFN-SR rows exist."""
    notes = []
    refs = [r for r in rows if r.fusion == REFERENCE_FUSION]
    if not refs:
        return notes
    for row in rows:
        if row.fusion == REFERENCE_FUSION:
            continue
        same = [ref for ref in refs if ref.init == row.init]
        if len(same) == 1:
            ref = same[0]
            row.comparison = {**paired_comparison(row.per_fold_war, ref.per_fold_war), "reference": ref.label}
        elif not same:
            notes.append(
                f"{row.label}: no paired test, no CFN-SR row here was trained with the same initialisation "
                f"({_init_text(row.init)})."
            )
        else:
            notes.append(
                f"{row.label}: no paired test, several CFN-SR rows share its initialisation "
                f"({'; '.join(r.label for r in same)}), so there is no single reference; report them separately."
            )
    return notes


def _hparams_notes(rows: Sequence[FusionRow]) -> list[str]:
    """How each row's hyperparameters were chosen, when any row's were chosen by a search (``hparams`` records)."""
    tuned = {r.label: sorted({(run.fold, str((run.record.get("hparams") or {}).get("chosen_by") or "a search"))
                              for run in r.runs if run.record.get("hparams")}) for r in rows}
    if not any(tuned.values()):
        return []
    notes = []
    for r in rows:
        chosen = tuned[r.label]
        if not chosen:
            notes.append(f"{r.label}: hyperparameters set in the config (not tuned).")
            continue
        untuned = sorted({run.fold for run in r.runs if not run.record.get("hparams")})
        text = "; ".join(f"fold {fold}: {how}" for fold, how in chosen)
        notes.append(f"{r.label}: hyperparameters chosen by a nested search per outer fold ({text})"
                     + (f"; folds {untuned} not tuned" if untuned else "") + ".")
    return notes


def _headline(recipe: dict[str, Any]) -> str:
    shown = [k for k in HEADLINE_KEYS if k in recipe]
    return describe(recipe, shown) if shown else "see the runs' metrics.json"


def build_group(runs: Sequence[Run]) -> GroupTable:
    """One table from runs already known to share (protocol, dataset, backbone) and their table recipe."""
    check_homogeneous(runs)
    tables = {r.table_key for r in runs}
    if len(tables) > 1:
        raise ReportError(f"build_group: runs with {len(tables)} different training recipes cannot share a table")
    by_row: dict[tuple, list[Run]] = defaultdict(list)
    for r in runs:
        by_row[r.row_key].append(r)
    rows = [aggregate_fusion(key[0], rs) for key, rs in by_row.items()]
    notes = _label_variants(rows)
    rows.sort(key=lambda r: (fusion_sort_key(r.fusion, r.order), r.label))
    notes += _compare_rows(rows)
    protocol, dataset, backbone = runs[0].group_key
    selections = sorted({str(r.record.get("selection") or DEFAULT_SELECTION.get(protocol, protocol)) for r in runs})
    recipe = runs[0].table_recipe
    if recipe is None:
        head = [NO_RECIPE_NOTE]
    else:
        head = [
            f"Training recipe `{recipe_hash(recipe)}`, shared by every run in this table (fold and seed aside; rows "
            f"differ only in fusion.* and model.init.*): {_headline(recipe)}."
        ]
    return GroupTable(
        protocol=protocol,
        dataset=dataset,
        backbone=backbone,
        selection=" / ".join(selections),
        rows=rows,
        notes=head + notes + _group_notes(rows, runs) + _hparams_notes(rows),
        recipe=None if recipe is None else dict(recipe),
        label="" if recipe is not None else NO_RECIPE_LABEL,
    )


def _label_tables(groups: list[GroupTable]) -> tuple[list[str], bool]:
    """Label tables that share a triple with the recipe keys telling them apart, and note, for every table, the keys
    on which it differs from the report's other tables. Returns (keys splitting a triple, unrecorded mixed in)."""
    split_keys: set[str] = set()
    unrecorded = False
    by_triple: dict[tuple, list[GroupTable]] = defaultdict(list)
    for g in groups:
        by_triple[g.key].append(g)
    for same in by_triple.values():
        recorded = [g for g in same if g.has_recipe]
        keys = differing_keys([g.recipe for g in recorded])
        split_keys.update(keys)
        unrecorded |= len(recorded) < len(same) and len(same) > 1
        for g in recorded:
            if keys:
                g.label = describe(g.recipe, keys)
    recorded = [g for g in groups if g.has_recipe]
    all_keys = differing_keys([g.recipe for g in recorded])
    for g in recorded:
        if all_keys:
            g.notes.insert(1, f"This table's recipe differs from the other tables' in: {describe(g.recipe, all_keys)}.")
    return sorted(split_keys), unrecorded


def _gap_key(g: GroupTable) -> tuple[str, str, str | None]:
    """Tables that differ only in the protocol pair up in a protocol-gap table."""
    if g.recipe is None:
        return (g.dataset, g.backbone, None)
    rest = {k: v for k, v in g.recipe.items() if not matches_prefix(k, ("protocol",))}
    return (g.dataset, g.backbone, recipe_hash(rest))


def build_gap(paper: GroupTable, clean: GroupTable) -> GapTable:
    """Per row (fusion, fusion config, initialisation): paper-protocol WAR vs clean-protocol WAR vs last-epoch WAR."""
    p_rows = {r.row_key: r for r in paper.rows}
    c_rows = {r.row_key: r for r in clean.rows}
    keys = list(p_rows) + [k for k in c_rows if k not in p_rows]
    def first(k: tuple) -> FusionRow:
        return p_rows.get(k) or c_rows[k]

    keys.sort(key=lambda k: (fusion_sort_key(k[0], first(k).order), first(k).label))
    rows = []
    for k in keys:
        p, c = p_rows.get(k), c_rows.get(k)
        rows.append(
            GapRow(
                fusion=k[0],
                model=(p or c).model,
                paper_war=p.war_mean if p else None,
                clean_war=c.war_mean if c else None,
                last_war=p.last_war_mean if p else None,
                clean_last_war=c.last_war_mean if c else None,
                n_paper=p.n_runs if p else 0,
                n_clean=c.n_runs if c else 0,
                label=(p or c).label,
            )
        )
    return GapTable(dataset=paper.dataset, backbone=paper.backbone, rows=rows, label=paper.label)


def _gaps(groups: list[GroupTable]) -> list[GapTable]:
    by_key: dict[tuple, dict[str, list[GroupTable]]] = defaultdict(lambda: defaultdict(list))
    for g in groups:
        by_key[_gap_key(g)][g.protocol].append(g)
    gaps = []
    for key in sorted(by_key, key=lambda k: (k[0], k[1], k[2] is None, k[2] or "")):
        paper, clean = by_key[key].get("paper", []), by_key[key].get("clean", [])
        if len(paper) == 1 and len(clean) == 1:
            gaps.append(build_gap(paper[0], clean[0]))
    return gaps


def build_report(runs: Sequence[Run], split: bool = False, skipped: Sequence[Skipped] = ()) -> Report:
    """Build the table(s) from finished runs.

    Tables: see :data:`TABLE_RULE`. Runs of different protocol/dataset/backbone raise :class:`ReportError` unless
    ``split`` (then one set of tables per triple, plus a protocol-gap table for every pair of paper/clean tables whose
    recipes differ only in the protocol). Runs whose recipes differ in any other key are always put in separate
    tables, labelled with the differing keys (``Report.recipe_hint`` says so in one line); records without a recipe
    go into their own table per triple, labelled "recipe not recorded". Paired tests against CFN-SR stay within a
    table and use the CFN-SR row with the same initialisation. Duplicates (same table, row, fold and seed) are
    resolved by :data:`~cfnsr.report.collect.DUPLICATE_RULE`, never by where or how the files sit on disk.
    """
    kept, dropped = deduplicate(runs)
    notes: list[str] = []
    if not kept:
        notes.append("No finished runs found.")
        return Report(groups=[], gaps=[], skipped=list(skipped), duplicates=dropped, split=split, notes=notes)
    if not split:
        check_homogeneous(kept)
    by_table: dict[tuple, list[Run]] = defaultdict(list)
    for r in kept:
        by_table[r.table_key].append(r)
    groups = [build_group(rs) for rs in by_table.values()]
    split_keys, unrecorded = _label_tables(groups)
    groups.sort(key=lambda g: (g.key, not g.has_recipe, g.label, g.recipe_hash or ""))
    report = Report(
        groups=groups,
        gaps=_gaps(groups),
        skipped=list(skipped),
        duplicates=dropped,
        split=split,
        notes=notes,
        recipe_split_keys=split_keys,
        recipe_split_unrecorded=unrecorded,
    )
    if report.recipe_hint:
        notes.append(f"Note: {report.recipe_hint}. {TABLE_RULE}")
    return report
