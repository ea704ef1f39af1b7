"""Is a record what its own numbers say? Checks of one ``metrics.json`` before the report uses it.

A record is a file anyone can edit (or a tool can half-rewrite); the report shows its numbers only when they agree:

* each test block (``test``, ``test_last``): ``n`` equals the confusion matrix's sum and ``war`` the matrix's
  trace over its sum;
* the clip count equals the test split's (``split_clips``, recorded since this check exists) and the block is not
  marked ``partial``;
* ``test_actors`` are the fold's actors of the recorded fold scheme (``recipe["folds.test_actors"][fold - 1]``);
* the run's own result files ``test_results/<tag>.json`` (written by the test itself, beside the record) hold the
  same metrics, clip count and confusion matrix.

Limits: ``uar`` and ``f1`` are checked against the result files only (a record whose run folder lost
``test_results/`` is checked for WAR and counts alone); a record written before ``split_clips`` is not checked against its split size; a record without a recipe is
not checked against its fold scheme; a consistent forgery of every number and file is not detected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TOLERANCE = 5e-4  # metrics are float32 on the device; the record keeps them as float64 after rounding
METRICS = ("war", "uar", "f1")
# Compared with the confusion matrix: WAR (micro accuracy) only. UAR and F1 depend on how a macro average treats
# classes absent from the split; they are compared with the run's own result files instead.
MATRIX_METRICS = ("war",)
TEST_TAGS = ("test", "test_last")
RESULTS_DIR = "test_results"


def confusion_metrics(confusion: list[list[int]]) -> dict[str, float]:
    """(war, uar, f1) from a K x K confusion matrix ``confusion[true][pred]``; classes that are neither present nor
    predicted are left out of the macro averages, as torchmetrics does."""
    k = len(confusion)
    total = sum(sum(row) for row in confusion)
    tp = [confusion[i][i] for i in range(k)]
    support = [sum(confusion[i]) for i in range(k)]
    predicted = [sum(confusion[j][i] for j in range(k)) for i in range(k)]
    used = [i for i in range(k) if support[i] or predicted[i]]
    recall = [tp[i] / support[i] if support[i] else 0.0 for i in used]
    f1 = [2 * tp[i] / (support[i] + predicted[i]) if support[i] + predicted[i] else 0.0 for i in used]
    return {"war": sum(tp) / total if total else 0.0, "uar": sum(recall) / len(used) if used else 0.0,
            "f1": sum(f1) / len(used) if used else 0.0}


def _block_problems(tag: str, block: dict[str, Any]) -> list[str]:
    problems = []
    confusion = block.get("confusion")
    n = block.get("n")
    if block.get("partial"):
        problems.append(f"{tag} is a partial evaluation ({block['partial']})")
    if not isinstance(confusion, list) or not confusion:
        return problems  # written without a confusion matrix: nothing to compare with
    total = sum(sum(row) for row in confusion)
    if n != total:
        problems.append(f"{tag}.n is {n} but its confusion matrix holds {total} clips")
    derived = confusion_metrics(confusion)
    for m in MATRIX_METRICS:
        value = block.get(m)
        if isinstance(value, (int, float)) and abs(float(value) - derived[m]) > TOLERANCE:
            problems.append(f"{tag}.{m} is {100 * float(value):.2f} but its confusion matrix gives "
                            f"{100 * derived[m]:.2f}")
    split = block.get("split_clips")
    if split is not None and total != split:
        problems.append(f"{tag} counted {total} clips but its test split holds {split}")
    return problems


def _fold_problems(record: dict[str, Any]) -> list[str]:
    recipe = record.get("recipe")
    folds = recipe.get("folds.test_actors") if isinstance(recipe, dict) else None
    actors = record.get("test_actors")
    try:
        fold = int(record.get("fold"))
    except (TypeError, ValueError):
        return []
    if not isinstance(folds, list) or actors is None or not 1 <= fold <= len(folds):
        return []
    expected = sorted(int(a) for a in folds[fold - 1])
    if sorted(int(a) for a in actors) != expected:
        return [f"test_actors {sorted(actors)} are not fold {fold}'s actors {expected} of its fold scheme"]
    return []


def _file_problems(run_dir: Path, tag: str, block: dict[str, Any]) -> list[str]:
    path = run_dir / RESULTS_DIR / f"{tag}.json"
    if not path.is_file():
        return []
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return [f"{path} is unreadable ({exc})"]
    problems = []
    for m in METRICS:
        a, b = block.get(m), saved.get(m)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(float(a) - float(b)) > TOLERANCE:
            problems.append(f"{tag}.{m} is {100 * float(a):.2f} but {path} says {100 * float(b):.2f}")
    if saved.get("n") is not None and block.get("n") != saved.get("n"):
        problems.append(f"{tag}.n is {block.get('n')} but {path} says {saved.get('n')}")
    if saved.get("confusion") is not None and block.get("confusion") != saved.get("confusion"):
        problems.append(f"{tag}.confusion differs from the matrix in {path}")
    return problems


def record_problems(path: Path, record: dict[str, Any]) -> list[str]:
    """Every disagreement inside the record at ``path`` and between it and its run's result files (empty: none)."""
    problems = _fold_problems(record)
    for tag in TEST_TAGS:
        block = record.get(tag)
        if isinstance(block, dict):
            problems += _block_problems(tag, block)
            problems += _file_problems(Path(path).parent, tag, block)
    return problems
