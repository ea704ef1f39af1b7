"""Weights & Biases: the run's test results in the wandb run summary, and one wandb run per job."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.loggers import WandbLogger

from cfnsr.callbacks.base import RunEndCallback


class WandbSummary(RunEndCallback):
    """With a ``WandbLogger`` among the trainer's loggers: at the end of the run, write the test WAR/UAR/F1 of the
    selected and the last checkpoint and the parameter count into the wandb summary, log the test confusion matrix
    as a table, and finish the wandb run (a multirun starts one wandb run per job). Does nothing without wandb."""

    def __init__(self) -> None:
        self.active = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.active = any(isinstance(lg, WandbLogger) for lg in trainer.loggers)

    def on_run_end(self, record: dict[str, Any]) -> None:
        if not self.active:
            return
        import wandb  # only with a wandb logger configured

        if record.get("status") == "finished" and wandb.run is not None:
            for tag in ("test", "test_last"):
                res = record.get(tag) or {}
                for key in ("war", "uar", "f1"):
                    if key in res:
                        wandb.run.summary[f"{tag}/{key}"] = res[key]
            if record.get("test"):
                wandb.run.summary["params"] = record["params"]
                wandb.log({"test/confusion": wandb.Table(
                    columns=["true", "pred", "count"],
                    data=[[i, j, c] for i, row in enumerate(record["test"]["confusion"]) for j, c in enumerate(row)])})
        wandb.finish()
