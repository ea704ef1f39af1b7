"""The report's robustness block: the measures computed by hand on small files; the CLI test is the one rendering
test of its Markdown (robustness.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cfnsr.report.cli import main
from cfnsr.report.robustness import build_robustness, collect_robustness

LEVELS = {"audio_noise": [20, 10, 0], "video_removed": [1]}


def _write(path: Path, fusion: str, fold: int, clean: float, wars: dict[str, list[float]], **meta) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    rows = [{"corruption": c, "level": lv, "war": w, "uar": w, "f1": w, "n": 120, "relative": w / clean}
            for c, ws in wars.items() for lv, w in zip(LEVELS[c], ws, strict=True)]
    data = {"schema": 1, "meta": {"run_id": f"{fusion}-{fold}", "fusion": fusion, "fold": fold, "seed": 1,
                                  "protocol": "clean", "backbone": "tiny", "dataset": "synthetic",
                                  "recipe_hash": "r", **meta},
            "clean": {"war": clean, "uar": clean, "f1": clean, "n": 120}, "rows": rows}
    (path / "robustness.json").write_text(json.dumps(data))
    return path / "robustness.json"


def test_relative_robustness_is_the_normalised_area_under_the_curve(tmp_path):
    _write(tmp_path / "a", "cfnsr", 1, 0.8, {"audio_noise": [0.8, 0.6, 0.4], "video_removed": [0.5]})
    (run,), skipped = collect_robustness([tmp_path])
    assert not skipped
    # points (0, .8) (1/3, .8) (2/3, .6) (1, .4): trapezoids = (.8+.8)/6 + (.8+.6)/6 + (.6+.4)/6 = 4.0/6
    assert run.relative("audio_noise") == pytest.approx(4.0 / 6)
    assert run.relative("video_removed") == pytest.approx((0.8 + 0.5) / 2)
    assert run.relative_mean == pytest.approx((4.0 / 6 + 0.65) / 2)


def test_effective_robustness_is_the_residual_of_the_linear_trend(tmp_path):
    # three strategies whose robustness lies on a line except for msaf, which is 0.1 above it
    for fusion, clean, extra in (("averaging", 0.6, 0.0), ("msaf", 0.7, 0.1), ("cfnsr", 0.8, 0.0)):
        flat = clean / 2 + extra  # every corrupted accuracy equal: relative = (clean + flat) / 2
        _write(tmp_path / fusion, fusion, 1, clean, {"audio_noise": [flat] * 3, "video_removed": [flat]})
    runs, _ = collect_robustness([tmp_path])
    (block,) = build_robustness(runs, order=["averaging", "msaf", "cfnsr"])
    eff = {r.fusion: r.effective for r in block.rows}
    assert [r.fusion for r in block.rows] == ["averaging", "msaf", "cfnsr"]
    assert eff["msaf"] > 0 > eff["averaging"] and sum(eff.values()) == pytest.approx(0.0, abs=1e-12)
    # relative = clean/3 + 2 flat/3 = 2 clean/3 + 2 extra/3: msaf lies d = 0.2/3 above the line; at the mean clean
    # accuracy it leaves the slope alone and lifts the intercept by d/3, so residuals are -d/3, +2d/3, -d/3
    d = 0.2 / 3
    assert eff["msaf"] == pytest.approx(2 * d / 3) and eff["cfnsr"] == pytest.approx(-d / 3)


def test_different_suites_are_separate_blocks_and_means_are_over_folds(tmp_path):
    _write(tmp_path / "f1", "cfnsr", 1, 0.8, {"audio_noise": [0.8, 0.8, 0.8], "video_removed": [0.8]})
    _write(tmp_path / "f2", "cfnsr", 2, 0.6, {"audio_noise": [0.6, 0.6, 0.6], "video_removed": [0.6]})
    _write(tmp_path / "other", "cfnsr", 3, 0.5, {"audio_noise": [0.5, 0.5, 0.5]})
    blocks = build_robustness(collect_robustness([tmp_path])[0])
    assert len(blocks) == 2
    big = next(b for b in blocks if len(b.corruptions) == 2)
    (row,) = big.rows
    assert row.n_runs == 2 and row.folds == [1, 2] and row.relative == pytest.approx(0.7)


def test_report_cli_prints_the_block_and_skips_bad_files(tmp_path, sweep, capsys):
    for fusion, clean in (("averaging", 0.6), ("msaf", 0.7), ("cfnsr", 0.8)):
        _write(tmp_path / "eval" / fusion, fusion, 1, clean, {"audio_noise": [clean] * 3, "video_removed": [0.1]})
    (tmp_path / "eval" / "broken").mkdir()
    (tmp_path / "eval" / "broken" / "robustness.json").write_text('{"schema": 7}')
    out = tmp_path / "out"
    assert main([str(sweep), "--out", str(out), "--robustness", str(tmp_path / "eval")]) == 0
    text = capsys.readouterr().out
    assert "## Robustness" in text and "| CFN-SR | 1 | 1 | 80.00 |" in text
    assert "unsupported robustness schema 7" in text
    assert (out / "robustness_scatter.png").is_file() and (out / "robustness_summary.csv").is_file()
