"""The protocol gap: per row, paper-protocol WAR (best test epoch) vs clean-protocol WAR (validation-selected),
for tables whose recipes differ only in the protocol."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cfnsr.report.rows import FusionRow, fusion_sort_key
from cfnsr.runs.recipe import matches_prefix, recipe_hash

if TYPE_CHECKING:
    from cfnsr.report.build import GroupTable


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


def _gap_key(g: GroupTable) -> tuple[str, str, str | None]:
    """Tables that differ only in the protocol pair up in a protocol-gap table."""
    if g.recipe is None:
        return (g.dataset, g.backbone, None)
    rest = {k: v for k, v in g.recipe.items() if not matches_prefix(k, ("protocol",))}
    return (g.dataset, g.backbone, recipe_hash(rest))


INIT_PROVENANCE_INDEX = 3  # Run.row_key: (fusion, row recipe hash, effective batch, init provenance, ...)


def _rows_by_gap_key(rows: list[FusionRow]) -> dict[tuple, FusionRow]:
    """Rows keyed for pairing across protocols: the row key without the init provenance when that is unique in the
    table (a two-stage run's stage-1 checkpoints were themselves trained under its protocol, so their recipe hashes
    differ between the paper and the clean table), else the whole row key."""
    def short(key: tuple) -> tuple:
        return tuple(x for i, x in enumerate(key) if i != INIT_PROVENANCE_INDEX)

    counts: dict[tuple, int] = defaultdict(int)
    for r in rows:
        counts[short(r.row_key)] += 1
    return {(short(r.row_key) if counts[short(r.row_key)] == 1 else r.row_key): r for r in rows}


def build_gap(paper: GroupTable, clean: GroupTable) -> GapTable:
    """Per row (fusion, fusion config, initialisation): paper-protocol WAR vs clean-protocol WAR vs last-epoch WAR."""
    p_rows = _rows_by_gap_key(paper.rows)
    c_rows = _rows_by_gap_key(clean.rows)
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


def gaps_of(groups: list[GroupTable]) -> list[GapTable]:
    """A gap table for every pair of one paper-protocol and one clean-protocol table that differ only in the protocol."""
    by_key: dict[tuple, dict[str, list[GroupTable]]] = defaultdict(lambda: defaultdict(list))
    for g in groups:
        by_key[_gap_key(g)][g.protocol].append(g)
    gaps = []
    for key in sorted(by_key, key=lambda k: (k[0], k[1], k[2] is None, k[2] or "")):
        paper, clean = by_key[key].get("paper", []), by_key[key].get("clean", [])
        if len(paper) == 1 and len(clean) == 1:
            gaps.append(build_gap(paper[0], clean[0]))
    return gaps
