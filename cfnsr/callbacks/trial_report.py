"""A search trial's validation objective, reported to its Optuna study after every epoch; pruning stops the trial.

Configured by ``hparams_search=optuna`` (``callbacks.trial_report``). The trial job opens the study itself, by name
from the storage (``search.storage``: by default ``<sweep dir>/optuna.journal``, the same the sweeper uses) and finds its trial by number
(``search.trial``), so a job on another node reports without any process in between. After each validation epoch
(not the sanity check) it reports ``monitor`` (``protocol.objective``) at step ``epoch``; when the pruner says so it
raises :class:`TrialPruned`, which the training task records as ``"status": "pruned"`` (``cfnsr.tasks.train``) and
the sweeper tells the study as PRUNED. Only rank 0 reports: one value per epoch, one decision broadcast to all ranks.
"""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl


class TrialPruned(RuntimeError):
    """The search's pruner stopped this trial after an epoch (not a failure: its record says ``pruned``)."""


class TrialReport(pl.Callback):
    """Report ``monitor`` after each validation epoch to trial ``trial`` of ``study`` in ``storage``; prune."""

    def __init__(self, *, storage: str | None, sweep_dir: str, study: str, trial: int | None, monitor: str,
                 pruner: Any) -> None:
        from cfnsr.runs.study_storage import study_storage

        self.storage = study_storage(storage, sweep_dir)
        self.study_name, self.number, self.monitor, self.pruner = study, trial, monitor, pruner
        self._trial: Any = None
        self.reported: dict[int, float] = {}

    def _optuna_trial(self) -> Any:
        """The study's trial of this job, opened once (the job runs in a fresh process or in the worker's own)."""
        if self._trial is None:
            import optuna

            from cfnsr.runs.study_storage import open_storage

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            storage = open_storage(self.storage)
            # no pruner configured: never prune (Optuna's own default would be a MedianPruner)
            pruner = self.pruner if self.pruner is not None else optuna.pruners.NopPruner()
            study = optuna.load_study(study_name=self.study_name, storage=storage, pruner=pruner)
            trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, int(self.number))
            self._trial = optuna.trial.Trial(study, trial_id)
        return self._trial

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.number is None or trainer.sanity_checking:  # not a search trial (e.g. a run composed by hand)
            return
        epoch = int(trainer.current_epoch)
        prune = False
        if trainer.is_global_zero:
            value = trainer.callback_metrics.get(self.monitor)
            if value is None:
                raise RuntimeError(f"callbacks.trial_report.monitor={self.monitor}: no such validation metric "
                                   f"(logged: {sorted(trainer.callback_metrics)})")
            value = float(value)
            if math.isfinite(value):
                trial = self._optuna_trial()
                trial.report(value, epoch)
                self.reported[epoch] = value
                prune = trial.should_prune()
        if trainer.world_size > 1:
            prune = bool(trainer.strategy.broadcast(prune, src=0))
        if prune:
            raise TrialPruned(f"trial {self.number} of study {self.study_name} pruned after epoch {epoch + 1} "
                              f"({self.monitor} {self.reported.get(epoch)})")
