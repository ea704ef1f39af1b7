"""cfnsr.runs.renames: old names keep working on the command line, in checkpoints and in recipes.

Renamed: fusion ``multiplication`` -> ``prob_product`` and ``multiplicative`` -> ``multiplicative_loss`` (classes
``ProbProduct``, ``MultiplicativeLoss``), the ``model`` group -> ``init`` (``model.init.*`` -> ``init.*``;
``model.compile`` / ``model.channels_last`` -> ``speed.*``), ``complexity`` -> ``measure_gflops``.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf
from tests_helpers import compose_eval, compose_train

from cfnsr.runs import renames
from cfnsr.runs.checkpoint_files import load_checkpoint
from cfnsr.runs.recipe import recipe_hash, training_recipe
from cfnsr.runs.renames import FUSION_NAMES, FUSION_TARGETS, current_config, rename_overrides

ROOT = Path(__file__).resolve().parents[2]
OLD_TARGETS = {new: old for old, new in FUSION_TARGETS.items()}


def as_old(cfg: dict[str, Any]) -> dict[str, Any]:
    """A resolved config of today written with the names of a44e97e (by hand, not through cfnsr.runs.renames)."""
    old = copy.deepcopy(cfg)
    old["complexity"] = old.pop("measure_gflops")
    speed = old.pop("speed")
    old["model"] = {"init": old.pop("init"), "compile": speed["compile"], "channels_last": speed["channels_last"]}
    fusion = old["fusion"]
    fusion["name"] = {"prob_product": "multiplication", "multiplicative_loss": "multiplicative"}.get(
        fusion["name"], fusion["name"])
    fusion["model"]["_target_"] = OLD_TARGETS.get(fusion["model"]["_target_"], fusion["model"]["_target_"])
    return old


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(renames, "_warned", set())


@pytest.mark.parametrize("overrides", [
    ["fusion=prob_product"],
    ["fusion=multiplicative_loss", "init.video=/runs/v/fold1.ckpt", "speed.compile=true", "measure_gflops=false"],
    ["fusion=msaf", "init.from_runs=/runs/stage1", "speed.channels_last=true"],
])
def test_a_run_under_the_new_names_has_the_recipe_hash_of_the_old_names(overrides: list[str], tmp_path: Path):
    cfg = compose_train(overrides, tmp_path, tmp_path / "out")
    new = OmegaConf.to_container(cfg, resolve=True)
    old = as_old(new)
    assert "model" not in new and "model" in old  # really two shapes
    assert training_recipe(new) == training_recipe(old)
    assert recipe_hash(training_recipe(new)) == recipe_hash(training_recipe(old))
    # and the recipe still tells the renamed settings apart (an init checkpoint is part of it)
    if any(o.startswith("init.") for o in overrides):
        plain = as_old(OmegaConf.to_container(compose_train([], tmp_path, tmp_path / "out"), resolve=True))
        assert recipe_hash(training_recipe(old)) != recipe_hash(training_recipe(plain))


def test_old_overrides_are_rewritten_with_one_warning_per_old_name():
    args = ["-m", "fusion=multiplication,multiplicative,msaf", "fusion=choice(multiplicative, cfnsr)",
            "model.init.video=/x.ckpt", "+model.init.weights=/w.ckpt", "model.compile=true", "~model.channels_last",
            "complexity=false", "data.root=/data/multiplication", "complexity_x=1", "trainer.max_epochs=2"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = rename_overrides(args)
    assert out == ["-m", "fusion=prob_product,multiplicative_loss,msaf", "fusion=choice(multiplicative_loss, cfnsr)",
                   "init.video=/x.ckpt", "+init.weights=/w.ckpt", "speed.compile=true", "~speed.channels_last",
                   "measure_gflops=false", "data.root=/data/multiplication", "complexity_x=1", "trainer.max_epochs=2"]
    messages = [str(w.message) for w in caught]
    assert len(messages) == 6  # multiplication, multiplicative, model.init (used twice), model.compile,
    # model.channels_last, complexity: once each
    assert any("'multiplication' is deprecated, use 'prob_product'" in m for m in messages)
    assert any("'model.init' is deprecated, use 'init'" in m for m in messages)
    assert any("'complexity' is deprecated, use 'measure_gflops'" in m for m in messages)
    assert all(issubclass(w.category, FutureWarning) for w in caught)
    assert rename_overrides(["fusion=prob_product", "init.video=x"]) == ["fusion=prob_product", "init.video=x"]


def test_the_command_line_accepts_the_old_names():
    """``python train.py`` with every old name composes the config of the new names, warning about each."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "train.py", "fusion=multiplicative", "model.init.video=/x.ckpt",
                          "model.compile=true", "complexity=false", "--cfg", "job"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    cfg = OmegaConf.create(res.stdout)
    assert (cfg.fusion.name, cfg.fusion.model._target_) == (
        "multiplicative_loss", "cfnsr.models.fusion.multiplicative_loss.MultiplicativeLoss")
    assert (cfg.init.video, cfg.speed.compile, cfg.measure_gflops) == ("/x.ckpt", True, False)
    assert "model" not in cfg and "complexity" not in cfg
    for old, new in (("multiplicative", "multiplicative_loss"), ("model.init", "init"),
                     ("model.compile", "speed.compile"), ("complexity", "measure_gflops")):
        assert f"'{old}' is deprecated, use '{new}'" in res.stderr


def test_a_saved_config_with_old_names_reads_under_the_new_ones():
    saved = {"complexity": True, "fusion": {"name": "multiplication", "display": "Multiplication",
                                            "model": {"_target_": "cfnsr.models.fusion.multiplication.Multiplication"}},
             "model": {"init": {"video": None, "weights": "/w.ckpt"}, "compile": False, "channels_last": True}}
    before = copy.deepcopy(saved)
    now = current_config(saved)
    assert saved == before  # a copy
    assert now == {"measure_gflops": True,
                   "fusion": {"name": "prob_product", "display": "Multiplication",
                              "model": {"_target_": "cfnsr.models.fusion.prob_product.ProbProduct"}},
                   "init": {"video": None, "weights": "/w.ckpt"}, "speed": {"compile": False, "channels_last": True}}
    assert current_config(now) == now  # current names are left alone
    assert current_config(["not", "a", "mapping"]) == ["not", "a", "mapping"]


def test_every_old_fusion_name_has_a_shipped_new_one():
    from cfnsr.models.fusion.registry import fusion_registry

    registry = fusion_registry()
    for old, new in FUSION_NAMES.items():
        assert old not in registry and new in registry
    assert {registry[n].target for n in FUSION_NAMES.values()} == set(FUSION_TARGETS.values())
    assert [registry[n].display for n in FUSION_NAMES.values()] == ["Multiplication", "Multiplicative"]


@pytest.mark.slow
def test_a_checkpoint_saved_with_old_names_evaluates(tiny_data_dir: Path, tmp_path: Path):
    """A checkpoint whose saved config says fusion=multiplication, model.init.*, model.compile, complexity (as written
    by a44e97e) is read under the new names, rebuilt, evaluated, and keeps its recipe hash."""
    from cfnsr.tasks.evaluate import evaluate
    from cfnsr.tasks.train import train

    record = train(compose_train(["fusion=prob_product", "measure_gflops=false", "trainer.max_epochs=1"],
                                 tiny_data_dir, tmp_path / "run"))
    ckpt = torch.load(record["best_ckpt"], weights_only=True)
    ckpt["cfnsr_config"] = as_old(ckpt["cfnsr_config"])
    old_path = tmp_path / "old.ckpt"
    torch.save(ckpt, old_path)
    assert torch.load(old_path, weights_only=True)["cfnsr_config"]["fusion"]["name"] == "multiplication"
    read = load_checkpoint(old_path, require_run=False)["cfnsr_config"]
    assert read["fusion"]["name"] == "prob_product" and "model" not in read
    assert recipe_hash(training_recipe(read)) == record["recipe_hash"]
    result = evaluate(compose_eval([f"ckpt_path={old_path}"], tmp_path / "eval", tiny_data_dir))
    assert result["test"]["war"] == pytest.approx(record["test"]["war"])


def test_new_keys_name_the_recipe_keys_of_their_first_names():
    """``resume.allow=[init.weights]`` accepts a difference the recipe lists as ``model.init.weights``."""
    from cfnsr.runs.renames import stored_key

    assert [stored_key(k) for k in ("init.weights", "init", "speed.compile", "measure_gflops", "initial.x",
                                    "trainer.max_epochs")] == \
        ["model.init.weights", "model.init", "model.compile", "complexity", "initial.x", "trainer.max_epochs"]


def test_the_old_crop_gap_module_still_runs_and_names_its_new_name():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-m", "cfnsr.predict.crop_gap", "--help"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "cfnsr.predict.crop_gap is deprecated, use cfnsr.predict.detector_gap" in res.stderr
    assert res.stdout.startswith("usage: python -m cfnsr.predict.detector_gap ckpt_path=<ckpt>")
