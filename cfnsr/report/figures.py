"""Report figures: mean WAR per method with its per-fold spread, and one confusion matrix per method.

Figures are drawn on ``matplotlib.figure.Figure`` with the Agg canvas directly, not through ``pyplot``, so the report
never changes the global backend of whatever process imported it and leaks no open figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cfnsr.report.build import GroupTable


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def plot_war_by_method(groups: Sequence[GroupTable], path: Path) -> Path:
    """Bar per method = mean WAR, error bar = sample std over runs, dots = per-fold WAR (mean over seeds)."""
    n = max(len(groups), 1)
    width = max(6.0, 0.8 * max((len(g.rows) for g in groups), default=1) + 2)
    fig = Figure(figsize=(width, 4.2 * n))
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    rng = np.random.default_rng(0)  # fixed jitter so the figure is reproducible
    for ax, g in zip(axes, groups, strict=False):  # no groups -> one empty axis
        x = np.arange(len(g.rows))
        means = [r.war_mean if r.war_mean is not None else np.nan for r in g.rows]
        stds = [r.war_std if r.war_std is not None else 0.0 for r in g.rows]
        ax.bar(x, means, yerr=stds, capsize=4, color="#9ecae1", edgecolor="#3182bd", label="mean ± std over runs")
        for i, r in enumerate(g.rows):
            vals = list(r.per_fold_war.values())
            ax.scatter(
                i + rng.uniform(-0.15, 0.15, len(vals)),
                vals,
                s=14,
                color="#08306b",
                zorder=3,
                label="per-fold WAR" if i == 0 else None,
            )
            if r.war_mean is not None:
                ax.annotate(
                    f"{r.war_mean:.2f}",
                    (i, r.war_mean),
                    textcoords="offset points",
                    xytext=(0, 3),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
        ax.set_xticks(x)
        ax.set_xticklabels([r.label for r in g.rows], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(f"WAR (%)\n{g.selection}", fontsize=8)
        ax.set_title(g.title, fontsize=9)
        all_vals = [v for r in g.rows for v in r.per_fold_war.values()] + [m for m in means if np.isfinite(m)]
        if all_vals:
            ax.set_ylim(max(0.0, min(all_vals) - 10), min(100.0, max(all_vals) + 8))
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    if not groups:
        axes[0].text(0.5, 0.5, "no finished runs", ha="center", va="center")
    fig.tight_layout()
    return _save(fig, path)


def plot_confusion(confusion: np.ndarray, title: str, path: Path,
                   class_names: Sequence[str] | None = None) -> Path:
    """Row-normalised confusion (colour = recall share) with the raw counts written in each cell."""
    cm = np.asarray(confusion, dtype=np.int64)
    k = cm.shape[0]
    # class names from the runs (cfnsr.report.build.GroupTable.class_names), else the class indices
    names = tuple(class_names) if class_names is not None and len(class_names) == k else tuple(str(i) for i in range(k))
    totals = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, totals, out=np.zeros(cm.shape, dtype=float), where=totals > 0)
    fig = Figure(figsize=(1.0 + 0.75 * k, 0.8 + 0.7 * k))
    ax = fig.subplots()
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="row-normalised")
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                f"{cm[i, j]}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
