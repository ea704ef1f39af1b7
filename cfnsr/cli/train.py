"""``cfnsr-train`` / ``python train.py``: train one fusion strategy on one fold (see the README)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from cfnsr.cli import CONFIG_PATH
from cfnsr.conf_resolvers import register_resolvers
from cfnsr.runs.renames import rename_argv
from cfnsr.runs.slurm_polling import quiet_sacct_warnings

register_resolvers()  # before hydra.main composes; see cfnsr.conf_resolvers for the child processes
# At import, not in main: under hydra/launcher=slurm the launching process polls SLURM but never runs main.
quiet_sacct_warnings()  # a SLURM cluster without accounting: one warning, not one per poll


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def _main(cfg: DictConfig) -> float | None:
    import logging
    import sys
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from cfnsr.builders.config_checks import check_sweeper
    from cfnsr.console import console_to_log, quiet_lightning
    from cfnsr.runs.folder import run_identity
    from cfnsr.runs.interrupt import Interrupted, finished_job
    from cfnsr.tasks.train import train

    hydra_cfg = HydraConfig.get()
    check_sweeper(hydra_cfg.sweeper.get("_target_"), cfg.protocol.name, cfg.protocol.get("objective"))
    quiet_lightning()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    kept = finished_job(Path(cfg.paths.output_dir), run_identity(cfg)) if multirun else None
    if kept is not None:  # a re-run of an interrupted sweep into its own folder: this job is done already
        print(f"job folder {cfg.paths.output_dir} holds finished run {kept.get('run_id')} of this job: kept")
        return (kept.get("objective") or {}).get("value")
    with console_to_log():  # <run>/train.log gets what the console shows
        try:
            record = train(cfg)
        except Interrupted as exc:
            # Not a success (status 0) and not a crash: 128 + the signal, the record says how to resume.
            print(f"interrupted by {exc.signal_name}; resume with: {exc.resume or 'see metrics.json'}",
                  file=sys.stderr)
            sys.exit(exc.exit_code)
        except Exception as exc:
            if not multirun:
                raise
            if type(exc).__name__ == "TrialPruned":  # cfnsr.callbacks.trial_report: recorded "pruned", told so
                logging.getLogger(__name__).info(f"{exc}")
                return None
            # One failed job must not end a sweep of dozens: its metrics.json says "failed" (with the error) and
            # the report lists it among the skipped runs.
            logging.getLogger(__name__).exception("job failed; the sweep goes on")
            return None
    # A sweeper's objective: validation, never test (None under the paper protocol, which has no validation set).
    return (record.get("objective") or {}).get("value")


def main() -> float | None:
    """The command: old names on its command line (``fusion=multiplication``, ``complexity=false``) are rewritten to
    the current ones, with a warning each (``cfnsr.runs.renames``), before Hydra parses it."""
    rename_argv()
    return _main()
