"""Turn finished runs into the comparison table(s): grouping by recipe, row labels, paired tests, notes.

Rows are aggregated in :mod:`cfnsr.report.rows`, the protocol gap in :mod:`cfnsr.report.protocol_gap`.

Tables and rows are formed from each record's training recipe (:mod:`cfnsr.runs.recipe`), see :data:`TABLE_RULE`; records
written without a recipe are grouped by (protocol, dataset, backbone) in their own tables. Nothing here looks at
folder names. Everything is pure data (no files, no plotting), so tests can check the numbers against hand
computation. Accuracies are stored in percent from here on: the records hold fractions, the tables show percent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cfnsr.data.corpus import shipped_class_names
from cfnsr.report.collect import Run, Skipped, deduplicate
from cfnsr.report.protocol_gap import GapTable, gaps_of
from cfnsr.report.rows import FusionRow, aggregate_fusion, describe, differing_keys, fusion_sort_key
from cfnsr.report.stats import paired_comparison
from cfnsr.runs.recipe import recipe_hash

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
    # names of the confusion matrices' classes: the records' class_names, else the shipped conf/data/<dataset>.yaml
    class_names: tuple[str, ...] | None = None
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
        # Row-key fields outside the recipe: clips per optimiser step and the recipes of the init checkpoints.
        extra = [name for name, values in (("effective_batch", {r.effective_batch for r in same}),
                                           ("init_provenance", {r.init_provenance for r in same}))
                 if len(values) > 1]
        corpora = len({r.corpus for r in same}) > 1  # rows split by the corpus they ran on (last row-key field)
        for r in same:
            r.variant = keys + extra + (["corpus"] if corpora else [])
            parts = [describe(r.recipe, keys)] if keys else []
            parts += [f"{name}={getattr(r, name) if getattr(r, name) is not None else '(not recorded)'}"
                      for name in extra]
            parts += [f"corpus {r.corpus or 'not recorded'}"] if corpora else []
            r.label = f"{r.model} ({', '.join(parts)})"
        what = keys + extra + (["the corpus they ran on (corpus_fingerprint)"] if corpora else [])
        notes.append(
            f"{same[0].model} appears with different settings, one row each; they differ in {', '.join(what)}."
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
        same = [ref for ref in refs if ref.init == row.init and ref.corpus == row.corpus]
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


def _code_version_notes(rows: Sequence[FusionRow]) -> list[str]:
    """Which code versions each row pools; a row whose runs span versions is marked (also in its data:
    ``FusionRow.mixed_code_versions``)."""
    versions = {tuple(r.code_versions) for r in rows}
    notes = []
    if len(versions) == 1 and not any(r.mixed_code_versions for r in rows):
        (only,) = versions
        notes.append(f"Code version of every run: {', '.join(only) or 'unknown'}.")
    else:
        for r in rows:
            notes.append(f"{r.label}: code version(s) {', '.join(r.code_versions) or 'unknown'}.")
    for r in rows:
        if r.mixed_code_versions:
            notes.append(f"MIXED CODE VERSIONS: {r.label} pools runs of {len(r.code_versions)} code versions "
                         f"({', '.join(r.code_versions)}); its numbers may mix behaviours of different code.")
        if r.init_runs:
            notes.append(f"{r.label}: initialised from run(s) {', '.join(r.init_runs)}"
                         f" (recipes {r.init_provenance or 'not recorded'}).")
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
        notes=head + notes + _group_notes(rows, runs) + _hparams_notes(rows) + _code_version_notes(rows),
        recipe=None if recipe is None else dict(recipe),
        label="" if recipe is not None else NO_RECIPE_LABEL,
        class_names=_class_names(runs, dataset),
    )


def _class_names(runs: Sequence[Run], dataset: str) -> tuple[str, ...] | None:
    """The class names the runs recorded (all equal), else those of the shipped conf/data/<dataset>.yaml (records
    written before class names were recorded); None when unknown or when the runs disagree."""
    recorded = {tuple(r.record["class_names"]) for r in runs if isinstance(r.record.get("class_names"), list)}
    if len(recorded) == 1:
        return recorded.pop()
    return shipped_class_names(dataset) if not recorded else None


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
        gaps=gaps_of(groups),
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
