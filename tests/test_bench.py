"""Smoke tests of the benchmarks in bench/: each core function runs on a tiny setting and reports positive rates.

No wall-clock assertions: the numbers depend on the machine; only that every path/variant ran is checked.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name: str) -> ModuleType:
    """Import bench/<name>.py by path (bench/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_random_resized_crop_box_matches_torchvision_rules() -> None:
    """Boxes stay inside the frame; scale (0.8, 1.4) sometimes fails 10 times and falls back to the whole frame."""
    import numpy as np

    loader = _load("loader")
    rng = np.random.default_rng(0)
    boxes = [loader.random_resized_crop_box(224, 224, rng) for _ in range(2000)]
    for top, left, h, w in boxes:
        assert 0 <= top and 0 <= left and 0 < h and 0 < w and top + h <= 224 and left + w <= 224
    assert any(b == (0, 0, 224, 224) for b in boxes)
    assert any(b[2] * b[3] < 0.85 * 224 * 224 for b in boxes)


@pytest.mark.slow
def test_loader_bench_runs(tmp_path: Path) -> None:
    loader = _load("loader")
    args = loader.parser().parse_args([
        "--clips", "4", "--batch", "2", "--workers", "1", "--epochs", "1", "--batches", "1", "--frames", "6",
        "--size", "32", "--width", "160", "--height", "90", "--device", "cpu", "--quiet",
    ])
    rows = loader.run(args)
    paths = [r["path"] for r in rows]
    assert paths[0].startswith("baseline") and "ours mmap" in paths and "ours memory" in paths
    for r in rows:
        assert r["clips"] == 2 and r["clips_per_s"] > 0 and math.isfinite(r["ratio"])
    assert "ours mmap" in loader.format_table(rows)


def test_train_step_bench_runs() -> None:
    bench = _load("train_step")
    args = bench.parser().parse_args([
        "--backbone", "tiny", "--fusion", "cfnsr", "--batch", "2", "--frames", "4", "--size", "32", "--steps", "1",
        "--warmup", "1", "--variants", "fp32,channels_last", "--no-compile", "--device", "cpu", "--quiet",
    ])
    rows = bench.run(args)
    assert [r["variant"] for r in rows][:2] == ["fp32", "channels_last"]
    for r in rows:
        assert r["clips_per_s"] > 0 and r["ms_per_step"] > 0 and r["gflop_per_step"] > 0
        assert r["peak_mem_mb"] >= 0 and r["speedup"] > 0
    assert "fp32" in bench.format_table(rows)


def test_face_detector_bench_compares_detectors_against_landmark_boxes(tmp_path: Path, capsys) -> None:
    from cfnsr.data.synthetic import generate_corpus

    root = generate_corpus(tmp_path / "corpus", workers=0, progress=False, actors=1, clips_per_actor=2)
    bench = _load("face_detector")
    assert bench.main(["--root", str(root), "--actors", "1", "--frames", "4", "--detectors", "haar,blazeface"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[2:4]}
    assert set(rows) == {"haar", "blazeface"}
    found, iou = float(rows["blazeface"][1]), float(rows["blazeface"][4])
    assert found == 100.0 and 0.6 < iou <= 1.0  # the drawn faces are found, on the landmark box
    with pytest.raises(SystemExit):
        bench.main(["--root", str(root), "--detectors", "dlib"])
