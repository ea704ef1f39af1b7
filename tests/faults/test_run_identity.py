"""What is "the same run" and "the same recipe": effective batch, initialisation provenance and code version.

Before: a resume on twice the devices (twice the clips per optimiser step) continued silently; report rows pooled
runs of different effective batches, of differently trained initialisations (the recipe kept only "init was set"),
and of different code versions without saying so; with ``batch_sum_attention=true`` (eval logits depend on the batch)
runs evaluated with different eval batches shared a recipe.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf
from tests_helpers import compose_train

from cfnsr.report import build_report, collect_runs, format_markdown
from cfnsr.runs.folder import RunFolderError, plan_resume
from cfnsr.runs.recipe import recipe_hash, training_recipe
from cfnsr.runs.record import write_record

N = 240


# ---------------------------------------------------------------- resume compares the effective batch
def _interrupted(tmp_path: Path, overrides: list[str]) -> Path:
    """A run folder as an interrupted run leaves it: a running record and its last.ckpt (weights irrelevant here)."""
    cfg = compose_train(overrides, tmp_path / "data", tmp_path / "run")
    run_id = uuid.uuid4().hex[:16]
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    torch.save({"state_dict": {}, "epoch": 0, "cfnsr_format": 1, "cfnsr_run_id": run_id,
                "cfnsr_config": OmegaConf.to_container(cfg, resolve=True)}, last)
    write_record(tmp_path / "run", {"run_id": run_id, "status": "running"})
    return last


def test_resume_refuses_another_effective_batch_naming_the_key(tmp_path):
    last = _interrupted(tmp_path, [])
    launch = tmp_path / "launch"
    with pytest.raises(RunFolderError, match=r"effective_batch: 16 vs 32 \(trainer\.devices: 1 vs 2\)"):
        plan_resume(compose_train(["trainer.devices=2"], tmp_path / "data", launch), last)
    with pytest.raises(RunFolderError, match=r"effective_batch: 16 vs 64 \(trainer\.accumulate_grad_batches: 1 vs 4\)"):
        plan_resume(compose_train(["+trainer.accumulate_grad_batches=4", "resume.allow=[trainer.accumulate_grad_batches]"],
                                  tmp_path / "data", launch), last)
    # Same clips per step on twice the devices, or an explicit allowance: accepted.
    plan_resume(compose_train(["trainer.devices=2", "data.batch_size=8", "resume.allow=[data.batch_size]"],
                              tmp_path / "data", launch), last)
    plan_resume(compose_train(["trainer.devices=2", "resume.allow=[effective_batch]"], tmp_path / "data", launch), last)


# ---------------------------------------------------------------- batch-dependent evaluation is recipe
def test_batch_sum_attention_makes_eval_batch_and_devices_recipe(tmp_path):
    def recipe(*overrides: str) -> dict[str, Any]:
        cfg = compose_train(["fusion=cfnsr", *overrides], tmp_path / "data", tmp_path / "out")
        return training_recipe(OmegaConf.to_container(cfg, resolve=True))

    on = recipe("fusion.model.batch_sum_attention=true")
    assert on["data.eval_batch_size"] == 32 and on["trainer.devices"] == 1 and on["trainer.num_nodes"] == 1
    assert recipe_hash(on) != recipe_hash(recipe("fusion.model.batch_sum_attention=true", "data.eval_batch_size=8"))
    off = recipe()
    assert "data.eval_batch_size" not in off and "trainer.devices" not in off
    assert recipe_hash(off) == recipe_hash(recipe("data.eval_batch_size=8"))  # off: an execution detail


# ---------------------------------------------------------------- the report's rows
def _record(run_dir: Path, fold: int, correct: int, **fields: Any) -> None:
    cfg = {"fold": fold, "seed": 1, "data": {"name": "synthetic", "batch_size": 16},
           "protocol": {"name": "clean"}, "backbone": {"name": "tiny"},
           "fusion": {"name": "cfnsr", "model": {"_target_": "cfnsr.models.fusion.cfnsr.CFNSR"}},
           "model": {"init": {"weights": "/x.ckpt" if fields.get("init_sources") else None}},
           "trainer": {"max_epochs": 2}}
    recipe = training_recipe(cfg)
    war = correct / N
    write_record(run_dir, {
        "status": "finished", "run_dir": str(run_dir), "dataset": "synthetic", "backbone": "tiny", "fusion": "cfnsr",
        "fusion_stage": "Model", "protocol": "clean", "fold": fold, "seed": 1, "test_actors": [fold],
        "test": {"war": war, "uar": war, "f1": war, "n": N}, "recipe": recipe, "recipe_hash": recipe_hash(recipe),
        "run_id": uuid.uuid4().hex, "finished_at": "2026-01-01T00:00:00+00:00", **fields})


V1 = {"package": "0.1.0", "commit": "a" * 40, "dirty": False}
V2 = {"package": "0.1.0", "commit": "b" * 40, "dirty": True}


def test_rows_split_by_effective_batch_and_init_provenance(tmp_path):
    for fold in (1, 2):
        _record(tmp_path / f"b16_{fold}", fold, 150, effective_batch=16, code_version=V1)
        _record(tmp_path / f"b32_{fold}", fold, 170, effective_batch=32, code_version=V1)
        for h in ("aaaaaaaaaaaa", "bbbbbbbbbbbb"):
            _record(tmp_path / f"init{h[0]}_{fold}", fold, 160, effective_batch=16, code_version=V1,
                    init_sources={"weights": {"run_id": f"src{h[0]}{fold}", "recipe_hash": h}})
    runs, _ = collect_runs([tmp_path])
    report = build_report(runs)
    (table,) = report.groups
    rows = table.rows_for("cfnsr")
    assert len(rows) == 4 and all(r.n_runs == 2 for r in rows)
    assert sorted((r.effective_batch, r.init_provenance or "") for r in rows) == [
        (16, ""), (16, "weights=aaaaaaaaaaaa"), (16, "weights=bbbbbbbbbbbb"), (32, "")]
    by_label = {r.label: r for r in rows}
    assert any("effective_batch=32" in label for label in by_label)
    assert any("init_provenance=weights=bbbbbbbbbbbb" in label for label in by_label)
    (row_a,) = [r for r in rows if r.init_provenance == "weights=aaaaaaaaaaaa"]
    assert row_a.init_runs == ["weights=srca1", "weights=srca2"]
    assert "initialised from run(s) weights=srca1, weights=srca2" in format_markdown(report)


def test_rows_state_their_code_versions_and_mark_mixed_ones(tmp_path):
    _record(tmp_path / "r1", 1, 150, effective_batch=16, code_version=V1)
    _record(tmp_path / "r2", 2, 160, effective_batch=16, code_version=V2)
    _record(tmp_path / "r3", 3, 170, effective_batch=16, code_version=V1)
    runs, _ = collect_runs([tmp_path])
    report = build_report(runs)
    (row,) = report.groups[0].rows
    assert row.n_runs == 3 and row.mixed_code_versions
    assert row.code_versions == ["0.1.0@aaaaaaaaaaaa", "0.1.0@bbbbbbbbbbbb+dirty"]
    md = format_markdown(report)
    assert "CFN-SR [mixed code versions]" in md and "MIXED CODE VERSIONS: CFN-SR pools runs of 2 code versions" in md
    # One version everywhere: stated once, nothing marked.
    for r in ("r2",):
        rec = json.loads((tmp_path / r / "metrics.json").read_text())
        (tmp_path / r / "metrics.json").write_text(json.dumps({**rec, "code_version": V1}))
    runs, _ = collect_runs([tmp_path])
    md = format_markdown(build_report(runs))
    assert "Code version of every run: 0.1.0@aaaaaaaaaaaa." in md and "mixed code versions" not in md.lower()


# ---------------------------------------------------------------- records and checkpoints carry the code version
@pytest.mark.slow
def test_records_and_checkpoints_carry_the_code_version_and_effective_batch(tiny_data_dir, tmp_path, monkeypatch):
    from cfnsr.runs import provenance
    from cfnsr.tasks.train import train

    record = train(compose_train(["fusion=averaging", "measure_gflops=false", "trainer.max_epochs=1"], tiny_data_dir,
                                 tmp_path / "run"))
    version = record["code_version"]
    assert set(version) == {"package", "commit", "dirty"} and version["package"]
    ckpt = torch.load(record["best_ckpt"], weights_only=True)
    assert ckpt["cfnsr_code_version"] == version
    assert record["effective_batch"] == 16
    # git absent: null fields, no crash
    provenance.code_version.cache_clear()
    monkeypatch.setenv("PATH", str(tmp_path))
    try:
        assert provenance.code_version() == {"package": version["package"], "commit": None, "dirty": None}
    finally:
        provenance.code_version.cache_clear()
