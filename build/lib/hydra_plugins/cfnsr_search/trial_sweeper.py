"""``hydra/sweeper`` for ``hparams_search=optuna``: hydra-optuna-sweeper with one run folder per Optuna trial.

Hydra only instantiates sweepers defined in the ``hydra_plugins`` namespace, so this thin class lives here; the
logic is in :mod:`cfnsr.search.sweeper`, imported only when a search starts (Hydra imports every plugin module on
every start, and a plain ``train.py`` run must not need Optuna installed).
"""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class TrialFolderOptunaSweeper(Sweeper):
    """Takes hydra-optuna-sweeper's settings (``hydra.sweeper.*``); see :class:`cfnsr.search.sweeper.TrialSweeperImpl`."""

    def __init__(self, sampler: Any, direction: Any, storage: Any, study_name: str | None, n_trials: int,
                 n_jobs: int, max_failure_rate: float, search_space: DictConfig | None,
                 custom_search_space: str | None, params: DictConfig | None) -> None:
        from cfnsr.search.sweeper import TrialSweeperImpl

        self.sweeper = TrialSweeperImpl(sampler, direction, storage, study_name, n_trials, n_jobs,
                                        max_failure_rate, search_space, custom_search_space, params)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        return self.sweeper.sweep(arguments)
