"""Synthetic ``metrics.json`` records with known numbers for the report tests (a unique module name, so it never
clashes with another directory's ``conftest``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

N_TEST = 240  # clips per test fold, as in RAVDESS


def confusion_for(correct: int, n: int = N_TEST, k: int = 8) -> list[list[int]]:
    """A k x k confusion with ``correct`` clips on the diagonal and the rest one class off it."""
    cm = [[0] * k for _ in range(k)]
    per_class = [n // k + (1 if i < n % k else 0) for i in range(k)]
    left = correct
    for i in range(k):
        hit = min(per_class[i], left)
        left -= hit
        cm[i][i] = hit
        cm[i][(i + 1) % k] = per_class[i] - hit
    return cm


def make_record(
    fusion: str,
    fold: int,
    seed: int,
    correct: int,
    *,
    protocol: str = "paper",
    dataset: str = "synthetic",
    backbone: str = "tiny",
    status: str = "finished",
    last_correct: int | None = None,
    params: int = 26_301_417,
    run_dir: str = "",
) -> dict[str, Any]:
    """A schema-1 record whose test WAR is ``correct / 240``; UAR is 1 point lower, F1 2 points lower."""
    war = correct / N_TEST
    last = (last_correct if last_correct is not None else correct - 12) / N_TEST
    selection = "best test epoch (paper protocol)" if protocol == "paper" else "best validation epoch (clean protocol)"
    return {
        "status": status,
        "error": None,
        "run_dir": run_dir,
        "experiment": "test",
        "dataset": dataset,
        "backbone": backbone,
        "fusion": fusion,
        "fusion_stage": {"cfnsr": "Model", "msaf": "Model", "averaging": "Late"}.get(fusion, "Early"),
        "protocol": protocol,
        "selection": selection,
        "folds": "paper",
        "fold": fold,
        "test_actors": [4 * fold - 3 + i for i in range(4)],
        "val_actors": [4 * fold - 3 + i for i in range(4)],
        "seed": seed,
        "params": params,
        "gflops": 1.5,
        "paper": {"accuracy": 75.76, "params": "26.30M"} if fusion == "cfnsr" else None,
        "epochs": 3,
        "best_epoch": 1,
        "test": {"war": war, "uar": war - 0.01, "f1": war - 0.02, "n": N_TEST, "confusion": confusion_for(correct)},
        "test_last": {"war": last, "uar": last, "f1": last, "n": N_TEST, "confusion": confusion_for(round(last * 240))},
    }


# Correct clips out of 240 per (fusion, fold, seed): the "known numbers" the tests check against.
CORRECT = {
    ("cfnsr", 1, 1): 180, ("cfnsr", 1, 2): 184,
    ("cfnsr", 2, 1): 170, ("cfnsr", 2, 2): 172,
    ("cfnsr", 3, 1): 190, ("cfnsr", 3, 2): 186,
    ("msaf", 1, 1): 176, ("msaf", 2, 1): 168, ("msaf", 3, 1): 185,
    ("averaging", 1, 1): 160, ("averaging", 2, 1): 158, ("averaging", 3, 1): 170,
}  # fmt: skip

RunWriter = Callable[..., Path]
