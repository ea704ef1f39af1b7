"""bench/demo_time.py: stage times read from a demo run's train.log (no timing assertion: it is not a timed test)."""

from __future__ import annotations

import importlib.util
import sys
from datetime import datetime
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "demo_time.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_demo_time", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


LOG = """[2026-12-04 10:00:05,000][stdout][INFO] - ├── data
[2026-12-04 10:00:06,000][stdout][INFO] - Generating the synthetic RAVDESS-format corpus in /d/synthetic_interactions ...
[2026-12-04 10:00:50,000][stdout][INFO] - preprocess: 768 usable clip(s) in /d/c (768 new, 0 already cached), 0 skipped of 768 mp4, 14.0 s
[2026-12-04 10:01:30,500][pytorch_lightning.utilities.rank_zero][INFO] - `Trainer.fit` stopped: `max_epochs=12` reached.
"""


def test_stages_from_the_log():
    started = datetime(2026, 12, 4, 10, 0, 0).timestamp()
    out = _bench().stages(LOG.splitlines(), started, started + 95.0)
    assert out == pytest.approx({"start-up": 5.0, "config and folders": 1.0, "generation": 30.0,
                                 "preprocessing": 14.0, "training": 40.5, "test + summary": 4.5, "total": 95.0})
    assert sum(v for k, v in out.items() if k != "total") == pytest.approx(out["total"])  # the stages add up


def test_a_corpus_that_existed_has_no_generation_stage():
    lines = [line for line in LOG.splitlines() if "Generating" not in line]
    started = datetime(2026, 12, 4, 10, 0, 0).timestamp()
    assert "generation" not in _bench().stages(lines, started, started + 95.0)
