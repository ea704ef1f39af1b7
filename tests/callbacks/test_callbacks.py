"""The callbacks of a training run come from conf/callbacks/; the run's folder and id come as constructor arguments."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf
from tests_helpers import make

from cfnsr.callbacks import RunEndCallback, run_end
from cfnsr.callbacks.run_checkpoints import RunCheckpoints
from cfnsr.callbacks.wandb_summary import WandbSummary
from cfnsr.tasks.train import Place, configured_callbacks

CONF = Path(__file__).resolve().parents[2] / "conf" / "callbacks" / "default.yaml"


class _Module:
    pass


class _Trainer:
    def __init__(self, loggers: list) -> None:
        self.loggers = loggers


def test_default_callbacks_instantiate_from_config_with_the_run_values_of_the_training_job(tmp_path: Path):
    cfg = OmegaConf.create({"callbacks": OmegaConf.load(CONF)})
    place = Place(run_dir=tmp_path / "run", run_id="run-1", resume_from=None, rank0=True)
    cbs = configured_callbacks(cfg, place)
    assert [type(c) for c in cbs] == [RunCheckpoints, WandbSummary]
    assert cbs[0].monitor == "val/war" and cbs[0].mode == "max"
    assert cbs[0].dirpath == tmp_path / "run" / "checkpoints" and cbs[0].run_id == "run-1"


def test_run_checkpoints_need_their_folder_and_run_id(tmp_path: Path):
    with pytest.raises(TypeError, match="dirpath"):
        make("callbacks", "default", "run_checkpoints", run_id="run-1")
    with pytest.raises(ValueError, match="run_id"):
        make("callbacks", "default", "run_checkpoints", dirpath=tmp_path, run_id=None)


def test_run_end_reaches_only_run_end_callbacks():
    seen = []

    class Probe(RunEndCallback):
        def on_run_end(self, record):
            seen.append(record["status"])

    run_end([Probe(), make("callbacks", "default", "run_checkpoints", dirpath="/nowhere", run_id="run-1"), object()],
            {"status": "finished"})
    assert seen == ["finished"]


def test_wandb_summary_does_nothing_without_a_wandb_logger(monkeypatch):
    import wandb

    monkeypatch.setattr(wandb, "finish", lambda: pytest.fail("wandb.finish called without a wandb logger"))
    cb = WandbSummary(class_names=None, log_model=False)
    cb.setup(_Trainer([]), _Module(), "fit")
    cb.on_run_end({"status": "finished", "test": {"war": 0.5}})
