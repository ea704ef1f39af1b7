"""Data-parallel training with 2 CPU processes (gloo): every test clip is counted exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests_helpers import compose_eval, compose_train

from cfnsr.tasks.evaluate import evaluate
from cfnsr.tasks.train import train

pytestmark = pytest.mark.slow


def test_ddp_spawn_metrics_cover_each_test_clip_once(tiny_data_dir: Path, tmp_path: Path):
    # fold 3 tests actors 5 and 6: 120 clips, which 2 ranks x eval batch 32 would pad to 128 with the default sampler.
    cfg = compose_train(["trainer=ddp_spawn", "trainer.devices=2", "trainer.max_epochs=1", "protocol=paper",
                         "fold=3", "fusion=concat_fc", "trainer.enable_progress_bar=false"],
                        tiny_data_dir, tmp_path / "ddp")
    record = train(cfg)
    assert record["status"] == "finished"
    # The corpus identity comes from the task (not from the main process's data module, never set up under spawn).
    assert record["corpus_fingerprint"] and record["cache_dir"] == str(Path(cfg.data.cache_dir).resolve())
    for tag in ("test", "test_last"):
        assert record[tag]["n"] == 120
        assert [sum(row) for row in record[tag]["confusion"]] == [8] + [16] * 7  # per actor: 4 neutral, 8 others
    # The same checkpoint tested on one process gives the same numbers as the two-rank test.
    single = evaluate(compose_eval([f"ckpt_path={record['best_ckpt']}"], tmp_path / "eval", tiny_data_dir))
    assert single["test"]["confusion"] == record["test"]["confusion"]
    assert single["test"]["war"] == pytest.approx(record["test"]["war"], abs=1e-6)
