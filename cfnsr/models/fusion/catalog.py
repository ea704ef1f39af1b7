"""The order of the fusion strategies in tables (the report and the complexity job): the paper's, then the rest."""

from __future__ import annotations

# The paper's table order (docs/paper-facts.md#comparison-table); anything else follows alphabetically.
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


def fusion_sort_key(name: str) -> tuple[int, str]:
    """Paper order first, then other fusion names alphabetically."""
    return (FUSION_ORDER.index(name), "") if name in FUSION_ORDER else (len(FUSION_ORDER), name)
