"""A Hydra callback that prints and saves the trial table when a search ends (configured by hparams_search)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)


class SearchTableCallback(Callback):
    """``on_multirun_end``: the study's trials (number, state, objective, params, folder) into
    ``<sweep dir>/trials.md`` and ``trials.csv``, and the Markdown table on stdout."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from cfnsr.runs.study_storage import study_storage
        from cfnsr.search.study import load_study, write_table

        sweep_dir = Path(config.hydra.sweep.dir)
        study = load_study(sweep_dir, config.hydra.sweeper.get("study_name"),
                           study_storage(config.hydra.sweeper.get("storage"), sweep_dir))
        text, files = write_table(sweep_dir, study)
        print(text)
        log.info(f"trial table: {', '.join(str(f) for f in files)}; export the best settings with "
                 f"python -m cfnsr.search export {sweep_dir}")
