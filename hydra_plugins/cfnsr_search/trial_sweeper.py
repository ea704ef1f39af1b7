"""``hydra/sweeper`` for ``hparams_search=optuna``: a worker on an Optuna study, one run folder per trial.

Hydra only instantiates sweepers defined in the ``hydra_plugins`` namespace, so this thin class lives here; the
logic is in :mod:`cfnsr.search.sweeper`, imported only when a search starts (Hydra imports every plugin module on
every start, and a plain ``train.py`` run must not need Optuna installed). It uses Optuna directly (ask/tell), not
hydra-optuna-sweeper.
"""

from __future__ import annotations

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class TrialSweeper(Sweeper):
    """Takes ``hydra.sweeper.*`` (conf/hparams_search/optuna.yaml); see :class:`cfnsr.search.sweeper.TrialSweeper`."""

    def __init__(self, storage: str | None, study_name: str, direction: str, n_trials: int, n_jobs: int,
                 max_failure_rate: float, sampler: DictConfig | None, params: DictConfig | None) -> None:
        from cfnsr.search.sweeper import TrialSweeper as Impl

        self.sweeper = Impl(storage, study_name, direction, n_trials, n_jobs, max_failure_rate, sampler, params)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        return self.sweeper.sweep(arguments)
