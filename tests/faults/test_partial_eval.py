"""Partial and mismatched evaluations never pass for results; robustness is compared across fusions.

An evaluation of a subset of the test split (``trainer.limit_test_batches``, ``fast_dev_run``) used to write the
same files as a whole one, and the robustness report grouped checkpoints by their whole recipe, so every fusion got
a block of its own and effective robustness (a fit across fusions) was never computed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from tests_helpers import compose_eval, compose_train

from cfnsr.report.collect import collect_runs
from cfnsr.report.robustness import build_robustness, collect_robustness
from cfnsr.robustness.suite import checkpoint_meta, parse_suite, robustness_document, write_outputs
from cfnsr.tasks.evaluate import evaluate
from cfnsr.tasks.train import train

TRAIN = ["fusion=averaging", "measure_gflops=false", "fold=2", "trainer.max_epochs=1", "data.eval_batch_size=4"]
SUITE = ["robustness=default", "~robustness.corruptions", "+robustness.corruptions.audio_removed=null"]


@pytest.fixture(scope="module")
def trained(tiny_data_dir: Path, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("trained")
    return train(compose_train(TRAIN, tiny_data_dir, out))


@pytest.mark.slow
def test_limited_evaluation_is_marked_and_skipped_by_both_reports(trained: dict, tmp_path: Path,
                                                                  tiny_data_dir: Path) -> None:
    out = tmp_path / "eval"
    record = evaluate(compose_eval([f"ckpt_path={trained['last_ckpt']}", "+trainer.limit_test_batches=1", *SUITE],
                                   out, tiny_data_dir))
    total = trained["test"]["split_clips"]
    assert total > 4 and record["test"]["n"] == 4
    assert record["partial"] == f"trainer.limit_test_batches=1, 4 of {total} test clips"
    saved = json.loads((out / "test.json").read_text())
    assert saved["partial"] == record["partial"]
    assert json.loads((out / "evaluation.json").read_text())["partial"] == record["partial"]
    assert json.loads((out / "robustness.json").read_text())["meta"]["partial"] == record["partial"]

    rob_runs, rob_skipped = collect_robustness([out])
    assert rob_runs == [] and "partial evaluation (trainer.limit_test_batches=1" in rob_skipped[0][1]
    runs, skipped = collect_runs([out])
    assert runs == [] and [s.reason for s in skipped] == [
        f"partial evaluation ({record['partial']}) of checkpoint {Path(trained['last_ckpt']).resolve()} "
        f"(run {trained['run_id']}, epoch 0): a check, not a result"]


@pytest.mark.slow
def test_whole_evaluation_is_not_partial_and_names_its_checkpoint(trained: dict, tmp_path: Path,
                                                                   tiny_data_dir: Path) -> None:
    out = tmp_path / "eval"
    record = evaluate(compose_eval([f"ckpt_path={trained['last_ckpt']}"], out, tiny_data_dir))
    assert record["partial"] is None and record["test"]["n"] == record["test"]["split_clips"]
    assert record["test"]["n"] == trained["test"]["n"]
    saved = json.loads((out / "test.json").read_text())
    assert saved["checkpoint"] == {"path": str(Path(trained["last_ckpt"]).resolve()), "run_id": trained["run_id"],
                                   "epoch": 0}


def _fusion_doc(tmp: Path, fusion: str, clean: float, relative: float, extra: list[str] = ()) -> Path:
    """A robustness.json whose meta comes from the real composed config of ``fusion`` (as evaluate writes it)."""
    cfg = compose_train([f"fusion={fusion}", *extra], tmp / "data", tmp / fusion)
    ckpt = {"cfnsr_config": OmegaConf.to_container(cfg, resolve=True), "cfnsr_run_id": f"run-{fusion}-{len(extra)}"}
    suite = parse_suite({"seed": 0, "corruptions": {"audio_noise": [10, 0]}})
    meta = {**checkpoint_meta(ckpt, tmp / fusion / "last.ckpt", suite), "partial": None}
    n = 20
    rows = [{"corruption": "audio_noise", "level": lv, "war": w, "uar": w, "f1": w, "n": n, "relative": None}
            for lv, w in ((10.0, relative), (0.0, relative - 0.1))]
    out = tmp / f"{fusion}-{len(extra)}"
    write_outputs(out, robustness_document(meta, {"war": clean, "uar": clean, "f1": clean, "n": n,
                                                  "split_clips": n}, rows))
    return out


def test_robustness_block_spans_fusions_of_one_recipe(tmp_path: Path) -> None:
    """Averaging, concat_fc and CFN-SR trained alike share one block, so effective robustness is computed."""
    dirs = [_fusion_doc(tmp_path, f, c, r) for f, c, r in
            (("averaging", 0.5, 0.45), ("concat_fc", 0.6, 0.5), ("cfnsr", 0.7, 0.62))]
    metas = [json.loads((d / "robustness.json").read_text())["meta"] for d in dirs]
    assert len({m["recipe_hash"] for m in metas}) == 3  # the fusions' recipes differ ...
    assert len({m["table_recipe_hash"] for m in metas}) == 1  # ... only in their row keys
    runs, skipped = collect_robustness(dirs)
    assert skipped == []
    (block,) = build_robustness(runs)
    assert sorted(r.fusion for r in block.rows) == ["averaging", "cfnsr", "concat_fc"]
    assert all(r.effective is not None for r in block.rows)
    # another training recipe (learning rate) never shares the block
    other = _fusion_doc(tmp_path, "cfnsr", 0.65, 0.6, ["optimizer.lr=0.01"])
    runs, _ = collect_robustness([*dirs, other])
    assert sorted(len(b.rows) for b in build_robustness(runs)) == [1, 3]


def test_robustness_file_with_a_clip_count_unlike_its_split_is_skipped(tmp_path: Path) -> None:
    d = _fusion_doc(tmp_path, "averaging", 0.5, 0.45)
    doc = json.loads((d / "robustness.json").read_text())
    doc["rows"][1]["n"] = 12  # a condition evaluated on part of the split
    (d / "robustness.json").write_text(json.dumps(doc))
    runs, skipped = collect_robustness([d])
    assert runs == [] and "clip counts differ from the test split's 20 clips (audio_noise 0.0: 12)" in skipped[0][1]
