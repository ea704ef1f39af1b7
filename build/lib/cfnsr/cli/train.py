"""``cfnsr-train`` / ``python train.py``: train one fusion strategy on one fold (see the README)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from cfnsr.cli import CONFIG_PATH
from cfnsr.runs.job_dirs import register

register()  # ${job_dirname:...} names multirun job folders, ${slurm_gpus:...} sizes SLURM jobs


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def main(cfg: DictConfig) -> float | None:
    import logging

    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from cfnsr.builders.config_checks import check_sweeper
    from cfnsr.console import console_to_log, quiet_lightning
    from cfnsr.runs.slurm_polling import quiet_sacct_warnings
    from cfnsr.tasks.train import train

    quiet_sacct_warnings()  # a SLURM cluster without accounting: one warning, not one per poll
    hydra_cfg = HydraConfig.get()
    check_sweeper(hydra_cfg.sweeper.get("_target_"), cfg.protocol.name, cfg.protocol.get("objective"))
    quiet_lightning()
    with console_to_log():  # <run>/train.log gets what the console shows
        try:
            record = train(cfg)
        except Exception:
            if hydra_cfg.mode != RunMode.MULTIRUN:
                raise
            # One failed job must not end a sweep of dozens: its metrics.json says "failed" (with the error) and
            # the report lists it among the skipped runs.
            logging.getLogger(__name__).exception("job failed; the sweep goes on")
            return None
    # A sweeper's objective: validation, never test (None under the paper protocol, which has no validation set).
    return (record.get("objective") or {}).get("value")
