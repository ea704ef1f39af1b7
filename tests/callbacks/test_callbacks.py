"""The callbacks of a training run come from conf/callbacks/ and get the run's folder and id from the module."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf
from tests_helpers import make

from cfnsr.callbacks import RunEndCallback, run_end
from cfnsr.callbacks.run_checkpoints import RunCheckpoints
from cfnsr.callbacks.wandb_summary import WandbSummary

CONF = Path(__file__).resolve().parents[2] / "conf" / "callbacks" / "default.yaml"


class _Module:
    run_dir: Path | None = None
    run_id: str | None = None


class _Trainer:
    def __init__(self, loggers: list) -> None:
        self.loggers = loggers


def test_default_callbacks_instantiate_from_config():
    cbs = [instantiate(c) for c in OmegaConf.load(CONF).values()]
    assert [type(c) for c in cbs] == [RunCheckpoints, WandbSummary]
    assert cbs[0].monitor == "val/war" and cbs[0].mode == "max"


def test_run_checkpoints_take_folder_and_id_from_the_module(tmp_path: Path):
    module = _Module()
    module.run_dir, module.run_id = tmp_path, "run-1"
    cb = make("callbacks", "default", "run_checkpoints")
    cb.setup(None, module, "fit")
    assert cb.dirpath == tmp_path / "checkpoints" and cb.run_id == "run-1"
    with pytest.raises(RuntimeError, match="run_dir"):
        make("callbacks", "default", "run_checkpoints").setup(None, _Module(), "fit")


def test_run_end_reaches_only_run_end_callbacks():
    seen = []

    class Probe(RunEndCallback):
        def on_run_end(self, record):
            seen.append(record["status"])

    run_end([Probe(), make("callbacks", "default", "run_checkpoints"), object()], {"status": "finished"})
    assert seen == ["finished"]


def test_wandb_summary_does_nothing_without_a_wandb_logger(monkeypatch):
    import wandb

    monkeypatch.setattr(wandb, "finish", lambda: pytest.fail("wandb.finish called without a wandb logger"))
    cb = WandbSummary(class_names=None, log_model=False)
    cb.setup(_Trainer([]), _Module(), "fit")
    cb.on_run_end({"status": "finished", "test": {"war": 0.5}})
