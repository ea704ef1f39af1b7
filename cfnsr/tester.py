"""Testing one set of weights: the single helper behind every test a task runs.

The training job tests its selected and its last checkpoint (and, under ``trainer.fast_dev_run``, the weights in
memory); evaluate tests the checkpoint it is given, and its robustness suite the same weights under each corruption.
Each goes through :func:`run_test`: load the weights (read on rank 0 and broadcast, ``cfnsr.runs.distributed``), run
``trainer.test``, return the result.

How the result comes back: where Lightning runs the test in this process (one device; ddp under torchrun or SLURM)
the module's own ``test_result`` is returned, the same on every rank (its metrics are all-gathered). Under
``ddp_spawn`` the test runs in child processes that have ended when ``trainer.test`` returns, and Lightning brings
back only scalar logged metrics (not the confusion matrix or the clips per rank). So rank 0 always writes the result
to a file (:class:`ResultFile`, which is also the run's evidence of its test, ``cfnsr.report.consistency``), and the
main process reads that file when it holds no result of its own. This is the only place that handshake exists.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from cfnsr.files import write_text_atomic
from cfnsr.module import EmotionModule
from cfnsr.runs.distributed import load_from_rank0
from cfnsr.runs.ranks import global_rank_from_env

TrainerFactory = Callable[[list[pl.Callback]], pl.Trainer]  # extra callbacks -> a trainer for one test


class ResultFile(pl.Callback):
    """At the end of a test: keeps the module's result (in this process) and rank 0 writes it to ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.result: dict[str, Any] | None = None  # set only where the test ran in this process

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        result = getattr(pl_module, "test_result", None)
        if result is None:
            raise RuntimeError(f"{type(pl_module).__name__} left no test_result at the end of the test")
        self.result = result
        if trainer.is_global_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.path, json.dumps(result))

    def read(self) -> dict[str, Any]:
        """The result: this process's own, else rank 0's file (ddp_spawn; complete: written before its children
        exited, and removed before the test started, so never an older test's)."""
        if self.result is not None:
            return self.result
        if not self.path.is_file():
            raise RuntimeError(f"the test left no result in this process and no {self.path} from rank 0")
        return json.loads(self.path.read_text())


def run_test(make_trainer: TrainerFactory, module: EmotionModule, datamodule: pl.LightningDataModule,
             result_file: str | Path, weights: Callable[[], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Test ``module`` on the test split of ``datamodule`` and return the result, the same on every rank.

    Args:
        make_trainer: builds the trainer for this test from the extra callbacks it must carry.
        module: the module to test; with ``weights``, its weights are replaced first.
        result_file: rank 0 writes the result there (a JSON file; see the module docstring).
        weights: called on rank 0 only: the state dict to test, which every rank then holds; None tests the weights
            ``module`` has.

    Returns:
        ``{"war", "uar", "f1", "n", "confusion" (K x K counts), "ranks" (clips per process), "split_clips"}``.
    """
    if weights is not None:
        load_from_rank0(module, weights)
    path = Path(result_file)
    if global_rank_from_env() == 0:  # never read a result an earlier test left there
        path.unlink(missing_ok=True)
    module.test_result = None  # set again by this test's on_test_epoch_end; never the previous test's
    handshake = ResultFile(path)
    make_trainer([handshake]).test(module, datamodule=datamodule, verbose=False)
    return handshake.read()
