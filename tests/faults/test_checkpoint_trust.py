"""A checkpoint's saved config is data: evaluate.py, predict.py and the crop-gap tool rebuild a model only from the
project's own classes, and take paths and run options from the command, never from the checkpoint.

Before: a checkpoint whose config nested a ``_target_`` naming an ordinary callable ran it (here: ``open(marker,
"w")`` creates a file), although the file passed ``weights_only=True``; a checkpoint saved by a run launched with
``preprocess.force=true`` made every evaluation wipe and rebuild the cache; a checkpoint's ``data.root`` and
``data.generate`` made evaluate write a synthetic corpus wherever the checkpoint said.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from tests_helpers import compose_eval, compose_train

from cfnsr.builders.checkpoint_config import CheckpointConfigError, check_saved_config
from cfnsr.predict.detector_gap import detector_gap
from cfnsr.predict.model import load_predictor
from cfnsr.tasks.evaluate import evaluate
from cfnsr.tasks.train import train

pytestmark = pytest.mark.slow
FAST = ["fusion=averaging", "measure_gflops=false", "fold=2", "trainer.max_epochs=1"]


@pytest.fixture(scope="module")
def finished(tiny_data_dir: Path, tmp_path_factory) -> dict:
    return train(compose_train(FAST, tiny_data_dir, tmp_path_factory.mktemp("finished")))


def _crafted(like: str | Path, path: Path, **changes: Any) -> Path:
    """A copy of a real checkpoint whose saved config has ``changes`` (dotted key -> value) applied."""
    ckpt = torch.load(like, weights_only=True)
    for key, value in changes.items():
        node = ckpt["cfnsr_config"]
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    torch.save(ckpt, path)
    return path


def _open_marker(marker: Path) -> dict[str, Any]:
    """A config node that, instantiated, creates ``marker`` (``open(marker, "w")``): the stand-in for foreign code."""
    return {"_target_": "builtins.open", "_args_": [str(marker), "w"]}


# ---------------------------------------------------------------- no code runs from a saved config
@pytest.mark.parametrize("key", ["fusion.model.extra", "augment"])
def test_evaluate_refuses_a_nested_target_and_runs_no_code(finished, tiny_data_dir, tmp_path, key):
    marker = tmp_path / "pwned"
    evil = _crafted(finished["best_ckpt"], tmp_path / "evil.ckpt", **{key: _open_marker(marker)})
    with pytest.raises(CheckpointConfigError, match=re.escape(f"{key}._target_: 'builtins.open'")):
        evaluate(compose_eval([f"ckpt_path={evil}"], tmp_path / "eval", tiny_data_dir))
    assert not marker.exists()


def test_predict_and_detector_gap_refuse_a_nested_target_and_run_no_code(finished, tiny_data_dir, tmp_path):
    marker = tmp_path / "pwned"
    evil = _crafted(finished["best_ckpt"], tmp_path / "evil.ckpt", **{"fusion.model.extra": _open_marker(marker)})
    with pytest.raises(CheckpointConfigError, match=r"fusion\.model\.extra\._target_"):
        load_predictor(evil)
    with pytest.raises(CheckpointConfigError, match=r"fusion\.model\.extra\._target_"):
        detector_gap(evil, root=str(tiny_data_dir / "synthetic_legacy"),
                 cache_dir=str(tiny_data_dir / "synthetic_legacy_cache"), progress=False)
    assert not marker.exists()


def test_a_known_class_under_another_name_and_interpolations_are_refused(finished, tiny_data_dir, tmp_path):
    # The fusion named averaging must be averaging's class; a resolver is code too.
    other = _crafted(finished["best_ckpt"], tmp_path / "other.ckpt",
                     **{"fusion.model._target_": "cfnsr.models.fusion.cfnsr.CFNSR"})
    with pytest.raises(CheckpointConfigError, match=r"fusion\.model\._target_: 'cfnsr\.models\.fusion\.cfnsr\.CFNSR' "
                                                    r"is not a class of fusion/averaging\.yaml"):
        evaluate(compose_eval([f"ckpt_path={other}"], tmp_path / "eval", tiny_data_dir))
    interp = _crafted(finished["best_ckpt"], tmp_path / "interp.ckpt", **{"data.frames": "${oc.env:HOME}"})
    with pytest.raises(CheckpointConfigError, match=r"data\.frames: an interpolation"):
        load_predictor(interp)


def test_a_users_own_fusion_on_the_search_path_is_known(finished, tmp_path):
    conf = tmp_path / "conf" / "fusion"
    conf.mkdir(parents=True)
    (conf / "my_average.yaml").write_text(
        "name: my_average\nstage: Late\nmodel:\n  _target_: cfnsr.models.fusion.averaging.Averaging\n")
    saved = torch.load(finished["best_ckpt"], weights_only=True)["cfnsr_config"]
    saved["fusion"] = {"name": "my_average", "stage": "Late",
                       "model": {"_target_": "cfnsr.models.fusion.averaging.Averaging"}}
    check_saved_config(saved, "ckpt", [f"file://{tmp_path / 'conf'}"])
    with pytest.raises(CheckpointConfigError, match=r"fusion\.model\._target_.*no such fusion"):
        check_saved_config(saved, "ckpt", [])


# ---------------------------------------------------------------- paths and run options come from the command
def _stat(cache: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of every cache entry file and of settings.json (the preprocessing report may be refreshed: the
    corpus was copied to another root)."""
    files = [cache / "settings.json", *sorted((cache / "clips").rglob("*"))]
    return {str(p.relative_to(cache)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in files if p.is_file()}


def test_a_checkpoint_saved_with_preprocess_force_does_not_rebuild_the_cache(finished, tiny_data_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)  # a private corpus and cache: this test must not touch the shared one
    root, cache = data / "synthetic_legacy", data / "synthetic_legacy_cache"
    forced = _crafted(finished["best_ckpt"], tmp_path / "forced.ckpt", **{
        "preprocess.force": True, "preprocess.workers": 0, "data.root": str(root), "data.cache_dir": str(cache)})
    before = _stat(cache)
    assert len(before) > 100
    result = evaluate(compose_eval([f"ckpt_path={forced}"], tmp_path / "eval", data))
    assert result["test"]["war"] == pytest.approx(finished["test"]["war"], abs=1e-6)
    assert _stat(cache) == before  # no entry rewritten: same inodes, same modification times


def test_a_checkpoints_data_root_and_generator_are_never_written(finished, tiny_data_dir, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    moved = _crafted(finished["best_ckpt"], tmp_path / "moved.ckpt", **{
        "data.root": str(elsewhere), "data.cache_dir": str(tmp_path / "elsewhere_cache")})
    result = evaluate(compose_eval([f"ckpt_path={moved}"], tmp_path / "eval", tiny_data_dir))
    assert result["test"]["n"] == finished["test"]["n"]
    assert not elsewhere.exists() and not (tmp_path / "elsewhere_cache").exists()
    # Trained on another synthetic corpus than the one at the command's root: refused, nothing generated.
    ckpt = torch.load(finished["best_ckpt"], weights_only=True)
    other = _crafted(finished["best_ckpt"], tmp_path / "other.ckpt",
                     **{"data.generate": {**ckpt["cfnsr_config"]["data"]["generate"], "seed": 7}})
    with pytest.raises(CheckpointConfigError, match=r"another synthetic corpus.*seed: checkpoint 7 vs corpus 0"):
        evaluate(compose_eval([f"ckpt_path={other}"], tmp_path / "eval2", tiny_data_dir))
