"""One table row: a fusion's label and table position, and its runs aggregated (mean ± sample std over folds and
seeds, per-fold WAR, summed confusion matrix). Accuracies in percent; the records hold fractions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cfnsr.models.fusion.registry import fusion_registry
from cfnsr.report.collect import Run
from cfnsr.runs.recipe import canonical_json, format_value, matches_prefix

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
    row_key: tuple = ()  # Run.row_key: (fusion, row recipe hash or None, effective batch, init provenance, corpus fingerprint)
    recipe: dict[str, Any] = field(default_factory=dict, repr=False)  # fusion.* and model.init.* recipe keys
    variant: list[str] = field(default_factory=list)  # keys that tell this row from other rows of the same fusion
    label: str = ""  # the row's name in the tables: the model name, plus the variant keys when the fusion repeats
    order: float | None = None  # table position from the runs' records (``fusion.order``), None: from conf/fusion
    effective_batch: int | None = None  # clips per optimiser step shared by the row's runs (part of the row key)
    init_provenance: str | None = None  # ``part=<recipe hash>`` of the init checkpoints (part of the row key)
    init_runs: list[str] = field(default_factory=list)  # ``part=<run id>`` of every init checkpoint pooled
    code_versions: list[str] = field(default_factory=list)  # every code version the row's runs were made with

    @property
    def mixed_code_versions(self) -> bool:
        """The row pools runs of more than one code version (an unknown version counts as one)."""
        return len(self.code_versions) > 1

    @property
    def corpus(self) -> str | None:
        """The corpus fingerprint of the row's runs (part of the row key); None when not recorded."""
        return self.row_key[4] if len(self.row_key) > 4 else None

    def __post_init__(self) -> None:
        if not self.label:
            self.label = self.model

    @property
    def init(self) -> dict[str, Any]:
        return {k: v for k, v in self.recipe.items() if matches_prefix(k, ("model.init",))}


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
        row_key=runs[0].row_key if runs else (fusion, None, None, None, None),
        recipe=dict(runs[0].row_recipe) if runs else {},
        order=_first(runs, "fusion_order"),
        effective_batch=runs[0].effective_batch if runs else None,
        init_provenance=runs[0].init_provenance if runs else None,
        init_runs=sorted({i for r in runs for i in r.init_run_ids}),
        code_versions=sorted({v for r in runs for v in r.code_versions}),
    )
