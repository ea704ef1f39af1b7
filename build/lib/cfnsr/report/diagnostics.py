"""The "fusion diagnostics" table: test accuracy per declared interaction type, per fusion (row) of a table.

Runs trained on a corpus with an interactions manifest carry ``test.by_interaction`` in their metrics.json
(``cfnsr.runs.diagnostics``): ``{type: {"acc": fraction, "n": clips}}``. Per row: mean ± sample std (ddof=1) over
the row's (fold, seed) runs, in percent. Types: redundant, video_unique, audio_unique, synergy (docs/diagnostics.md).
A late fusion (a sum of a video term and an audio term in the class scores) is bounded by 75 % on synergy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cfnsr.report.build import GroupTable

TYPES: tuple[str, ...] = ("redundant", "video_unique", "audio_unique", "synergy")
SYNERGY_BOUND = 75.0  # percent: the best a late (additive) fusion can do on a synergy pair
NOTE = (
    "Test accuracy (%) on the classes of each interaction type of the corpus's manifest (interactions.json), mean ± "
    "sample std over (fold, seed) runs (n = runs). redundant: face and voice each carry the class; video_unique / "
    "audio_unique: only that modality separates the pair (the other one is at 50 %); synergy: the class is the XOR "
    f"of a face bit and a voice bit, so a late fusion (a sum of a video and an audio term) is bounded by "
    f"{SYNERGY_BOUND:.0f} % and each modality alone is at 50 % (docs/diagnostics.md)."
)


@dataclass
class DiagnosticsRow:
    label: str
    fusion: str
    stage: str
    n: int  # runs with a by_interaction entry
    mean: dict[str, float | None]  # type -> percent
    std: dict[str, float | None]


def diagnostics_rows(group: GroupTable) -> list[DiagnosticsRow]:
    """One row per table row whose runs recorded ``by_interaction``; empty when none did."""
    out = []
    for r in group.rows:
        per_run = [run.record["test"].get("by_interaction") for run in r.runs]
        per_run = [b for b in per_run if isinstance(b, dict) and b]
        if not per_run:
            continue
        mean: dict[str, float | None] = {}
        std: dict[str, float | None] = {}
        for kind in TYPES:
            values = [100.0 * float(b[kind]["acc"]) for b in per_run
                      if isinstance(b.get(kind), dict) and b[kind].get("acc") is not None]
            mean[kind] = float(np.mean(values)) if values else None
            std[kind] = float(np.std(values, ddof=1)) if len(values) > 1 else None
        out.append(DiagnosticsRow(r.label, r.fusion, r.stage, len(per_run), mean, std))
    return out


def _cell(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "–"
    return f"{mean:.1f}" if std is None else f"{mean:.1f} ± {std:.1f}"


def diagnostics_table(rows: Sequence[DiagnosticsRow]) -> str:
    """Markdown: model, stage, n, one column per interaction type."""
    header = ["Model", "Stage", "n", *TYPES]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        cells = [r.label, r.stage, str(r.n), *(_cell(r.mean[k], r.std[k]) for k in TYPES)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_diagnostics(group: GroupTable, heading: str = "##") -> str | None:
    """The section for one table, or None when its runs recorded no per-interaction accuracy."""
    rows = diagnostics_rows(group)
    if not rows:
        return None
    return "\n".join([f"{heading}# Fusion diagnostics", "", NOTE, "", diagnostics_table(rows)])
