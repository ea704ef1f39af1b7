"""The report's robustness block: MultiBench-style relative and effective robustness per fusion strategy.

Input: the ``robustness.json`` files that ``evaluate.py ckpt_path=<ckpt> robustness=default`` writes (schema 1:
``{"schema": 1, "meta": {run_id, fusion, fold, seed, protocol, backbone, dataset, recipe_hash, ...},
"clean": {"war", ...}, "rows": [{"corruption", "level", "war", ...}]}``).

Measures (defined in docs/robustness.md):

* **relative robustness** of one run and one corruption: the area under its accuracy-against-level curve, the clean
  accuracy at position 0 and the corruption's levels at positions 1/n, ..., 1 in the suite's order of severity
  (trapezoid rule, so a model that keeps its clean accuracy everywhere scores its clean accuracy). A run's relative
  robustness is the mean over corruptions; a fusion strategy's is the mean over its runs (folds x seeds).
* **effective robustness** of a strategy: its relative robustness minus the value predicted for its clean accuracy by
  the least-squares line fitted to (clean accuracy, relative robustness) across all strategies of the block; it says
  how much more robust a method is than its accuracy alone would predict (needs at least 3 strategies).

Runs enter one block only when they share protocol, dataset, backbone, the table recipe (the training recipe without
the fusion's own settings and initialisation, as the main report's tables) and the exact suite (corruptions and
levels); rows are one per fusion and row recipe. Files written before ``table_recipe_hash`` existed are keyed by
their whole recipe (one fusion per block). A partial evaluation (``meta.partial``: ``limit_test_batches``,
``fast_dev_run``, ...) or one whose clip count differs from its split is skipped with the reason.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cfnsr.runs.renames import current_fusion

FILENAME = "robustness.json"
SCHEMA = 1


@dataclass(frozen=True)
class RobustnessRun:
    """One evaluated checkpoint: its metadata, clean WAR and accuracy per (corruption, level), in suite order."""

    path: Path
    meta: dict[str, Any]
    clean_war: float
    curves: dict[str, list[tuple[Any, float]]]  # corruption -> [(level, war)] in the suite's order

    @property
    def block_key(self) -> tuple[Any, ...]:
        suite = tuple((c, tuple(lv for lv, _ in pts)) for c, pts in sorted(self.curves.items()))
        m = self.meta
        # The table recipe (without fusion.* and model.init.*): fusions trained alike share a block, as in the main
        # report; older files without it fall back to the whole recipe (a block per fusion, no cross-fusion fit).
        recipe = m.get("table_recipe_hash") or f"recipe {m.get('recipe_hash')}"
        return (m.get("protocol"), m.get("dataset"), m.get("backbone"), recipe, json.dumps(suite, default=str))

    @property
    def row_key(self) -> tuple[str, str | None]:
        """One row per fusion and row recipe (its own settings and initialisation)."""
        return (str(self.meta.get("fusion")), self.meta.get("row_recipe_hash"))

    def relative(self, corruption: str) -> float:
        """Normalised area under (0, clean), (k/n, war_k) for k = 1..n."""
        wars = [self.clean_war] + [w for _, w in self.curves[corruption]]
        x = np.linspace(0.0, 1.0, len(wars))
        return float(np.trapezoid(wars, x)) if hasattr(np, "trapezoid") else float(np.trapz(wars, x))

    @property
    def relative_mean(self) -> float:
        return float(np.mean([self.relative(c) for c in self.curves]))


@dataclass
class RobustnessRow:
    fusion: str
    n_runs: int
    folds: list[int]
    clean_war: float
    relative: float
    per_corruption: dict[str, float]
    effective: float | None = None


@dataclass
class RobustnessBlock:
    protocol: str
    dataset: str
    backbone: str
    corruptions: list[str]
    rows: list[RobustnessRow]
    notes: list[str] = field(default_factory=list)


def read_robustness(path: Path) -> RobustnessRun:
    """Parse one robustness.json; raises ValueError naming the file when it is not schema 1 or lacks fields."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable robustness file ({exc})") from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: unsupported robustness schema {data.get('schema') if isinstance(data, dict) else None!r}")
    try:
        meta, clean, rows = dict(data["meta"]), float(data["clean"]["war"]), list(data["rows"])
        if isinstance(meta.get("fusion"), str):  # a file of a renamed fusion joins the row of its current name
            meta["fusion"] = current_fusion(meta["fusion"])
        curves: dict[str, list[tuple[Any, float]]] = defaultdict(list)
        for row in rows:
            curves[str(row["corruption"])].append((row["level"], float(row["war"])))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: incomplete robustness file (missing {exc})") from exc
    if not curves:
        raise ValueError(f"{path}: no corruption rows")
    return RobustnessRun(Path(path), meta, clean, dict(curves))


def collect_robustness(paths: Iterable[str | Path]) -> tuple[list[RobustnessRun], list[tuple[Path, str]]]:
    """Every robustness.json under ``paths``; (runs, [(file, reason skipped)]). One file per run id is kept (the
    newest by mtime; the others are listed as skipped)."""
    files: set[Path] = set()
    for p in map(Path, paths):
        if p.is_file():
            files.add(p.resolve())
        elif p.is_dir():
            files.update(f.resolve() for f in p.rglob(FILENAME))
        else:
            raise FileNotFoundError(f"robustness input does not exist: {p}")
    runs, skipped = [], []
    for f in sorted(files):
        try:
            run = read_robustness(f)
        except ValueError as exc:
            skipped.append((f, str(exc)))
            continue
        problem = incomplete_evaluation(run)
        if run.meta.get("protocol") == "search":  # as in the main report: a search trial is no result
            skipped.append((f, "a hyperparameter-search trial's checkpoint (protocol=search), not a reported run"))
        elif problem:
            skipped.append((f, problem))
        else:
            runs.append(run)
    newest: dict[tuple[Any, ...], RobustnessRun] = {}
    for r in runs:
        key = (r.meta.get("run_id") or str(r.path), r.block_key)
        cur = newest.get(key)
        if cur is None or r.path.stat().st_mtime > cur.path.stat().st_mtime:
            if cur is not None:
                skipped.append((cur.path, f"duplicate evaluation of run {key[0]}: kept the newer {r.path}"))
            newest[key] = r
        else:
            skipped.append((r.path, f"duplicate evaluation of run {key[0]}: kept the newer {cur.path}"))
    return list(newest.values()), skipped


def incomplete_evaluation(run: RobustnessRun) -> str | None:
    """Why ``run`` is not a whole evaluation of its test split (None when it is): a partial evaluation, or a clean
    or corrupted clip count that differs from the split's."""
    partial = run.meta.get("partial")
    if partial:
        return f"partial evaluation ({partial}): not a result"
    data = json.loads(run.path.read_text())
    clean = data.get("clean") or {}
    expected = clean.get("split_clips")
    if expected is None:
        return None  # written before split sizes were recorded: cannot be checked
    counts = [("clean", clean.get("n"))] + [(f"{r.get('corruption')} {r.get('level')}", r.get("n"))
                                            for r in data.get("rows") or []]
    bad = [f"{name}: {n}" for name, n in counts if n != expected]
    if bad:
        return f"clip counts differ from the test split's {expected} clips ({'; '.join(bad[:3])}): not a result"
    return None


def _fit_effective(rows: Sequence[RobustnessRow]) -> str | None:
    """Set each row's effective robustness; returns a note when it cannot be computed."""
    if len(rows) < 3:
        return "effective robustness needs at least 3 fusion strategies in the block"
    x = np.array([r.clean_war for r in rows])
    y = np.array([r.relative for r in rows])
    if np.ptp(x) == 0:
        return "effective robustness undefined: every strategy has the same clean accuracy"
    slope, intercept = np.polyfit(x, y, 1)
    for r in rows:
        r.effective = float(r.relative - (intercept + slope * r.clean_war))
    return None


def build_robustness(runs: Sequence[RobustnessRun], order: Sequence[str] = ()) -> list[RobustnessBlock]:
    """Group runs into blocks of one (protocol, dataset, backbone, suite); one row per fusion, means over runs."""
    blocks: dict[tuple[Any, ...], list[RobustnessRun]] = defaultdict(list)
    for r in runs:
        blocks[r.block_key].append(r)
    out = []
    for key, members in blocks.items():
        by_row: dict[tuple[str, str | None], list[RobustnessRun]] = defaultdict(list)
        for r in members:
            by_row[r.row_key].append(r)
        corruptions = list(members[0].curves)
        rows = []
        for (fusion, _), rs in by_row.items():
            rows.append(RobustnessRow(
                fusion=fusion, n_runs=len(rs), folds=sorted({int(r.meta.get("fold", 0)) for r in rs}),
                clean_war=float(np.mean([r.clean_war for r in rs])),
                relative=float(np.mean([r.relative_mean for r in rs])),
                per_corruption={c: float(np.mean([r.relative(c) for r in rs])) for c in corruptions}))
        rank = {name: i for i, name in enumerate(order)}
        rows.sort(key=lambda r: (rank.get(r.fusion, len(rank)), r.fusion))
        notes = []
        protocols = {r.meta.get("protocol") for r in members}
        if "paper" in protocols:
            notes.append("paper-protocol checkpoints: their clean accuracy was selected on the test fold")
        recipes = {r.meta.get("recipe_hash") for r in members}
        note = _fit_effective(rows)
        if note:
            notes.append(note)
        folds = {tuple(r.folds) for r in rows}
        if len(folds) > 1:
            notes.append("strategies were evaluated on different folds: " +
                         "; ".join(f"{r.fusion} {r.folds}" for r in rows))
        notes.append(f"{len(members)} evaluated checkpoint(s), {len(recipes)} training recipe(s)")
        out.append(RobustnessBlock(protocol=str(key[0]), dataset=str(key[1]), backbone=str(key[2]),
                                   corruptions=corruptions, rows=rows, notes=notes))
    return out


def fusion_as_is(fusion: str, backbone: str | None = None) -> str:  # noqa: ARG001
    """The default row name: the fusion's config name (``name`` callables take the fusion and the backbone)."""
    return fusion


def format_robustness(blocks: Sequence[RobustnessBlock], name: Any = fusion_as_is) -> str:
    """Markdown: one table per block (relative robustness per corruption, mean, effective robustness), in %."""
    parts = ["## Robustness (relative robustness = normalised area under accuracy against corruption level; "
             "effective = above the linear trend of robustness against clean accuracy)", ""]
    for b in blocks:
        parts.append(f"### protocol={b.protocol} | data={b.dataset} | backbone={b.backbone}")
        parts.append("")
        header = ["Model", "runs", "folds", "clean WAR", *b.corruptions, "relative", "effective"]
        parts.append("| " + " | ".join(header) + " |")
        parts.append("|" + "|".join(["---"] * 3 + ["---:"] * (len(header) - 3)) + "|")
        for r in b.rows:
            cells = [name(r.fusion, backbone=b.backbone), str(r.n_runs), ",".join(map(str, r.folds)), f"{100 * r.clean_war:.2f}",
                     *(f"{100 * r.per_corruption[c]:.2f}" for c in b.corruptions), f"{100 * r.relative:.2f}",
                     "n/a" if r.effective is None else f"{100 * r.effective:+.2f}"]
            parts.append("| " + " | ".join(cells) + " |")
        parts += [""] + [f"- {n}" for n in b.notes] + [""]
    return "\n".join(parts)


def plot_robustness(blocks: Sequence[RobustnessBlock], path: Path, name: Any = fusion_as_is) -> Path:
    """Scatter of relative robustness against clean accuracy, one point per strategy, with the fitted trend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(blocks), figsize=(5.5 * len(blocks), 4.5), squeeze=False)
    for ax, b in zip(axes[0], blocks, strict=True):
        x = np.array([100 * r.clean_war for r in b.rows])
        y = np.array([100 * r.relative for r in b.rows])
        ax.scatter(x, y)
        for r, xi, yi in zip(b.rows, x, y, strict=True):
            ax.annotate(name(r.fusion, backbone=b.backbone), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=8)
        if len(b.rows) >= 3 and np.ptp(x) > 0:
            slope, intercept = np.polyfit(x, y, 1)
            xs = np.linspace(x.min(), x.max(), 10)
            ax.plot(xs, intercept + slope * xs, "--", color="grey", label="linear trend")
            ax.legend(fontsize=8)
        ax.set_xlabel("clean WAR (%)")
        ax.set_ylabel("relative robustness (%)")
        ax.set_title(f"{b.protocol} | {b.dataset} | {b.backbone}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_robustness(blocks: Sequence[RobustnessBlock], out_dir: Path, name: Any = fusion_as_is) -> dict[str, Path]:
    """robustness_summary.csv and robustness_scatter.png in ``out_dir``."""
    import csv

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "robustness_summary.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["protocol", "dataset", "backbone", "fusion", "runs", "folds", "clean_war", "corruption",
                    "relative", "relative_mean", "effective"])
        for b in blocks:
            for r in b.rows:
                for c in b.corruptions:
                    w.writerow([b.protocol, b.dataset, b.backbone, r.fusion, r.n_runs, " ".join(map(str, r.folds)),
                                f"{r.clean_war:.6f}", c, f"{r.per_corruption[c]:.6f}", f"{r.relative:.6f}",
                                "" if r.effective is None else f"{r.effective:.6f}"])
    return {"robustness_csv": csv_path, "robustness_png": plot_robustness(blocks, out_dir / "robustness_scatter.png",
                                                                          name)}
