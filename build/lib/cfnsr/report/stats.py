"""Paired fold-wise comparison of two methods, with the limits of the tests spelled out.

With 5 or 6 folds no test can say much: the exact Wilcoxon p cannot go below 2/2^n, the t-test leans on normally
distributed differences that six numbers cannot check, and folds share most of their training actors, so their
scores are not independent samples. The report prints these limits next to the p-values.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import stats

# Accuracies are multiples of 1/240; rounding kills float noise so equal scores give exact zero differences and ties.
_DIFF_DECIMALS = 9


def min_wilcoxon_p(n: int) -> float | None:
    """Smallest two-sided exact Wilcoxon signed-rank p-value reachable with ``n`` non-zero differences."""
    return 2.0 / 2**n if n >= 1 else None


def _finite_or_none(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def paired_comparison(a: Mapping[int, float], b: Mapping[int, float]) -> dict[str, Any]:
    """Compare ``a`` (method) against ``b`` (reference) over the folds both have.

    ``a`` and ``b`` map fold -> score (e.g. WAR averaged over seeds). The differences are ``a - b``. Returns::

        {"folds": [...], "n": int, "diffs": [...], "mean_diff": float | None,
         "t_p": float | None, "wilcoxon_p": float | None, "min_wilcoxon_p": float | None,
         "n_nonzero": int, "note": str}

    p-values are ``None`` (shown "n/a") when the test cannot run: fewer than 2 shared folds, or, for the t-test,
    constant differences (zero variance). ``note`` says why, and repeats the limits of the tests.
    """
    folds = sorted(set(a) & set(b))
    n = len(folds)
    diffs = [round(float(a[f]) - float(b[f]), _DIFF_DECIMALS) for f in folds]
    n_nonzero = sum(1 for d in diffs if d != 0)
    out: dict[str, Any] = {
        "folds": folds,
        "n": n,
        "diffs": diffs,
        "mean_diff": float(np.mean(diffs)) if n else None,
        "t_p": None,
        "wilcoxon_p": None,
        "min_wilcoxon_p": min_wilcoxon_p(n),
        "n_nonzero": n_nonzero,
    }
    notes: list[str] = []
    if n < 2:
        notes.append(f"n/a: {n} shared fold(s), a paired test needs at least 2")
    else:
        if np.ptp(diffs) == 0:
            notes.append("t-test n/a: the differences are constant (zero variance)")
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out["t_p"] = _finite_or_none(stats.ttest_rel([a[f] for f in folds], [b[f] for f in folds]).pvalue)
        if n_nonzero == 0:
            out["wilcoxon_p"] = 1.0  # identical scores on every fold: no evidence of any difference
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # scipy warns about ties/zeros; we note them below
                out["wilcoxon_p"] = _finite_or_none(stats.wilcoxon(diffs, method="exact").pvalue)
            if n_nonzero < n:
                notes.append(f"Wilcoxon drops the {n - n_nonzero} zero difference(s)")
            if len({abs(d) for d in diffs if d != 0}) < n_nonzero:
                notes.append("tied absolute differences: the 'exact' Wilcoxon p is approximate")
    out["note"] = "; ".join(notes)
    return out


def limits_note(n_values: list[int]) -> str:
    """The caveats printed under every comparison table, with the Wilcoxon floor for the fold counts present."""
    floors = ", ".join(f"2/{2**n} = {2.0 / 2**n:.4g} for n={n}" for n in sorted(set(n_values)) if n >= 1)
    return (
        "Paired tests over folds (per-fold WAR = mean over seeds; difference = method − CFN-SR, in points). "
        f"Limits: with n folds the smallest possible two-sided exact Wilcoxon p is 2/2^n ({floors or 'no folds'}), "
        "so with 5-6 folds it can never reach 0.01; the paired t-test assumes normally distributed differences, "
        "which n this small cannot check; and the folds share most training actors, so they are not independent "
        "samples and both p-values are optimistic. n<2 gives n/a."
    )
