"""The paired comparison on known inputs."""

from __future__ import annotations

import pytest
from scipy import stats

from cfnsr.report import paired_comparison
from cfnsr.report.stats import limits_note, min_wilcoxon_p


def test_differences_one_to_six() -> None:
    b = {f: 70.0 + f % 3 for f in range(1, 7)}
    a = {f: b[f] + f for f in range(1, 7)}  # differences a - b = 1..6
    out = paired_comparison(a, b)
    assert out["n"] == 6 and out["folds"] == [1, 2, 3, 4, 5, 6]
    assert out["diffs"] == pytest.approx([1, 2, 3, 4, 5, 6])
    assert out["mean_diff"] == pytest.approx(3.5)
    folds = sorted(a)
    assert out["t_p"] == pytest.approx(stats.ttest_rel([a[f] for f in folds], [b[f] for f in folds]).pvalue)
    assert out["wilcoxon_p"] == pytest.approx(2 / 64)
    assert out["min_wilcoxon_p"] == pytest.approx(2 / 64)
    assert out["note"] == ""


def test_sign_and_only_shared_folds() -> None:
    a = {1: 70.0, 2: 71.0, 3: 69.0, 4: 72.0, 5: 70.5, 9: 10.0}
    b = {1: 72.0, 2: 74.0, 3: 70.0, 4: 76.0, 5: 75.5, 7: 99.0}
    out = paired_comparison(a, b)
    assert out["folds"] == [1, 2, 3, 4, 5]
    assert out["diffs"] == pytest.approx([-2, -3, -1, -4, -5])
    assert out["mean_diff"] == pytest.approx(-3.0)
    assert out["wilcoxon_p"] == pytest.approx(0.0625)  # the floor 2/2^5: every difference has the same sign
    assert out["min_wilcoxon_p"] == pytest.approx(0.0625)


@pytest.mark.parametrize("n", [0, 1])
def test_fewer_than_two_folds_is_na(n: int) -> None:
    a = {f: 70.0 for f in range(1, n + 1)}
    b = {f: 60.0 for f in range(1, n + 1)}
    out = paired_comparison(a, b)
    assert out["n"] == n and out["t_p"] is None and out["wilcoxon_p"] is None
    assert out["note"].startswith("n/a")


def test_constant_and_zero_differences() -> None:
    out = paired_comparison({1: 71.0, 2: 72.0, 3: 73.0}, {1: 70.0, 2: 71.0, 3: 72.0})
    assert out["t_p"] is None and "constant" in out["note"]  # zero variance: no t statistic
    assert out["wilcoxon_p"] == pytest.approx(0.25)
    same = paired_comparison({1: 70.0, 2: 71.0}, {1: 70.0, 2: 71.0})
    assert same["mean_diff"] == 0 and same["wilcoxon_p"] == 1.0 and same["n_nonzero"] == 0


def test_float_noise_counts_as_a_tie() -> None:
    # 0.1 + 0.2 - 0.3 is not 0 in floating point; scores from the same fold must still give an exact zero.
    out = paired_comparison({1: 0.1 + 0.2, 2: 5.0, 3: 7.0}, {1: 0.3, 2: 4.0, 3: 5.0})
    assert out["diffs"][0] == 0.0 and out["n_nonzero"] == 2 and "zero difference" in out["note"]


def test_limits_note_states_the_floor() -> None:
    assert min_wilcoxon_p(6) == pytest.approx(0.03125) and min_wilcoxon_p(5) == pytest.approx(0.0625)
    note = limits_note([5, 6])
    assert "2/32 = 0.0625 for n=5" in note and "2/64 = 0.03125 for n=6" in note
    assert "normal" in note and "not independent" in note
